//! KPL aggregates: delivered as user records, checkpointed mid-aggregate, resumed at the next
//! sub-record after a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcl::leases::{Checkpoint, LeaseTable};
use kcl::{Checkpointer, Config, ProcessRecordsInput, ProcessorError, RecordProcessor, Scheduler};

use crate::common::{Env, eventually, fast_config};

type Seen = Arc<Mutex<Vec<(String, u64, String, bool)>>>;

/// Checkpoints at the 8th user record it sees, never later.
#[derive(Debug)]
struct MidAggregate {
    seen: Seen,
}

impl RecordProcessor for MidAggregate {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let mut target = None;
        {
            let mut seen = self.seen.lock().unwrap();
            for r in &input.records {
                seen.push((
                    r.sequence_number.clone(),
                    r.sub_sequence_number,
                    String::from_utf8_lossy(&r.data).into_owned(),
                    r.aggregated,
                ));
                if seen.len() == 8 {
                    target = Some((r.sequence_number.clone(), r.sub_sequence_number));
                }
            }
        }
        if let Some((seq, sub)) = target {
            checkpointer.checkpoint_at(&seq, sub).await?;
        }
        Ok(())
    }

    async fn shard_ended(&mut self, c: &mut Checkpointer) -> Result<(), ProcessorError> {
        Ok(c.checkpoint().await?)
    }
}

fn worker(
    env: &Env,
    id: &str,
    seen: &Seen,
    config: Config,
) -> Arc<Scheduler<impl kcl::RecordProcessorFactory>> {
    let seen = seen.clone();
    Arc::new(
        Scheduler::new(
            env.kinesis.clone(),
            env.ddb.clone(),
            "agg-app",
            "agg",
            id,
            move |_: &str| MidAggregate { seen: seen.clone() },
            config,
        )
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_are_deaggregated_and_resumed_mid_aggregate() {
    resumed_mid_aggregate(Env::start().await, fast_config()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_resumes_mid_aggregate() {
    let env = Env::with(crate::fan_out::engine(Duration::from_secs(60))).await;
    resumed_mid_aggregate(env, crate::fan_out::fan_out(Duration::from_secs(3))).await;
}

/// Reads 20 KPL user records, checkpoints inside an aggregate, and restarts from there.
async fn resumed_mid_aggregate(env: Env, config: Config) {
    env.create_stream("agg", 1).await;
    let producer = kpl::Producer::new(
        env.kinesis.clone(),
        "agg",
        kpl::Config {
            record_max_buffered_time: Duration::from_millis(200),
            ..kpl::Config::default()
        },
    )
    .await
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..20 {
        futures.push(
            producer
                .put(kpl::Record::new("one-key", format!("u{i:02}")))
                .await
                .unwrap(),
        );
    }
    for f in futures {
        f.await.unwrap();
    }
    assert!(producer.shutdown(Duration::from_secs(5)).await.is_empty());

    let seen: Seen = Arc::default();
    let first = worker(&env, "first", &seen, config.clone());
    let run = tokio::spawn({
        let first = first.clone();
        async move { first.run().await }
    });
    eventually(Duration::from_secs(20), "all user records", async || {
        seen.lock().unwrap().len() >= 20
    })
    .await;
    first.shutdown();
    run.await.unwrap().unwrap();
    let delivered = seen.lock().unwrap().clone();
    let data: Vec<&str> = delivered.iter().map(|d| d.2.as_str()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
    assert_eq!(data, expected);
    assert!(
        delivered.iter().all(|d| d.3),
        "records arrive through aggregates"
    );
    let (seq, sub) = (delivered[7].0.clone(), delivered[7].1);
    assert!(sub > 0, "the 8th user record sits inside an aggregate");
    let lease = LeaseTable::new(env.ddb.clone(), "agg-app")
        .get("shardId-000000000000")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.checkpoint, Checkpoint::at(seq, sub));

    // A restart resumes right after the checkpointed sub-record.
    seen.lock().unwrap().clear();
    let second = worker(&env, "second", &seen, config);
    let run = tokio::spawn({
        let second = second.clone();
        async move { second.run().await }
    });
    eventually(Duration::from_secs(20), "the rest", async || {
        seen.lock().unwrap().len() >= 12
    })
    .await;
    second.shutdown();
    run.await.unwrap().unwrap();
    let data: Vec<String> = seen.lock().unwrap().iter().map(|d| d.2.clone()).collect();
    assert_eq!(data, expected[8..].to_vec());
    crate::fan_out::assert_no_polling(&env);
}

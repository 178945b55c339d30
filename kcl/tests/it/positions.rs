//! Initial positions, checkpoint validation and prepared checkpoints with application state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kcl::leases::{Checkpoint, LeaseTable};
use kcl::{
    Checkpointer, Config, InitialPosition, InitializationInput, ProcessRecordsInput,
    ProcessorError, RecordProcessor, Scheduler,
};

use crate::common::{Env, eventually, fast_config};

#[derive(Debug, Default)]
struct Seen {
    data: Vec<String>,
    inits: Vec<InitializationInput>,
    errors: Vec<String>,
}

/// On its first batch: tries invalid checkpoints, then prepares one with state (not committed).
#[derive(Debug)]
struct Probe {
    seen: Arc<Mutex<Seen>>,
    prepare: bool,
}

impl RecordProcessor for Probe {
    async fn initialize(&mut self, input: InitializationInput) -> Result<(), ProcessorError> {
        self.seen.lock().unwrap().inits.push(input);
        Ok(())
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let last = input.records.last().unwrap().sequence_number.clone();
        let first = input.records[0].sequence_number.clone();
        self.seen.lock().unwrap().data.extend(
            input
                .records
                .iter()
                .map(|r| String::from_utf8_lossy(&r.data).into_owned()),
        );
        if !self.prepare {
            checkpointer.checkpoint().await?;
            return Ok(());
        }
        let beyond = format!("{}0", last); // ten times larger: beyond anything delivered
        let mut errors = Vec::new();
        for result in [
            checkpointer.checkpoint_at(&beyond, 0).await,
            checkpointer.checkpoint_at("not-a-number", 0).await,
        ] {
            errors.push(format!(
                "{:?}",
                result.map_err(|e| matches!(e, kcl::Error::InvalidCheckpoint(_)))
            ));
        }
        checkpointer.checkpoint_at(&last, 0).await?;
        // Behind the current checkpoint.
        let behind = checkpointer.checkpoint_at(&first, 0).await;
        errors.push(format!(
            "{:?}",
            behind.map_err(|e| matches!(e, kcl::Error::InvalidCheckpoint(_)))
        ));
        let prepared = checkpointer
            .prepare_checkpoint(Some(b"app-state".to_vec()))
            .await?;
        assert_eq!(prepared.checkpoint(), &Checkpoint::at(last.clone(), 0));
        self.seen.lock().unwrap().errors = errors;
        Ok(())
    }

    async fn shard_ended(&mut self, c: &mut Checkpointer) -> Result<(), ProcessorError> {
        Ok(c.checkpoint().await?)
    }
}

async fn run_until(
    env: &Env,
    app: &str,
    stream: &str,
    config: Config,
    prepare: bool,
    done: impl Fn(&Seen) -> bool,
) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let factory_seen = seen.clone();
    let scheduler = Arc::new(
        Scheduler::new(
            env.kinesis.clone(),
            env.ddb.clone(),
            app,
            stream,
            "w",
            move |_: &str| Probe {
                seen: factory_seen.clone(),
                prepare,
            },
            config,
        )
        .unwrap(),
    );
    let task = tokio::spawn({
        let s = scheduler.clone();
        async move { s.run().await }
    });
    eventually(Duration::from_secs(20), "the processor", async || {
        done(&seen.lock().unwrap())
    })
    .await;
    scheduler.shutdown();
    task.await.unwrap().unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_skips_earlier_records() {
    let env = Env::start().await;
    env.create_stream("latest", 1).await;
    env.put("latest", "k", "old").await;
    let config = Config {
        initial_position: InitialPosition::Latest,
        ..fast_config()
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let factory_seen = seen.clone();
    let scheduler = Arc::new(
        Scheduler::new(
            env.kinesis.clone(),
            env.ddb.clone(),
            "latest-app",
            "latest",
            "w",
            move |_: &str| Probe {
                seen: factory_seen.clone(),
                prepare: false,
            },
            config,
        )
        .unwrap(),
    );
    let task = tokio::spawn({
        let s = scheduler.clone();
        async move { s.run().await }
    });
    eventually(Duration::from_secs(20), "initialized", async || {
        !seen.lock().unwrap().inits.is_empty()
    })
    .await;
    // Give the fetcher its LATEST iterator before writing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.put("latest", "k", "new").await;
    eventually(Duration::from_secs(20), "the new record", async || {
        !seen.lock().unwrap().data.is_empty()
    })
    .await;
    scheduler.shutdown();
    task.await.unwrap().unwrap();
    assert_eq!(seen.lock().unwrap().data, ["new"]);
    assert_eq!(seen.lock().unwrap().inits[0].checkpoint, Checkpoint::Latest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_timestamp_starts_at_the_instant() {
    let env = Env::start().await;
    env.create_stream("ts", 1).await;
    env.put("ts", "k", "before").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let at = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    env.put("ts", "k", "after").await;
    let config = Config {
        initial_position: InitialPosition::AtTimestamp(at),
        ..fast_config()
    };
    let seen = run_until(&env, "ts-app", "ts", config, false, |s| !s.data.is_empty()).await;
    assert_eq!(seen.lock().unwrap().data, ["after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_validated_and_prepared_state_survives() {
    let env = Env::start().await;
    env.create_stream("probe", 1).await;
    for i in 0..3 {
        env.put("probe", "k", &format!("p{i}")).await;
    }
    let seen = run_until(&env, "probe-app", "probe", fast_config(), true, |s| {
        !s.errors.is_empty()
    })
    .await;
    assert_eq!(
        seen.lock().unwrap().errors,
        ["Err(true)", "Err(true)", "Err(true)"],
        "beyond delivered, not a number, behind current: all refused"
    );
    let lease = LeaseTable::new(env.ddb.clone(), "probe-app")
        .get("shardId-000000000000")
        .await
        .unwrap()
        .unwrap();
    assert!(lease.pending_checkpoint.is_some());
    assert_eq!(
        lease.pending_checkpoint_state.as_deref(),
        Some(&b"app-state"[..])
    );

    // The next processor is told about the pending checkpoint and its state.
    let seen = run_until(&env, "probe-app", "probe", fast_config(), false, |s| {
        !s.inits.is_empty()
    })
    .await;
    let init = seen.lock().unwrap().inits[0].clone();
    assert_eq!(init.pending_checkpoint, lease.pending_checkpoint);
    assert_eq!(
        init.pending_checkpoint_state.as_deref(),
        Some(&b"app-state"[..])
    );
    assert_eq!(init.checkpoint, lease.checkpoint);
}

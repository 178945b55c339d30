//! Flow control of enhanced fan-out: a processor far slower than the shard does not make the
//! worker's memory grow. (Its own test binary: the metrics recorder is process-wide.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use core_engine::Engine;
use kcl::{
    Checkpointer, Config, FanOutConfig, InitialPosition, ProcessRecordsInput, ProcessorError,
    RecordProcessor, Retrieval, Scheduler,
};

#[allow(dead_code)] // each binary reads some of it
mod recorder;

/// Size and `MillisBehindLatest` of each batch.
type Batches = Arc<Mutex<Vec<(usize, Option<i64>)>>>;

/// Sleeps on every batch; remembers batch sizes and lags.
#[derive(Debug)]
struct Slow {
    processed: Arc<AtomicU64>,
    batches: Batches,
}

impl RecordProcessor for Slow {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        self.batches
            .lock()
            .unwrap()
            .push((input.records.len(), input.millis_behind_latest));
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.processed
            .fetch_add(input.records.len() as u64, Ordering::SeqCst);
        checkpointer.checkpoint().await?;
        Ok(())
    }

    async fn shard_ended(&mut self, c: &mut Checkpointer) -> Result<(), ProcessorError> {
        Ok(c.checkpoint().await?)
    }
}

/// The one shard's `RecordsBuffered` now (0 before the consumer registers it).
fn buffered() -> f64 {
    recorder::store()
        .gauge("RecordsBuffered", &[])
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_processor_keeps_the_buffer_bounded_while_the_shard_runs_at_full_rate() {
    // A recorder whose reads do not reset the gauge, so every sample sees its current value.
    recorder::store();
    let engine = Engine::builder().build().unwrap().start().await.unwrap();
    let url = engine.endpoint_url();
    let kinesis = aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "t"))
            .build(),
    );
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "t",
            ))
            .build(),
    );
    kinesis
        .create_stream()
        .stream_name("flood")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let processed = Arc::new(AtomicU64::new(0));
    let batches: Batches = Arc::default();
    let max_buffered_events = 2;
    let config = Config {
        failover_time: Duration::from_millis(1500),
        initial_position: InitialPosition::TrimHorizon,
        shutdown_timeout: Duration::from_secs(5),
        retrieval: Retrieval::FanOut(FanOutConfig {
            max_buffered_events,
            ..FanOutConfig::default()
        }),
        ..Config::default()
    };
    let scheduler = Arc::new(
        Scheduler::new(
            kinesis.clone(),
            ddb,
            "flood-app",
            "flood",
            "w",
            {
                let (processed, batches) = (processed.clone(), batches.clone());
                move |_: &str| Slow {
                    processed: processed.clone(),
                    batches: batches.clone(),
                }
            },
            config,
        )
        .unwrap(),
    );
    let run = tokio::spawn({
        let s = scheduler.clone();
        async move { s.run().await }
    });

    // The producer writes at the shard's full rate (1 MiB/s: the engine throttles the rest)
    // for 6 s, in records of 1 KiB, while the sampler watches the worker's buffer.
    let written = Arc::new(AtomicU64::new(0));
    let writing = Arc::new(AtomicBool::new(true));
    let producer = tokio::spawn({
        let (kinesis, written, writing) = (kinesis.clone(), written.clone(), writing.clone());
        async move {
            let data = Blob::new(vec![b'x'; 1024]);
            let mut n = 0u64;
            while writing.load(Ordering::SeqCst) {
                let entries: Vec<PutRecordsRequestEntry> = (0..100)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("k{}", n * 100 + i))
                            .data(data.clone())
                            .build()
                            .unwrap()
                    })
                    .collect();
                n += 1;
                let out = kinesis
                    .put_records()
                    .stream_name("flood")
                    .set_records(Some(entries))
                    .send()
                    .await
                    .unwrap();
                written.fetch_add(
                    100 - out.failed_record_count.unwrap_or(0) as u64,
                    Ordering::SeqCst,
                );
                if out.failed_record_count.unwrap_or(0) > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    });
    let mut peak = 0.0f64;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peak = peak.max(buffered());
    }
    writing.store(false, Ordering::SeqCst);
    producer.await.unwrap();
    let written = written.load(Ordering::SeqCst);
    let done = processed.load(Ordering::SeqCst);
    let batches = batches.lock().unwrap().clone();
    let largest = batches.iter().map(|b| b.0).max().unwrap_or(0);
    let lag = batches.last().and_then(|b| b.1).unwrap_or(0);
    assert!(
        batches.iter().all(|b| b.1.is_some()),
        "every fan-out batch carries MillisBehindLatest"
    );
    eprintln!(
        "written {written} processed {done} batches {} largest batch {largest} peak buffered {peak} last lag {lag} ms",
        batches.len()
    );
    // The backlog is far larger than what the worker holds: it stays with the service.
    assert!(written > done + 2_000, "the processor fell behind");
    // The worker holds at most `max_buffered_events` events that the processor has not taken.
    assert!(
        peak <= (max_buffered_events * largest) as f64,
        "buffered {peak} records, more than {max_buffered_events} events of at most {largest}"
    );
    assert!(
        peak < (written - done) as f64 / 2.0,
        "buffered {peak} of a backlog of {}",
        written - done
    );
    scheduler.shutdown();
    run.await.unwrap().unwrap();
}

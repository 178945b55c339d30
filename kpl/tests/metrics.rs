//! The producer reports the KPL's metric names through the `metrics` facade.
//! (Its own test binary: the recorder is process-wide.)

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use core_engine::{Engine, Fault, FaultRule};
use kpl::{Config, Producer, Record};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[tokio::test]
async fn kpl_metric_names_are_reported() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this binary");

    let engine = Engine::builder()
        .throughput_limits(false)
        .fault(FaultRule::new("PutRecords", Fault::InternalFailure).times(1))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(engine.endpoint_url())
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    let client = Client::from_conf(config);
    client
        .create_stream()
        .stream_name("measured")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let producer = Producer::new(
        client,
        "measured",
        Config {
            retry_min_delay: Duration::from_millis(10),
            ..Config::default()
        },
    )
    .await
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..10 {
        futures.push(
            producer
                .put(Record::new(format!("k{i}"), "0123456789"))
                .await
                .unwrap(),
        );
    }
    for future in futures {
        future.await.unwrap();
    }

    let snapshot = snapshotter.snapshot().into_vec();
    let counter = |name: &str| -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| key.key().name() == name)
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    };
    let histogram_len = |name: &str| -> usize {
        snapshot
            .iter()
            .filter(|(key, ..)| key.key().name() == name)
            .map(|(.., value)| match value {
                DebugValue::Histogram(values) => values.len(),
                _ => 0,
            })
            .sum()
    };
    assert_eq!(counter("UserRecordsReceived"), 10);
    assert_eq!(counter("UserRecordsPut"), 10);
    assert_eq!(counter("UserRecordsDataPut"), 100);
    assert!(counter("KinesisRecordsPut") >= 1);
    // The injected failure hit the first Kinesis record: its user records were retried once.
    assert!(counter("AllErrors") >= 1);
    assert!(counter("ErrorsByCode") >= 1);
    assert_eq!(histogram_len("RetriesPerRecord"), 10);
    assert!(histogram_len("BufferingTime") >= 10);
    assert!(histogram_len("RequestTime") >= 2);
    engine.shutdown().await;
}

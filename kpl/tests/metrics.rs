//! The producer reports the KPL's metric names through the `metrics` facade, labelled with the
//! stream (and the shard), at the configured level.
//! (Its own test binary: the recorder is process-wide.)

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use core_engine::{Engine, Fault, FaultRule};
use kpl::{Config, MetricsGranularity, MetricsLevel, Producer, Record};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The process-wide recorder, installed by the first test that asks, and a lock the tests
/// hold while they run: a snapshot drains every histogram, other tests' too.
async fn recorder() -> (&'static Snapshotter, tokio::sync::MutexGuard<'static, ()>) {
    static SNAPSHOTTER: std::sync::OnceLock<Snapshotter> = std::sync::OnceLock::new();
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let serial = SERIAL.lock().await;
    let snapshotter = SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder in this binary");
        snapshotter
    });
    (snapshotter, serial)
}

/// A Kinesis client of `engine`.
fn client(engine: &core_engine::EngineHandle) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(engine.endpoint_url())
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    Client::from_conf(config)
}

/// Puts `n` records of 10 bytes through `producer` and waits for them.
async fn put_ten(producer: &Producer) {
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
}

#[tokio::test]
async fn kpl_metric_names_are_reported() {
    let (snapshotter, _serial) = recorder().await;

    let engine = Engine::builder()
        .throughput_limits(false)
        .fault(FaultRule::new("PutRecords", Fault::InternalFailure).times(1))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let client = client(&engine);
    for stream in ["measured", "summary", "silent", "coarse"] {
        client
            .create_stream()
            .stream_name(stream)
            .shard_count(2)
            .send()
            .await
            .unwrap();
    }
    let producer = Producer::new(
        client.clone(),
        "measured",
        Config {
            retry_min_delay: Duration::from_millis(10),
            ..Config::default()
        },
    )
    .await
    .unwrap();
    put_ten(&producer).await;
    for (stream, level, granularity) in [
        ("summary", MetricsLevel::Summary, MetricsGranularity::Shard),
        ("silent", MetricsLevel::None, MetricsGranularity::Shard),
        ("coarse", MetricsLevel::Detailed, MetricsGranularity::Stream),
    ] {
        let config = Config {
            metrics_level: level,
            metrics_granularity: granularity,
            ..Config::default()
        };
        let other = Producer::new(client.clone(), stream, config).await.unwrap();
        put_ten(&other).await;
    }

    let snapshot = snapshotter.snapshot().into_vec();
    let label = |key: &metrics_util::CompositeKey, name: &str| -> Option<String> {
        key.key()
            .labels()
            .find(|l| l.key() == name)
            .map(|l| l.value().to_owned())
    };
    // Every metric names its stream.
    for (key, ..) in &snapshot {
        assert!(
            label(key, "stream").is_some(),
            "{key:?} has no stream label"
        );
    }
    let names_of = |stream: &str| -> std::collections::BTreeSet<String> {
        snapshot
            .iter()
            .filter(|(key, ..)| label(key, "stream").as_deref() == Some(stream))
            .map(|(key, ..)| key.key().name().to_owned())
            .collect()
    };
    // Summary keeps the main counts and drops the detailed ones; none emits nothing.
    let summary = names_of("summary");
    assert!(summary.contains("UserRecordsPut"), "{summary:?}");
    assert!(summary.contains("KinesisRecordsPut"), "{summary:?}");
    assert!(!summary.contains("UserRecordsDataPut"), "{summary:?}");
    assert!(!summary.contains("RequestTime"), "{summary:?}");
    assert!(!summary.contains("UserRecordsReceived"), "{summary:?}");
    assert!(!summary.contains("UserRecordsPending"), "{summary:?}");
    assert!(
        !summary.contains("UserRecordsPerPutRecordsRequest"),
        "{summary:?}"
    );
    assert!(names_of("silent").is_empty(), "{:?}", names_of("silent"));
    // Shard granularity (the default) puts a shard on the per-shard metrics; the records went
    // to both shards. Stream granularity puts none.
    let shards_of = |stream: &str, name: &str| -> std::collections::BTreeSet<Option<String>> {
        snapshot
            .iter()
            .filter(|(key, ..)| {
                key.key().name() == name && label(key, "stream").as_deref() == Some(stream)
            })
            .map(|(key, ..)| label(key, "shard"))
            .collect()
    };
    let measured = shards_of("measured", "UserRecordsPut");
    assert_eq!(measured.len(), 2, "{measured:?}");
    assert!(
        measured
            .iter()
            .all(|s| s.as_deref().is_some_and(|s| s.starts_with("shardId-")))
    );
    assert_eq!(shards_of("measured", "UserRecordsReceived"), [None].into());
    assert_eq!(shards_of("coarse", "UserRecordsPut"), [None].into());

    let counter = |name: &str| -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| {
                key.key().name() == name && label(key, "stream").as_deref() == Some("measured")
            })
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    };
    let histogram_len = |name: &str| -> usize {
        snapshot
            .iter()
            .filter(|(key, ..)| {
                key.key().name() == name && label(key, "stream").as_deref() == Some("measured")
            })
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

/// The values of metric `name` of `stream` in `snapshot`: a gauge's value, a histogram's
/// samples.
fn values_of(
    snapshot: &[(
        metrics_util::CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )],
    stream: &str,
    name: &str,
) -> Vec<f64> {
    snapshot
        .iter()
        .filter(|(key, ..)| {
            key.key().name() == name
                && key
                    .key()
                    .labels()
                    .any(|l| l.key() == "stream" && l.value() == stream)
        })
        .flat_map(|(.., value)| match value {
            DebugValue::Gauge(v) => vec![v.into_inner()],
            DebugValue::Histogram(values) => values.iter().map(|v| v.into_inner()).collect(),
            DebugValue::Counter(n) => vec![*n as f64],
        })
        .collect()
}

#[tokio::test]
async fn pending_records_and_records_per_request_follow_the_load() {
    let (snapshotter, _serial) = recorder().await;
    let engine = Engine::builder()
        .throughput_limits(false)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let client = client(&engine);
    client
        .create_stream()
        .stream_name("pending")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    // Nothing leaves the buffers on its own: only the flush sends.
    let producer = Producer::new(
        client,
        "pending",
        Config {
            record_max_buffered_time: Duration::from_secs(3600),
            ..Config::default()
        },
    )
    .await
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..7 {
        futures.push(
            producer
                .put(Record::new(format!("k{i}"), "0123456789"))
                .await
                .unwrap(),
        );
    }
    // A snapshot of the debugging recorder resets gauges (and counters) to 0: the gauge's
    // value is the sum of what the snapshots saw.
    let mut pending = 0.0;
    let snapshot = snapshotter.snapshot().into_vec();
    pending += values_of(&snapshot, "pending", "UserRecordsPending")
        .iter()
        .sum::<f64>();
    assert_eq!(pending, 7.0, "seven records buffered");
    assert!(
        values_of(&snapshot, "pending", "UserRecordsPerPutRecordsRequest").is_empty(),
        "nothing sent before the flush"
    );

    producer.flush();
    for future in futures {
        future.await.unwrap();
    }
    let snapshot = snapshotter.snapshot().into_vec();
    pending += values_of(&snapshot, "pending", "UserRecordsPending")
        .iter()
        .sum::<f64>();
    assert_eq!(pending, 0.0, "every record settled");
    // One shard, one flush: one PutRecords call carried the seven user records.
    assert_eq!(
        values_of(&snapshot, "pending", "UserRecordsPerPutRecordsRequest"),
        [7.0]
    );
    assert_eq!(
        values_of(&snapshot, "pending", "UserRecordsPut")
            .iter()
            .sum::<f64>(),
        7.0
    );
    engine.shutdown().await;
}

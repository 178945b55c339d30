//! The worker reports the KCL's metrics through the `metrics` facade, labelled with the
//! application, stream and shard (or worker): counted after a known load against the engine.
//! (Its own test binary: the recorder is process-wide.)

#[path = "it/common.rs"]
#[allow(dead_code)]
mod common;
mod recorder;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use core_engine::{Engine, Fault, FaultRule};

use common::{Env, Log, Worker, eventually, fast_config};
use recorder::store;

/// A key whose hash lies inside (or outside) `range`.
fn key_in(range: (u128, u128), inside: bool) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| {
            let h = kpl::aggregation::hash_key(k, None).unwrap();
            (h >= range.0 && h <= range.1) == inside
        })
        .unwrap()
}

const APP: &str = "metered-app";
const STREAM: &str = "metered";
const FIRST: &str = "shardId-000000000000";
const SECOND: &str = "shardId-000000000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_aggregate_and_the_shard_and_lease_metrics_are_counted() {
    let seen = store();
    // The worker's first lease take fails (its client does not retry): one untaken lease.
    let env = Env::with(
        Engine::builder().fault(
            FaultRule::dynamodb("UpdateItem", Fault::InternalFailure)
                .on_table(APP)
                .times(1),
        ),
    )
    .await;
    env.create_stream(STREAM, 2).await;
    let shards = env.open_shards(STREAM).await;
    let first_start = shards.iter().find(|(id, _)| id == FIRST).unwrap().1;
    let second_start = shards.iter().find(|(id, _)| id == SECOND).unwrap().1;
    let first = (first_start, second_start - 1);
    let (home, foreign) = (key_in(first, true), key_in(first, false));

    // Into the first shard: an aggregate holding a key of another shard (dropped, as by the
    // Java KCL), one of the shard's own keys (two user records), the same with its MD5 digest
    // broken (not an aggregate then: delivered whole, as by the Java KCL) and a plain record.
    let mut mixed = kpl::aggregation::Aggregator::new();
    mixed.push(&home, None, b"mixed-home");
    mixed.push(&foreign, None, b"mixed-foreign");
    let mut own = kpl::aggregation::Aggregator::new();
    own.push(&home, None, b"own-1");
    own.push(&home, None, b"own-2");
    let own = own.finish();
    let mut broken = own.clone();
    *broken.last_mut().unwrap() ^= 0xff;
    let bytes = ("own-1".len() + "own-2".len() + broken.len() + "plain".len()) as u64;
    for data in [mixed.finish(), own, broken, b"plain".to_vec()] {
        let shard = env
            .kinesis
            .put_record()
            .stream_name(STREAM)
            .partition_key("p")
            .explicit_hash_key(first_start.to_string())
            .data(Blob::new(data))
            .send()
            .await
            .unwrap()
            .shard_id;
        assert_eq!(shard, FIRST);
    }
    // The second shard is split before the worker starts: its consumer reaches its end at once
    // and calls shard_ended.
    let middle = second_start + (u128::MAX - second_start) / 2;
    env.kinesis
        .split_shard()
        .stream_name(STREAM)
        .shard_to_split(SECOND)
        .new_starting_hash_key(middle.to_string())
        .send()
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the split", async || {
        env.open_shards(STREAM).await.len() == 3
    })
    .await;

    let log = Arc::new(Log::default());
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        env.ddb
            .config()
            .to_builder()
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build(),
    );
    let worker = Worker::start_with(&env, ddb, APP, STREAM, "w1", &log, fast_config());
    let first_shard = [("application", APP), ("stream", STREAM), ("shard", FIRST)];
    let second_shard = [("application", APP), ("stream", STREAM), ("shard", SECOND)];
    eventually(
        Duration::from_secs(30),
        "the first shard's records processed and the second shard ended",
        async || {
            seen.counter("RecordsProcessed", &first_shard) == Some(4)
                && seen.counter("TakenLeases", &[("application", APP), ("worker", "w1")]) == Some(4)
                && !seen
                    .histogram("RecordProcessor.shutdown.Time", &second_shard)
                    .is_empty()
        },
    )
    .await;
    worker.stop().await;

    let delivered = log.data();
    assert!(
        !delivered.iter().any(|d| d.starts_with("mixed")),
        "the mixed aggregate is dropped: {delivered:?}"
    );
    assert_eq!(
        seen.counter("AggregatedRecordsDropped", &first_shard),
        Some(1),
        "one aggregate dropped; the broken one is delivered whole, not dropped"
    );
    assert_eq!(
        seen.counter("AggregatedRecordsDropped", &second_shard),
        Some(0)
    );
    assert_eq!(
        seen.counter("DataBytesProcessed", &first_shard),
        Some(bytes)
    );
    // One initialize per shard consumer.
    for shard in [first_shard, second_shard] {
        assert_eq!(
            seen.histogram("RecordProcessor.initialize.Time", &shard)
                .len(),
            1,
            "{shard:?}"
        );
    }
    assert_eq!(
        seen.histogram("RecordProcessor.shutdown.Time", &second_shard)
            .len(),
        1,
        "shard_ended called once"
    );
    assert!(
        seen.histogram("RecordProcessor.shutdown.Time", &first_shard)
            .is_empty(),
        "the open shard never ended"
    );
    // Polling: every GetRecords call timed, and each succeeded.
    let calls = seen.histogram("KinesisDataFetcher.getRecords.Time", &first_shard);
    let successes = seen.histogram("KinesisDataFetcher.getRecords.Success", &first_shard);
    assert!(!calls.is_empty());
    assert_eq!(successes.len(), calls.len());
    assert!(successes.iter().all(|s| *s == 1.0), "{successes:?}");
    let iterators = seen.histogram("KinesisDataFetcher.getShardIterator.Success", &first_shard);
    assert_eq!(iterators, [1.0], "one iterator, at the start");
    assert_eq!(
        seen.histogram("KinesisDataFetcher.getShardIterator.Time", &first_shard)
            .len(),
        1
    );
    // The lease taker: four leases taken in the end (the two shards, then the children of the
    // ended one), one take failed on the way.
    let worker_labels = [("application", APP), ("worker", "w1")];
    assert_eq!(seen.counter("UntakenLeases", &worker_labels), Some(1));
    assert_eq!(seen.counter("TakenLeases", &worker_labels), Some(4));
    assert!(
        seen.gauge("LeasesToTake", &[("application", APP)])
            .is_some(),
        "LeasesToTake is reported at the detailed level"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_stream_application_counts_its_streams() {
    let seen = store();
    let env = Env::start().await;
    for stream in ["counted-a", "counted-b"] {
        env.create_stream(stream, 1).await;
    }
    let tracked = Arc::new(std::sync::Mutex::new(vec![
        "counted-a".to_owned(),
        "counted-b".to_owned(),
    ]));
    let tracker = {
        let tracked = tracked.clone();
        move || tracked.lock().unwrap().clone()
    };
    let log = Arc::new(Log::default());
    let app = "counting-app";
    let scheduler = Arc::new(
        kcl::Scheduler::builder()
            .application(app)
            .stream_tracker(tracker)
            .worker_id("w1")
            .kinesis(env.kinesis.clone())
            .dynamodb(env.ddb.clone())
            .processor_factory(common::Factory::new("w1", &log))
            .config(kcl::Config {
                shard_sync_interval: Duration::from_millis(200),
                former_stream_lease_retention: Duration::from_secs(2),
                metrics_level: kcl::MetricsLevel::Summary,
                ..fast_config()
            })
            .build()
            .unwrap(),
    );
    let runner = scheduler.clone();
    let task = tokio::spawn(async move { runner.run().await });
    let labels = [("application", app)];
    eventually(Duration::from_secs(20), "two streams active", async || {
        seen.gauge("ActiveStreams.Count", &labels) == Some(2.0)
    })
    .await;
    assert_eq!(
        seen.gauge("StreamsPendingDeletion.Count", &labels),
        Some(0.0)
    );
    // Registered at the first deletion.
    assert_eq!(seen.counter("DeletedStreams.Count", &labels), None);

    // b is no longer tracked: its leases wait out the retention, then go.
    tracked.lock().unwrap().pop();
    eventually(Duration::from_secs(20), "b pending deletion", async || {
        seen.gauge("ActiveStreams.Count", &labels) == Some(1.0)
            && seen.gauge("StreamsPendingDeletion.Count", &labels) == Some(1.0)
    })
    .await;
    assert_eq!(seen.counter("DeletedStreams.Count", &labels), None);
    eventually(Duration::from_secs(20), "b's leases deleted", async || {
        seen.counter("DeletedStreams.Count", &labels) == Some(1)
            && seen.gauge("StreamsPendingDeletion.Count", &labels) == Some(0.0)
    })
    .await;
    assert_eq!(seen.gauge("ActiveStreams.Count", &labels), Some(1.0));
    // At the summary level: the processor timings, not the detailed fetcher and taker ones.
    assert!(
        !seen
            .histogram("RecordProcessor.initialize.Time", &labels)
            .is_empty()
    );
    assert!(
        seen.histogram("KinesisDataFetcher.getRecords.Time", &labels)
            .is_empty()
    );
    assert_eq!(seen.gauge("LeasesToTake", &labels), None);
    assert!(seen.gauge("ExpiredLeases", &labels).is_some());
    scheduler.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_registered_again_is_counted() {
    let seen = store();
    // Short subscriptions, so the worker soon subscribes again after the deregistration.
    let env = Env::with(Engine::builder().subscription_lifetime(Duration::from_millis(500))).await;
    env.create_stream("rereg", 1).await;
    env.put("rereg", "k", "before").await;
    let log = Arc::new(Log::default());
    let config = kcl::Config {
        retrieval: kcl::Retrieval::FanOut(kcl::FanOutConfig::default()),
        ..fast_config()
    };
    let worker = Worker::start(&env, "rereg-app", "rereg", "w", &log, config);
    eventually(Duration::from_secs(20), "the first record", async || {
        log.has_all(&["before".to_owned()])
    })
    .await;
    let labels = [("application", "rereg-app"), ("stream", "rereg")];
    let reregistrations = || {
        seen.counter("ConsumerReregistrations", &labels)
            .unwrap_or(0)
    };
    assert_eq!(reregistrations(), 0);

    let stream = env
        .kinesis
        .describe_stream_summary()
        .stream_name("rereg")
        .send()
        .await
        .unwrap();
    let consumers = env
        .kinesis
        .list_stream_consumers()
        .stream_arn(stream.stream_description_summary().unwrap().stream_arn())
        .send()
        .await
        .unwrap();
    env.kinesis
        .deregister_stream_consumer()
        .consumer_arn(consumers.consumers()[0].consumer_arn())
        .send()
        .await
        .unwrap();
    env.put("rereg", "k", "after").await;
    eventually(
        Duration::from_secs(30),
        "the record put after the deregistration",
        async || log.has_all(&["after".to_owned()]),
    )
    .await;
    assert_eq!(reregistrations(), 1);
    worker.stop().await;
}

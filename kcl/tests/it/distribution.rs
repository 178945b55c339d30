//! Streams with the AUTO record distribution strategy: the engine spreads records over the
//! shards whatever their keys, so a KPL aggregate holds user records whose keys hash anywhere.
//! Workers deliver every one of them (no shard hash-range check) by polling and by fan-out,
//! also after a switch to AUTO while they run; on a USER_PARTITION_KEY stream an aggregate with
//! a foreign key is still dropped, as by the Java KCL (unless the strategy cannot be read just
//! then: delivered rather than risk a loss).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{RecordDistributionStrategy, StreamMode, StreamModeDetails};
use kcl::Config;

use crate::common::{Env, Log, Worker, eventually, fast_config};

/// Creates an on-demand stream (four shards in the engine), AUTO or not.
async fn on_demand_stream(env: &Env, stream: &str, auto: bool) {
    env.kinesis
        .create_stream()
        .stream_name(stream)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .set_record_distribution_strategy(auto.then_some(RecordDistributionStrategy::Auto))
        .send()
        .await
        .unwrap();
}

/// Puts `count` user records with distinct keys through an aggregating KPL producer; returns
/// their data.
async fn produce(env: &Env, stream: &str, count: usize) -> Vec<String> {
    let producer = kpl::Producer::new(
        env.kinesis.clone(),
        stream,
        kpl::Config {
            aggregation_enabled: true,
            record_max_buffered_time: Duration::from_millis(200),
            ..kpl::Config::default()
        },
    )
    .await
    .unwrap();
    let mut sent = Vec::new();
    let mut futures = Vec::new();
    for i in 0..count {
        let data = format!("{stream}-{i:04}");
        futures.push(
            producer
                .put(kpl::Record::new(format!("key-{i}"), data.clone()))
                .await
                .unwrap(),
        );
        sent.push(data);
    }
    for f in futures {
        f.await.unwrap();
    }
    assert!(producer.shutdown(Duration::from_secs(5)).await.is_empty());
    sent
}

/// Waits until `log` has every item of `sent`, then checks each was delivered exactly once.
async fn assert_all_once(log: &Log, sent: &[String], what: &str) {
    eventually(Duration::from_secs(30), what, async || log.has_all(sent)).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in log.data() {
        *counts.entry(d).or_default() += 1;
    }
    for s in sent {
        assert_eq!(counts.get(s), Some(&1), "{what}: {s} delivered once");
    }
    assert_eq!(counts.len(), sent.len(), "{what}: nothing else delivered");
}

/// Shard ranges by shard id.
async fn ranges(env: &Env, stream: &str) -> HashMap<String, (u128, u128)> {
    let shards = env
        .kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap_or_default();
    shards
        .into_iter()
        .map(|s| {
            let r = s.hash_key_range.unwrap();
            (
                s.shard_id,
                (
                    r.starting_hash_key.parse().unwrap(),
                    r.ending_hash_key.parse().unwrap(),
                ),
            )
        })
        .collect()
}

/// How many deliveries came from a shard their key does not hash into: aggregates the Java
/// KCL's check would have dropped.
async fn foreign_deliveries(env: &Env, stream: &str, log: &Log) -> usize {
    let ranges = ranges(env, stream).await;
    let deliveries = log.deliveries.lock().unwrap().clone();
    deliveries
        .iter()
        .filter(|d| {
            let hash = kpl::aggregation::hash_key(&d.key, None).unwrap();
            let (start, end) = ranges[&d.shard];
            hash < start || hash > end
        })
        .count()
}

/// Puts into the first shard of `stream` an aggregate `mixed-home`, `mixed-foreign` whose
/// second key hashes into another shard, then an aggregate `own-1`, `own-2` of the shard's own.
async fn put_mixed(env: &Env, stream: &str) {
    let ranges = ranges(env, stream).await;
    let first = ranges["shardId-000000000000"];
    let key_in = |inside: bool| {
        (0..)
            .map(|i| format!("k{i}"))
            .find(|k| {
                let h = kpl::aggregation::hash_key(k, None).unwrap();
                (h >= first.0 && h <= first.1) == inside
            })
            .unwrap()
    };
    let (home, foreign) = (key_in(true), key_in(false));
    let mut mixed = kpl::aggregation::Aggregator::new();
    mixed.push(&home, None, b"mixed-home");
    mixed.push(&foreign, None, b"mixed-foreign");
    let mut own = kpl::aggregation::Aggregator::new();
    own.push(&home, None, b"own-1");
    own.push(&home, None, b"own-2");
    for aggregate in [mixed.finish(), own.finish()] {
        let shard = env
            .kinesis
            .put_record()
            .stream_name(stream)
            .partition_key("a")
            .explicit_hash_key(first.0.to_string())
            .data(Blob::new(aggregate))
            .send()
            .await
            .unwrap()
            .shard_id;
        assert_eq!(shard, "shardId-000000000000");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_streams_deliver_every_aggregated_record_by_polling_and_fan_out() {
    let env = Env::start().await;
    on_demand_stream(&env, "auto", true).await;
    let sent = produce(&env, "auto", 400).await;

    let polled = Arc::new(Log::default());
    let polling = Worker::start(&env, "auto-poll", "auto", "p", &polled, fast_config());
    let pushed = Arc::new(Log::default());
    let fan_out = Worker::start(
        &env,
        "auto-efo",
        "auto",
        "f",
        &pushed,
        crate::fan_out::fan_out(Duration::from_secs(3)),
    );
    assert_all_once(&polled, &sent, "polling").await;
    assert_all_once(&pushed, &sent, "fan-out").await;
    polling.stop().await;
    fan_out.stop().await;
    assert!(
        foreign_deliveries(&env, "auto", &polled).await > 0,
        "aggregates held keys of other shards"
    );
    assert!(foreign_deliveries(&env, "auto", &pushed).await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_to_auto_while_running_loses_nothing() {
    let env = Env::start().await;
    on_demand_stream(&env, "switch", false).await;
    // No shard sync after start-up: only the question asked before a drop can see the switch.
    let config = Config {
        shard_sync_interval: Duration::from_secs(600),
        ..fast_config()
    };
    let log = Arc::new(Log::default());
    let worker = Worker::start(&env, "switch-app", "switch", "w", &log, config);
    env.put("switch", "before", "before").await;
    eventually(Duration::from_secs(20), "the first record", async || {
        log.has_all(&["before".to_owned()])
    })
    .await;
    let arn = env
        .kinesis
        .describe_stream_summary()
        .stream_name("switch")
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn;
    env.kinesis
        .update_stream_record_distribution_strategy()
        .stream_arn(arn)
        .record_distribution_strategy(RecordDistributionStrategy::Auto)
        .send()
        .await
        .unwrap();
    let mut sent = produce(&env, "switch", 200).await;
    sent.push("before".to_owned());
    assert_all_once(&log, &sent, "after the switch").await;
    worker.stop().await;
    assert!(foreign_deliveries(&env, "switch", &log).await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_partition_key_streams_still_drop_aggregates_with_foreign_keys() {
    let env = Env::start().await;
    env.create_stream("upk", 2).await;
    put_mixed(&env, "upk").await;
    let log = Arc::new(Log::default());
    let worker = Worker::start(&env, "upk-app", "upk", "w", &log, fast_config());
    eventually(Duration::from_secs(20), "the aggregate after", async || {
        log.has_all(&["own-1".to_owned(), "own-2".to_owned()])
    })
    .await;
    worker.stop().await;
    assert_eq!(
        log.data(),
        ["own-1", "own-2"],
        "the mixed aggregate is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_stream_application_reads_each_stream_by_its_strategy() {
    let env = Env::start().await;
    on_demand_stream(&env, "ms-auto", true).await;
    env.create_stream("ms-upk", 2).await;
    let sent = produce(&env, "ms-auto", 200).await;
    put_mixed(&env, "ms-upk").await;
    let log = Arc::new(Log::default());
    let scheduler = Arc::new(
        kcl::Scheduler::builder()
            .application("ms-dist-app")
            .stream_tracker(|| vec!["ms-auto".to_owned(), "ms-upk".to_owned()])
            .worker_id("w")
            .kinesis(env.kinesis.clone())
            .dynamodb(env.ddb.clone())
            .processor_factory(crate::common::Factory::new("w", &log))
            .config(fast_config())
            .build()
            .unwrap(),
    );
    let task = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.run().await }
    });
    let mut expected = sent.clone();
    expected.extend(["own-1".to_owned(), "own-2".to_owned()]);
    assert_all_once(&log, &expected, "both streams").await;
    scheduler.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_is_delivered_rather_than_dropped_when_the_strategy_cannot_be_read() {
    let env = Env::start().await;
    env.create_stream("blind", 2).await;
    put_mixed(&env, "blind").await;
    env.handle
        .faults()
        .add(
            core_engine::FaultRule::new(
                "DescribeStreamSummary",
                core_engine::Fault::InternalFailure,
            )
            .on_stream("blind"),
        )
        .unwrap();
    let log = Arc::new(Log::default());
    let worker = Worker::start(&env, "blind-app", "blind", "w", &log, fast_config());
    let all = ["mixed-home", "mixed-foreign", "own-1", "own-2"].map(str::to_owned);
    assert_all_once(&log, &all, "every record").await;
    worker.stop().await;
}

//! Resharding in the middle of a load: nothing lost, nothing straddling shards.

use std::time::Duration;

use core_engine::{Engine, Fault, FaultRule};
use kpl::{Config, Producer, Record};

use crate::common::{Setup, settle};

/// Puts `total` records over 97 keys, splitting a shard after a third and merging two after two
/// thirds. With `preserve_order`, each key must also read back in put order (parents before
/// children).
async fn load_across_a_split(aggregation: bool, preserve_order: bool, total: usize, stream: &str) {
    // Slow calls keep batches in flight while the shards change under them.
    let builder = Engine::builder()
        .throughput_limits(false)
        .fault(FaultRule::new("PutRecords", Fault::Latency { ms: 20 }).with_probability(0.5));
    let setup = Setup::new(builder, stream, 2).await;
    let config = Config {
        aggregation_enabled: aggregation,
        preserve_order,
        record_max_buffered_time: Duration::from_millis(20),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), stream, config)
        .await
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..total {
        if i == total / 3 {
            setup
                .client
                .split_shard()
                .stream_name(stream)
                .shard_to_split("shardId-000000000000")
                .new_starting_hash_key((1u128 << 126).to_string())
                .send()
                .await
                .unwrap();
        }
        if i == total * 2 / 3 {
            setup
                .client
                .merge_shards()
                .stream_name(stream)
                .shard_to_merge("shardId-000000000002")
                .adjacent_shard_to_merge("shardId-000000000003")
                .send()
                .await
                .unwrap();
        }
        futures.push(
            producer
                .put(Record::new(format!("user-{}", i % 97), format!("{i:05}")))
                .await
                .unwrap(),
        );
        // Ordered runs put at a pace, so new records keep arriving while the producer learns of
        // the reshard with older ones of the same keys still queued or in flight.
        let pause_every = if preserve_order { 10 } else { 500 };
        if i % pause_every == 0 {
            tokio::time::sleep(Duration::from_millis(if preserve_order { 1 } else { 5 })).await;
        }
    }
    let outcomes = settle(futures).await;
    if let Some(Err(failure)) = outcomes.iter().find(|o| o.is_err()) {
        panic!(
            "every record delivered; {} not, the first: {failure:?}",
            outcomes.iter().filter(|o| o.is_err()).count()
        );
    }
    // What consumers read, with the rule that drops aggregates straddling shards.
    let read = setup.read_user_records(stream).await;
    assert_eq!(
        read.values().map(Vec::len).sum::<usize>(),
        total,
        "nothing lost, nothing twice"
    );
    for (key, records) in read {
        let data: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
            .collect();
        let mut sorted = data.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(data.len(), sorted.len(), "{key}: no record twice");
        if preserve_order {
            assert_eq!(data, sorted, "{key}: read back in put order");
        }
    }
}

#[tokio::test]
async fn a_split_and_a_merge_during_a_load_lose_nothing() {
    load_across_a_split(false, false, 6_000, "reshard-plain").await;
}

#[tokio::test]
async fn aggregates_across_a_split_and_a_merge_lose_nothing_and_never_straddle() {
    load_across_a_split(true, false, 6_000, "reshard-aggregated").await;
}

/// Unaggregated and ordered, one Kinesis record per shard is in flight at a time: slow by
/// design, hence the smaller load.
#[tokio::test]
async fn order_is_kept_per_key_across_a_split_and_a_merge_when_asked() {
    load_across_a_split(false, true, 1_500, "reshard-ordered").await;
}

#[tokio::test]
async fn aggregates_keep_per_key_order_across_a_split_and_a_merge_when_asked() {
    load_across_a_split(true, true, 6_000, "reshard-ordered-aggregated").await;
}

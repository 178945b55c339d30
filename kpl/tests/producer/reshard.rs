//! Resharding in the middle of a load: nothing lost, nothing straddling shards.

use std::time::Duration;

use core_engine::{Engine, Fault, FaultRule};
use kpl::{Config, Producer, Record};

use crate::common::{Setup, settle};

/// Puts `total` records over 97 keys, splitting a shard after a third and merging two after two
/// thirds. With `preserve_order`, each key must also read back in put order (parents before
/// children). From the split on, the next `list_shards_failures` ListShards calls fail.
async fn load_across_a_split(
    aggregation: bool,
    preserve_order: bool,
    total: usize,
    stream: &str,
    list_shards_failures: u64,
) {
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
            if list_shards_failures > 0 {
                // The producer learns of the split from where its puts land, and cannot read
                // the new shard map for a while.
                let rule = FaultRule::new("ListShards", Fault::InternalFailure)
                    .times(list_shards_failures);
                setup._engine.faults().add(rule).unwrap();
            }
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
    setup._engine.faults().clear();
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
    load_across_a_split(false, false, 6_000, "reshard-plain", 0).await;
}

#[tokio::test]
async fn aggregates_across_a_split_and_a_merge_lose_nothing_and_never_straddle() {
    load_across_a_split(true, false, 6_000, "reshard-aggregated", 0).await;
}

/// Unaggregated and ordered, one Kinesis record per shard is in flight at a time: slow by
/// design, hence the smaller load.
#[tokio::test]
async fn order_is_kept_per_key_across_a_split_and_a_merge_when_asked() {
    load_across_a_split(false, true, 1_500, "reshard-ordered", 0).await;
}

#[tokio::test]
async fn aggregates_keep_per_key_order_across_a_split_and_a_merge_when_asked() {
    load_across_a_split(true, true, 6_000, "reshard-ordered-aggregated", 0).await;
}

/// An aggregate that lands on a child waits for the new shard map; when ListShards fails, it
/// must keep waiting (ahead of newer records, and without being sent twice), not be retried.
#[tokio::test]
async fn aggregates_keep_per_key_order_when_the_shard_map_cannot_be_read_for_a_while() {
    load_across_a_split(true, true, 6_000, "reshard-map-fails", 3).await;
}

/// When the shard map cannot be read at all, records that landed on a child still settle, as
/// expired, within their TTL: waiting for the map never holds a put forever.
#[tokio::test]
async fn records_waiting_for_a_shard_map_that_never_comes_expire() {
    let setup = Setup::unlimited("map-gone", 1).await;
    let config = Config {
        preserve_order: true,
        record_ttl: Duration::from_secs(1),
        record_max_buffered_time: Duration::from_millis(20),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "map-gone", config)
        .await
        .unwrap();
    setup
        ._engine
        .faults()
        .add(FaultRule::new("ListShards", Fault::InternalFailure))
        .unwrap();
    setup
        .client
        .split_shard()
        .stream_name("map-gone")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..200 {
        futures.push(
            producer
                .put(Record::new(format!("k{}", i % 7), format!("{i}")))
                .await
                .unwrap(),
        );
    }
    let outcomes = settle(futures).await;
    let expired: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        !expired.is_empty(),
        "the records that landed on a child cannot be checked"
    );
    for failure in expired {
        assert!(
            matches!(&failure.error, kpl::PutError::Expired { last_error, .. } if last_error == "ShardMapUnavailable"),
            "{failure}"
        );
    }
    assert_eq!(producer.outstanding(), 0);
}

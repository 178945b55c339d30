//! Resharding in the middle of a load: nothing lost, nothing straddling shards.

use std::time::Duration;

use kpl::{Config, Producer, Record};

use crate::common::{Setup, settle};

async fn load_across_a_split(aggregation: bool, stream: &str) {
    let setup = Setup::unlimited(stream, 2).await;
    let config = Config {
        aggregation_enabled: aggregation,
        record_max_buffered_time: Duration::from_millis(20),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), stream, config)
        .await
        .unwrap();
    let mut futures = Vec::new();
    for i in 0..6_000 {
        if i == 2_000 {
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
        if i == 4_000 {
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
        if i % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let outcomes = settle(futures).await;
    assert!(outcomes.iter().all(Result::is_ok), "every record delivered");
    // What consumers read, with the rule that drops aggregates straddling shards.
    let read = setup.read_user_records(stream).await;
    assert_eq!(
        read.values().map(Vec::len).sum::<usize>(),
        6_000,
        "nothing lost, nothing twice"
    );
    for (key, records) in read {
        let data: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
            .collect();
        let mut sorted = data.clone();
        sorted.sort();
        assert_eq!(data.len(), sorted.len(), "{key}");
    }
}

#[tokio::test]
async fn a_split_and_a_merge_during_a_load_lose_nothing() {
    load_across_a_split(false, "reshard-plain").await;
}

#[tokio::test]
async fn aggregates_across_a_split_and_a_merge_lose_nothing_and_never_straddle() {
    load_across_a_split(true, "reshard-aggregated").await;
}

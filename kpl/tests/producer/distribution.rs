//! Streams with the AUTO record distribution strategy: the engine places records itself,
//! whatever their keys, so the producer aggregates per stream instead of per predicted shard,
//! with the rate of all the stream's shards.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use aws_sdk_kinesis::types::{
    RecordDistributionStrategy, ShardIteratorType, StreamMode, StreamModeDetails,
};
use core_engine::Engine;
use kpl::aggregation::deaggregate;
use kpl::{Config, Producer, Record};

use crate::common::{Setup, settle};

/// An engine (throughput limits on) with an on-demand AUTO stream of four shards.
async fn auto_stream(stream: &str) -> Setup {
    let setup = Setup::start(Engine::builder()).await;
    setup
        .client
        .create_stream()
        .stream_name(stream)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .record_distribution_strategy(RecordDistributionStrategy::Auto)
        .send()
        .await
        .unwrap();
    setup
}

/// Per shard, the Kinesis records and the user records they hold (deaggregated without the
/// shard-range check, which AUTO streams cannot meet: their records land on any shard).
async fn read(setup: &Setup, stream: &str) -> BTreeMap<String, (usize, Vec<String>)> {
    let shards = setup
        .client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    let mut by_shard = BTreeMap::new();
    for shard in shards {
        let mut iterator = setup
            .client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(&shard.shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        let (mut kinesis_records, mut users) = (0, Vec::new());
        while let Some(current) = iterator {
            let out = setup
                .client
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            let caught_up = out.records.is_empty() && out.millis_behind_latest == Some(0);
            for record in out.records {
                kinesis_records += 1;
                let data = bytes::Bytes::from(record.data.into_inner());
                let key = record.partition_key.unwrap_or_default();
                for user in deaggregate(&key, None, &data) {
                    users.push(String::from_utf8(user.data.to_vec()).unwrap());
                }
            }
            iterator = if caught_up {
                None
            } else {
                out.next_shard_iterator
            };
        }
        by_shard.insert(shard.shard_id, (kinesis_records, users));
    }
    by_shard
}

#[tokio::test]
async fn an_auto_stream_gets_one_aggregate_per_stream_not_per_shard() {
    let setup = auto_stream("auto-aggregated").await;
    let config = Config {
        record_max_buffered_time: Duration::from_secs(3600),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "auto-aggregated", config)
        .await
        .unwrap();
    // 400 keys that a hash-routing producer would split over the four shards.
    let mut futures = Vec::new();
    for i in 0..400 {
        let record = Record::new(format!("key-{i}"), format!("event-{i:03}"));
        futures.push(producer.put(record).await.unwrap());
    }
    producer.flush();
    let deliveries: Vec<_> = settle(futures)
        .await
        .into_iter()
        .map(|d| d.expect("every record is delivered"))
        .collect();
    // All in one aggregate: one Kinesis record, sub-sequence numbers 0..400.
    let sequence_numbers: HashSet<&str> = deliveries
        .iter()
        .map(|d| d.sequence_number.as_str())
        .collect();
    assert_eq!(sequence_numbers.len(), 1, "one aggregate for the stream");
    let subs: Vec<u64> = deliveries
        .iter()
        .map(|d| d.sub_sequence_number.unwrap())
        .collect();
    assert_eq!(subs, (0..400).collect::<Vec<_>>());
    assert!(deliveries.iter().all(|d| d.attempts.len() == 1));
    let read = read(&setup, "auto-aggregated").await;
    let kinesis_records: usize = read.values().map(|(n, _)| n).sum();
    assert_eq!(kinesis_records, 1);
    let mut users: Vec<String> = read.into_values().flat_map(|(_, u)| u).collect();
    users.sort();
    let expected: Vec<String> = (0..400).map(|i| format!("event-{i:03}")).collect();
    assert_eq!(users, expected);
}

#[tokio::test]
async fn an_auto_stream_is_written_at_the_rate_of_all_its_shards_without_throttling() {
    let setup = auto_stream("auto-rate").await;
    // Unaggregated, so each user record is one Kinesis record against the shards' limits.
    let config = Config {
        aggregation_enabled: false,
        record_max_buffered_time: Duration::from_millis(20),
        ..Config::default()
    };
    let producer = Producer::new(setup.client.clone(), "auto-rate", config)
        .await
        .unwrap();
    let total = 3_000;
    let mut futures = Vec::new();
    for i in 0..total {
        futures.push(
            producer
                .put(Record::new("one-key", format!("r{i}")))
                .await
                .unwrap(),
        );
    }
    let deliveries: Vec<_> = settle(futures)
        .await
        .into_iter()
        .map(|d| d.expect("every record is delivered"))
        .collect();
    // The engine spreads even a single key over every shard...
    let shards: HashSet<&str> = deliveries.iter().map(|d| d.shard_id.as_str()).collect();
    assert_eq!(shards.len(), 4, "{shards:?}");
    // ...and the producer's limiter keeps within what they accept: no record was throttled.
    let throttled = deliveries.iter().filter(|d| d.attempts.len() > 1).count();
    assert_eq!(throttled, 0);
    let read = read(&setup, "auto-rate").await;
    let stored: usize = read.values().map(|(_, users)| users.len()).sum();
    assert_eq!(stored, total);
}

//! AUTO record distribution: puts to an on-demand stream with the AUTO strategy ignore partition
//! and hash keys and spread evenly over the open shards.

use std::collections::BTreeMap;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, RecordDistributionStrategy, StreamMode, StreamModeDetails,
};

use crate::common::{TestEngine, code_of, name};
use crate::monitoring::stream_arn;

async fn create_on_demand(engine: &TestEngine, stream: &str, strategy: RecordDistributionStrategy) {
    engine
        .client
        .create_stream()
        .stream_name(stream)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .record_distribution_strategy(strategy)
        .send()
        .await
        .unwrap();
}

/// How many records each shard holds.
async fn per_shard(engine: &TestEngine, stream: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for shard in engine.shard_ids(stream).await {
        let records = engine.read_all(stream, &shard).await;
        counts.insert(shard, records.len());
    }
    counts
}

async fn put_batch(engine: &TestEngine, stream: &str, count: usize, key: &str) {
    let entries = (0..count)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(format!("r{i}")))
                .partition_key(key)
                .build()
                .unwrap()
        })
        .collect();
    let out = engine
        .client
        .put_records()
        .stream_name(stream)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count, Some(0));
}

#[tokio::test]
async fn auto_streams_spread_records_evenly_whatever_their_keys() {
    let engine = TestEngine::start().await;
    let stream = name("auto");
    create_on_demand(&engine, &stream, RecordDistributionStrategy::Auto).await;
    // One partition key would put everything on one shard; AUTO spreads it over all four.
    put_batch(&engine, &stream, 400, "same-key").await;
    let counts = per_shard(&engine, &stream).await;
    assert_eq!(counts.len(), 4);
    assert!(counts.values().all(|&n| n == 100), "{counts:?}");

    // A record without a partition key, or with an explicit hash key out of range, is taken
    // too; GetRecords shows the key only if one was given.
    let mut shards = Vec::new();
    for _ in 0..4 {
        let out = engine
            .client
            .put_record()
            .stream_name(&stream)
            .data(Blob::new("keyless"))
            .send()
            .await
            .unwrap();
        shards.push(out.shard_id);
    }
    shards.sort();
    shards.dedup();
    assert_eq!(shards.len(), 4, "consecutive puts go to different shards");
    engine
        .client
        .put_record()
        .stream_name(&stream)
        .data(Blob::new("ignored-hash"))
        .partition_key("k")
        .explicit_hash_key("340282366920938463463374607431768211456")
        .send()
        .await
        .unwrap();
    let mut keyless = 0;
    let mut keyed = 0;
    for shard in engine.shard_ids(&stream).await {
        for record in engine.read_all(&stream, &shard).await {
            match record.partition_key.as_deref() {
                None => keyless += 1,
                Some("same-key") | Some("k") => keyed += 1,
                Some(other) => panic!("unexpected key {other}"),
            }
        }
    }
    assert_eq!((keyless, keyed), (4, 401));
}

#[tokio::test]
async fn user_partition_key_streams_route_by_key_and_require_one() {
    let engine = TestEngine::start().await;
    let stream = name("by-key");
    create_on_demand(&engine, &stream, RecordDistributionStrategy::Auto).await;
    engine
        .client
        .update_stream_record_distribution_strategy()
        .stream_arn(stream_arn(&stream))
        .record_distribution_strategy(RecordDistributionStrategy::UserPartitionKey)
        .send()
        .await
        .unwrap();
    put_batch(&engine, &stream, 40, "same-key").await;
    let counts = per_shard(&engine, &stream).await;
    assert_eq!(
        counts.values().filter(|&&n| n == 40).count(),
        1,
        "{counts:?}"
    );
    assert_eq!(counts.values().sum::<usize>(), 40);

    let (code, message) = code_of(
        engine
            .client
            .put_record()
            .stream_name(&stream)
            .data(Blob::new("keyless"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("'partitionKey'"), "{message}");
    let entries = vec![
        PutRecordsRequestEntry::builder()
            .data(Blob::new("a"))
            .partition_key("k")
            .build()
            .unwrap(),
        PutRecordsRequestEntry::builder()
            .data(Blob::new("b"))
            .build()
            .unwrap(),
    ];
    let (code, message) = code_of(
        engine
            .client
            .put_records()
            .stream_name(&stream)
            .set_records(Some(entries))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("'records.2.member.partitionKey'"),
        "{message}"
    );
    // An explicit hash key out of range is refused when it is used.
    let (code, _) = code_of(
        engine
            .client
            .put_record()
            .stream_name(&stream)
            .data(Blob::new("x"))
            .partition_key("k")
            .explicit_hash_key("340282366920938463463374607431768211456")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert_eq!(
        per_shard(&engine, &stream).await.values().sum::<usize>(),
        40
    );
}

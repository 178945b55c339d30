//! Per-shard throughput limits, driven on virtual time, and the switch that turns them off.

use aws_sdk_kinesis::operation::put_records::PutRecordsOutput;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use core_engine::Engine;

use crate::common::{TestEngine, code_of};

fn entries(count: usize, size: usize) -> Vec<PutRecordsRequestEntry> {
    (0..count)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{i}"))
                .data(Blob::new(vec![0u8; size]))
                .build()
                .unwrap()
        })
        .collect()
}

/// One PutRecords of `count` records of `size` bytes, each with its own partition key.
async fn put_batch(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    count: usize,
    size: usize,
) -> PutRecordsOutput {
    client
        .put_records()
        .stream_name(stream)
        .set_records(Some(entries(count, size)))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn put_records_fails_only_the_records_over_a_shards_limit() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("hot", 1).await;
    let client = &engine.client;
    let first = put_batch(client, "hot", 500, 10).await;
    assert_eq!(first.failed_record_count, Some(0));
    let second = put_batch(client, "hot", 500, 10).await;
    assert_eq!(second.failed_record_count, Some(0));
    // The 1,001st record within the same second is over 1,000 records/s.
    let third = put_batch(client, "hot", 10, 10).await;
    assert_eq!(third.failed_record_count, Some(10));
    let failed = &third.records[0];
    assert_eq!(
        failed.error_code.as_deref(),
        Some("ProvisionedThroughputExceededException")
    );
    assert_eq!(
        failed.error_message.as_deref(),
        Some(
            "Rate exceeded for shard shardId-000000000000 in stream hot under account 000000000000."
        )
    );
    assert!(failed.sequence_number.is_none() && failed.shard_id.is_none());
    let (code, _) = code_of(
        client
            .put_record()
            .stream_name("hot")
            .partition_key("k")
            .data(Blob::new("x"))
            .send()
            .await,
    );
    assert_eq!(code, "ProvisionedThroughputExceededException");
    // Half a second later, half the capacity is back.
    clock.advance(500);
    let later = put_batch(client, "hot", 500, 10).await;
    assert_eq!(later.failed_record_count, Some(0));
    let over = put_batch(client, "hot", 50, 10).await;
    assert_eq!(over.failed_record_count, Some(50));
    // Failed records were not written.
    let written = engine.read_all("hot", "shardId-000000000000").await.len();
    assert_eq!(written, 1_500);
}

#[tokio::test]
async fn writes_are_limited_to_a_mebibyte_per_second_per_shard() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("bytes", 2).await;
    let client = &engine.client;
    // Explicit hash keys pin every record to shard 0; 10 x 200 KB is about 2 MB.
    let pinned: Vec<_> = (0..10)
        .map(|_| {
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .explicit_hash_key("0")
                .data(Blob::new(vec![1u8; 200_000]))
                .build()
                .unwrap()
        })
        .collect();
    let out = client
        .put_records()
        .stream_name("bytes")
        .set_records(Some(pinned.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count, Some(5));
    // Shard 1 has its own budget.
    let other = client
        .put_record()
        .stream_name("bytes")
        .partition_key("k")
        .explicit_hash_key(u128::MAX.to_string())
        .data(Blob::new(vec![1u8; 900_000]))
        .send()
        .await;
    assert_eq!(other.unwrap().shard_id, "shardId-000000000001");
    clock.advance(1_000);
    let out = client
        .put_records()
        .stream_name("bytes")
        .set_records(Some(pinned))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count, Some(5));
}

#[tokio::test]
async fn reads_are_limited_by_calls_and_by_bytes() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("reads", 1).await;
    let client = &engine.client;
    let iterator = engine
        .iterator(
            "reads",
            "shardId-000000000000",
            ShardIteratorType::TrimHorizon,
        )
        .await;
    for _ in 0..5 {
        client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .unwrap();
    }
    let (code, message) = code_of(client.get_records().shard_iterator(&iterator).send().await);
    assert_eq!(code, "ProvisionedThroughputExceededException");
    assert!(
        message.starts_with("Rate exceeded for shard shardId-000000000000"),
        "{message}"
    );
    clock.advance(1_000);
    // Fill the shard with 8 MB over 8 virtual seconds, then read it in one call.
    for _ in 0..8 {
        let out = put_batch(client, "reads", 1, 1_000_000).await;
        assert_eq!(out.failed_record_count, Some(0));
        clock.advance(1_000);
    }
    let fresh = engine
        .iterator(
            "reads",
            "shardId-000000000000",
            ShardIteratorType::TrimHorizon,
        )
        .await;
    let big = client
        .get_records()
        .shard_iterator(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(big.records.len(), 8);
    // 8 MB at 2 MiB/s is a debt of about 3 seconds: reads fail until it is repaid.
    clock.advance(2_000);
    let (code, _) = code_of(
        client
            .get_records()
            .shard_iterator(big.next_shard_iterator.as_ref().unwrap())
            .send()
            .await,
    );
    assert_eq!(code, "ProvisionedThroughputExceededException");
    clock.advance(2_000);
    client
        .get_records()
        .shard_iterator(big.next_shard_iterator.unwrap())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn get_shard_iterator_is_limited_to_five_calls_per_second() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("iters", 1).await;
    let call = || {
        engine
            .client
            .get_shard_iterator()
            .stream_name("iters")
            .shard_id("shardId-000000000000")
            .shard_iterator_type(ShardIteratorType::Latest)
            .send()
    };
    for _ in 0..5 {
        call().await.unwrap();
    }
    let (code, _) = code_of(call().await);
    assert_eq!(code, "ProvisionedThroughputExceededException");
    clock.advance(200);
    call().await.unwrap();
}

#[tokio::test]
async fn with_limits_off_nothing_is_throttled() {
    let engine = TestEngine::with(Engine::builder().throughput_limits(false)).await;
    engine.create_stream("free", 1).await;
    for _ in 0..6 {
        let out = put_batch(&engine.client, "free", 500, 1_000).await;
        assert_eq!(out.failed_record_count, Some(0));
    }
    let iterator = engine
        .iterator(
            "free",
            "shardId-000000000000",
            ShardIteratorType::TrimHorizon,
        )
        .await;
    for _ in 0..10 {
        engine
            .client
            .get_records()
            .shard_iterator(&iterator)
            .limit(1)
            .send()
            .await
            .unwrap();
        engine
            .iterator("free", "shardId-000000000000", ShardIteratorType::Latest)
            .await;
    }
}

//! Writing and reading records: routing, sequence numbers, iterators, limits, expiry, retention.

use std::collections::HashSet;

use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};

use crate::common::{TestEngine, code_of};

fn entry(key: &str, data: impl Into<Vec<u8>>) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(key)
        .data(Blob::new(data))
        .build()
        .unwrap()
}

/// The shard whose advertised hash key range holds the MD5 of `key`, as a producer computes it.
async fn expected_shard(engine: &TestEngine, stream: &str, key: &str) -> String {
    use md5::Digest;
    let hash = u128::from_be_bytes(md5::Md5::digest(key.as_bytes()).into());
    let shards = engine
        .client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    shards
        .into_iter()
        .find(|s| {
            let range = s.hash_key_range.as_ref().unwrap();
            let start: u128 = range.starting_hash_key.parse().unwrap();
            let end: u128 = range.ending_hash_key.parse().unwrap();
            start <= hash && hash <= end
        })
        .expect("the shards cover the hash key space")
        .shard_id
}

#[tokio::test]
async fn put_record_then_read_it_back() {
    let engine = TestEngine::start().await;
    engine.create_stream("rt", 1).await;
    let before = std::time::SystemTime::now();
    let (shard, seq) = engine.put("rt", "user-1", b"hello").await;
    assert_eq!(shard, "shardId-000000000000");
    assert!(
        seq.len() >= 20 && seq.bytes().all(|b| b.is_ascii_digit()),
        "{seq}"
    );
    let records = engine.read_all("rt", &shard).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.data.as_ref(), b"hello");
    assert_eq!(record.partition_key(), Some("user-1"));
    assert_eq!(record.sequence_number, seq);
    let arrival = record.approximate_arrival_timestamp.unwrap();
    let before_secs = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (arrival.secs() - before_secs).abs() <= 5,
        "arrival {arrival:?}"
    );
}

#[tokio::test]
async fn records_land_on_the_shard_owning_their_hash_key() {
    let engine = TestEngine::start().await;
    engine.create_stream("route", 4).await;
    for i in 0..40 {
        let key = format!("user-{i}");
        let (shard, _) = engine.put("route", &key, b"x").await;
        assert_eq!(shard, expected_shard(&engine, "route", &key).await, "{key}");
    }
    let explicit = |hash: &str| {
        engine
            .client
            .put_record()
            .stream_name("route")
            .partition_key("ignored")
            .explicit_hash_key(hash)
            .data(Blob::new("x"))
            .send()
    };
    assert_eq!(
        explicit("0").await.unwrap().shard_id,
        "shardId-000000000000"
    );
    assert_eq!(
        explicit(&u128::MAX.to_string()).await.unwrap().shard_id,
        "shardId-000000000003"
    );
    assert_eq!(
        explicit(&(u128::MAX / 2).to_string())
            .await
            .unwrap()
            .shard_id,
        "shardId-000000000001"
    );
}

#[tokio::test]
async fn put_records_orders_sequence_numbers_per_shard_and_keeps_them_unique() {
    let engine = TestEngine::start().await;
    engine.create_stream("batch", 3).await;
    let entries: Vec<_> = (0..500)
        .map(|i| entry(&format!("k{}", i % 37), format!("v{i}")))
        .collect();
    let out = engine
        .client
        .put_records()
        .stream_name("batch")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count, Some(0));
    assert_eq!(out.records.len(), 500);
    let mut unique = HashSet::new();
    let mut last_per_shard = std::collections::HashMap::new();
    for (i, result) in out.records.iter().enumerate() {
        let seq: u128 = result.sequence_number.as_deref().unwrap().parse().unwrap();
        let shard = result.shard_id.clone().unwrap();
        assert_eq!(
            shard,
            expected_shard(&engine, "batch", &format!("k{}", i % 37)).await
        );
        assert!(unique.insert(seq));
        if let Some(previous) = last_per_shard.insert(shard, seq) {
            assert!(
                previous < seq,
                "sequence numbers must increase within a shard"
            );
        }
    }
    // Reading every shard gives back exactly what was written, in write order per shard.
    let mut total = 0;
    for shard in engine.shard_ids("batch").await {
        let records = engine.read_all("batch", &shard).await;
        let numbers: Vec<u128> = records
            .iter()
            .map(|r| r.sequence_number.parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        total += records.len();
    }
    assert_eq!(total, 500);
}

#[tokio::test]
async fn iterator_types_start_where_documented() {
    let engine = TestEngine::start().await;
    engine.create_stream("iters", 1).await;
    let shard = "shardId-000000000000";
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.push(engine.put("iters", "k", format!("r{i}").as_bytes()).await.1);
    }
    let first_data = |engine: &TestEngine, iterator: String| {
        let client = engine.client.clone();
        async move {
            let out = client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .unwrap();
            out.records
                .iter()
                .map(|r| String::from_utf8(r.data.as_ref().to_vec()).unwrap())
                .collect::<Vec<_>>()
        }
    };
    let at = engine
        .iterator_at(
            "iters",
            shard,
            ShardIteratorType::AtSequenceNumber,
            &seqs[2],
        )
        .await;
    assert_eq!(first_data(&engine, at).await, ["r2", "r3", "r4"]);
    let after = engine
        .iterator_at(
            "iters",
            shard,
            ShardIteratorType::AfterSequenceNumber,
            &seqs[2],
        )
        .await;
    assert_eq!(first_data(&engine, after).await, ["r3", "r4"]);
    let latest = engine
        .iterator("iters", shard, ShardIteratorType::Latest)
        .await;
    engine.put("iters", "k", b"r5").await;
    assert_eq!(first_data(&engine, latest).await, ["r5"]);
    let past = DateTime::from_secs(0);
    let at_time = engine
        .client
        .get_shard_iterator()
        .stream_name("iters")
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(past)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    assert_eq!(first_data(&engine, at_time).await.len(), 6);
    let now = DateTime::from(std::time::SystemTime::now());
    // The engine reads its clock in whole milliseconds, so right now it may still be a
    // millisecond behind `now` and refuse it as a timestamp in the future.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let at_now = engine
        .client
        .get_shard_iterator()
        .stream_name("iters")
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(now)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    assert!(first_data(&engine, at_now).await.len() <= 1);
}

#[tokio::test]
async fn get_records_honours_limit_and_reports_lag() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("lag", 1).await;
    for i in 0..10 {
        engine.put("lag", "k", format!("{i}").as_bytes()).await;
        clock.advance(1_000);
    }
    let iterator = engine
        .iterator(
            "lag",
            "shardId-000000000000",
            ShardIteratorType::TrimHorizon,
        )
        .await;
    let page = engine
        .client
        .get_records()
        .shard_iterator(iterator)
        .limit(4)
        .send()
        .await
        .unwrap();
    assert_eq!(page.records.len(), 4);
    // The oldest unread record (the fifth) arrived 6 seconds ago.
    assert_eq!(page.millis_behind_latest, Some(6_000));
    let rest = engine
        .client
        .get_records()
        .shard_iterator(page.next_shard_iterator.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.records.len(), 6);
    assert_eq!(rest.millis_behind_latest, Some(0));
    let empty = engine
        .client
        .get_records()
        .shard_iterator(rest.next_shard_iterator.unwrap())
        .send()
        .await
        .unwrap();
    assert!(empty.records.is_empty());
    assert!(
        empty.next_shard_iterator.is_some(),
        "an open shard always gives a next iterator"
    );
}

#[tokio::test]
async fn get_records_returns_at_most_ten_mebibytes() {
    // 12 MB into one shard in an instant is over its write limit; this test is about reads.
    let engine = TestEngine::with(core_engine::Engine::builder().throughput_limits(false)).await;
    engine.create_stream("big", 1).await;
    let megabyte = vec![7u8; 1_000_000];
    for _ in 0..2 {
        let entries: Vec<_> = (0..6)
            .map(|i| entry(&format!("k{i}"), megabyte.clone()))
            .collect();
        engine
            .client
            .put_records()
            .stream_name("big")
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
    }
    let iterator = engine
        .iterator(
            "big",
            "shardId-000000000000",
            ShardIteratorType::TrimHorizon,
        )
        .await;
    let first = engine
        .client
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .unwrap();
    let bytes: usize = first
        .records
        .iter()
        .map(|r| r.data.as_ref().len() + r.partition_key().map_or(0, str::len))
        .sum();
    assert_eq!(first.records.len(), 10);
    assert!(bytes <= 10 << 20);
    let second = engine
        .client
        .get_records()
        .shard_iterator(first.next_shard_iterator.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(second.records.len(), 2);
}

#[tokio::test]
async fn iterators_expire_after_five_minutes() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("expiry", 1).await;
    let iterator = engine
        .iterator(
            "expiry",
            "shardId-000000000000",
            ShardIteratorType::TrimHorizon,
        )
        .await;
    clock.advance(299_000);
    let fresh = engine
        .client
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap();
    clock.advance(2_000);
    let (code, message) = code_of(
        engine
            .client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await,
    );
    assert_eq!(code, "ExpiredIteratorException");
    assert!(
        message.contains("tolerated delay of 300000 milliseconds"),
        "{message}"
    );
    // The iterator handed back by the successful read is newer, so it still works.
    engine
        .client
        .get_records()
        .shard_iterator(fresh.next_shard_iterator.unwrap())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn records_past_retention_are_trimmed() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("trim", 1).await;
    engine
        .client
        .increase_stream_retention_period()
        .stream_name("trim")
        .retention_period_hours(48)
        .send()
        .await
        .unwrap();
    engine.put("trim", "k", b"old").await;
    clock.advance(30 * 3_600_000);
    engine.put("trim", "k", b"new").await;
    // Within 48 hours both are there.
    assert_eq!(
        engine.read_all("trim", "shardId-000000000000").await.len(),
        2
    );
    // Lowering retention to 24 hours drops the record written 30 hours ago.
    engine
        .client
        .decrease_stream_retention_period()
        .stream_name("trim")
        .retention_period_hours(24)
        .send()
        .await
        .unwrap();
    let left = engine.read_all("trim", "shardId-000000000000").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].data.as_ref(), b"new");
    // And 25 hours later nothing is left.
    clock.advance(25 * 3_600_000);
    assert!(
        engine
            .read_all("trim", "shardId-000000000000")
            .await
            .is_empty()
    );
    // A new record still gets a higher sequence number than any before it.
    let (_, seq) = engine.put("trim", "k", b"newest").await;
    assert!(seq.parse::<u128>().unwrap() > left[0].sequence_number.parse::<u128>().unwrap());
}

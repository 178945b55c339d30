//! Capacity modes, on-demand scale-out and the per-stream maximum record size.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardFilter, ShardFilterType, StreamMode, StreamModeDetails,
};

use crate::common::{TestEngine, code_of};

fn mode(mode: StreamMode) -> StreamModeDetails {
    StreamModeDetails::builder()
        .stream_mode(mode)
        .build()
        .unwrap()
}

fn arn(stream: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}")
}

async fn open_shards(engine: &TestEngine, stream: &str) -> usize {
    let filter = ShardFilter::builder()
        .r#type(ShardFilterType::AtLatest)
        .build()
        .unwrap();
    engine
        .client
        .list_shards()
        .stream_name(stream)
        .shard_filter(filter)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap()
        .len()
}

#[tokio::test]
async fn streams_switch_between_provisioned_and_on_demand() {
    let engine = TestEngine::start().await;
    engine.create_stream("modes", 2).await;
    let client = &engine.client;
    client
        .update_stream_mode()
        .stream_arn(arn("modes"))
        .stream_mode_details(mode(StreamMode::OnDemand))
        .send()
        .await
        .unwrap();
    let summary = client
        .describe_stream_summary()
        .stream_name("modes")
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(
        summary.stream_mode_details.unwrap().stream_mode,
        StreamMode::OnDemand
    );
    assert_eq!(
        summary.open_shard_count, 2,
        "switching modes keeps the shards"
    );
    let (code, _) = code_of(
        client
            .split_shard()
            .stream_name("modes")
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key("1000")
            .send()
            .await,
    );
    assert_eq!(
        code, "ValidationException",
        "on-demand streams are not resharded by hand"
    );
    client
        .update_stream_mode()
        .stream_arn(arn("modes"))
        .stream_mode_details(mode(StreamMode::Provisioned))
        .send()
        .await
        .unwrap();
    client
        .split_shard()
        .stream_name("modes")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1000")
        .send()
        .await
        .unwrap();
    let (code, _) = code_of(
        client
            .update_stream_mode()
            .stream_arn(arn("missing"))
            .stream_mode_details(mode(StreamMode::OnDemand))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn an_on_demand_shard_kept_over_its_limit_is_split() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine
        .client
        .create_stream()
        .stream_name("auto")
        .stream_mode_details(mode(StreamMode::OnDemand))
        .send()
        .await
        .unwrap();
    assert_eq!(open_shards(&engine, "auto").await, 4);
    // Every record goes to shard 0, at 1,500 records per virtual second against its 1,000.
    let hot: Vec<_> = (0..500)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{i}"))
                .explicit_hash_key("0")
                .data(Blob::new("x"))
                .build()
                .unwrap()
        })
        .collect();
    let mut seconds = 0;
    while open_shards(&engine, "auto").await == 4 {
        for _ in 0..3 {
            engine
                .client
                .put_records()
                .stream_name("auto")
                .set_records(Some(hot.clone()))
                .send()
                .await
                .unwrap();
        }
        clock.advance(1_000);
        seconds += 1;
        assert!(seconds <= 10, "the hot shard was never split");
    }
    assert!(
        seconds >= 5,
        "split after {seconds} s, before the shard stayed hot for 5 s"
    );
    assert_eq!(open_shards(&engine, "auto").await, 5);
    let shards = engine
        .client
        .list_shards()
        .stream_name("auto")
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    let children: Vec<_> = shards
        .iter()
        .filter(|s| s.parent_shard_id.as_deref() == Some("shardId-000000000000"))
        .collect();
    assert_eq!(children.len(), 2);
}

#[tokio::test]
async fn the_maximum_record_size_is_set_per_stream() {
    let engine = TestEngine::start().await;
    let client = &engine.client;
    engine.create_stream("small", 1).await;
    client
        .create_stream()
        .stream_name("large")
        .shard_count(1)
        .max_record_size_in_kib(2048)
        .send()
        .await
        .unwrap();
    let summary = client
        .describe_stream_summary()
        .stream_name("large")
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(summary.max_record_size_in_kib, Some(2048));
    let big = vec![1u8; 1_500_000];
    let put = |stream: &'static str, data: Vec<u8>| {
        client
            .put_record()
            .stream_name(stream)
            .partition_key("k")
            .data(Blob::new(data))
            .send()
    };
    put("large", big.clone()).await.unwrap();
    let (code, _) = code_of(put("small", big.clone()).await);
    assert_eq!(code, "ValidationException");
    client
        .update_max_record_size()
        .stream_arn(arn("small"))
        .max_record_size_in_kib(10240)
        .send()
        .await
        .unwrap();
    put("small", big.clone()).await.unwrap();
    client
        .update_max_record_size()
        .stream_arn(arn("large"))
        .max_record_size_in_kib(1024)
        .send()
        .await
        .unwrap();
    let (code, _) = code_of(put("large", big).await);
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(
        client
            .update_max_record_size()
            .stream_arn(arn("large"))
            .max_record_size_in_kib(512)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(
        client
            .create_stream()
            .stream_name("huge")
            .shard_count(1)
            .max_record_size_in_kib(20_000)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
}

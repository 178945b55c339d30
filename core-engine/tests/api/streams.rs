//! Stream lifecycle: create, describe, list, delete, retention, tags and limits.

use std::time::Duration;

use aws_sdk_kinesis::types::{StreamMode, StreamModeDetails, StreamStatus};
use std::sync::Arc;

use aws_sdk_kinesis::client::Waiters;
use core_engine::{Engine, ManualClock};

use crate::common::{TestEngine, code_of, name};

#[tokio::test]
async fn stream_lifecycle_create_describe_list_delete() {
    let engine = TestEngine::start().await;
    let client = &engine.client;
    let stream = name("lifecycle");
    engine.create_stream(&stream, 3).await;

    let described = client
        .describe_stream()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    let description = described.stream_description.unwrap();
    assert_eq!(description.stream_status, StreamStatus::Active);
    assert_eq!(description.retention_period_hours, 24);
    assert_eq!(
        description.stream_arn,
        format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}")
    );
    assert_eq!(description.shards.len(), 3);
    assert!(!description.has_more_shards);
    let first = &description.shards[0];
    assert_eq!(first.shard_id, "shardId-000000000000");
    assert_eq!(
        first.hash_key_range.as_ref().unwrap().starting_hash_key,
        "0"
    );
    assert_eq!(
        description.shards[2]
            .hash_key_range
            .as_ref()
            .unwrap()
            .ending_hash_key,
        u128::MAX.to_string()
    );

    let summary = client
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    let summary = summary.stream_description_summary.unwrap();
    assert_eq!(summary.open_shard_count, 3);
    assert_eq!(
        summary.stream_mode_details.unwrap().stream_mode,
        StreamMode::Provisioned
    );

    let listed = client.list_streams().send().await.unwrap();
    assert_eq!(listed.stream_names, vec![stream.clone()]);
    assert_eq!(
        listed.stream_summaries.unwrap()[0].stream_status,
        StreamStatus::Active
    );

    client
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    let (code, message) = code_of(client.describe_stream().stream_name(&stream).send().await);
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(
        message,
        format!("Stream {stream} under account 000000000000 not found.")
    );
}

#[tokio::test]
async fn stream_arn_works_wherever_the_name_does() {
    let engine = TestEngine::start().await;
    let client = &engine.client;
    engine.create_stream("by-arn", 1).await;
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/by-arn";
    let summary = client
        .describe_stream_summary()
        .stream_arn(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary.stream_description_summary.unwrap().stream_name,
        "by-arn"
    );
    let put = client
        .put_record()
        .stream_arn(arn)
        .partition_key("k")
        .data(aws_sdk_kinesis::primitives::Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.shard_id, "shardId-000000000000");
    // Name and ARN together, as the KPL sends them.
    client
        .list_shards()
        .stream_name("by-arn")
        .send()
        .await
        .unwrap();
    client
        .describe_stream()
        .stream_name("by-arn")
        .stream_arn(arn)
        .send()
        .await
        .unwrap();
    let other_account = "arn:aws:kinesis:us-east-1:111111111111:stream/by-arn";
    let (code, _) = code_of(
        client
            .describe_stream_summary()
            .stream_arn(other_account)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = code_of(client.delete_stream().stream_arn("not-an-arn").send().await);
    assert_eq!(code, "ValidationException");
    client.delete_stream().stream_arn(arn).send().await.unwrap();
    assert!(
        client
            .list_streams()
            .send()
            .await
            .unwrap()
            .stream_names
            .is_empty()
    );
}

#[tokio::test]
async fn streams_are_creating_until_the_delay_passes_and_waiters_see_them() {
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let builder = Engine::builder()
        .clock(clock.clone())
        .stream_create_delay(Duration::from_secs(2));
    let engine = TestEngine::with(builder).await;
    let client = &engine.client;
    engine.create_stream("slow", 1).await;
    let status = client
        .describe_stream_summary()
        .stream_name("slow")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.stream_description_summary.unwrap().stream_status,
        StreamStatus::Creating
    );
    // Data-plane calls do not see a stream that is still being created.
    let (code, _) = code_of(
        client
            .put_record()
            .stream_name("slow")
            .partition_key("k")
            .data(aws_sdk_kinesis::primitives::Blob::new("x"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    clock.advance(2_000);
    client
        .wait_until_stream_exists()
        .stream_name("slow")
        .wait(Duration::from_secs(60))
        .await
        .unwrap();
    let status = client
        .describe_stream_summary()
        .stream_name("slow")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.stream_description_summary.unwrap().stream_status,
        StreamStatus::Active
    );
}

#[tokio::test]
async fn on_demand_streams_start_with_four_shards() {
    let engine = TestEngine::start().await;
    engine
        .client
        .create_stream()
        .stream_name("od")
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let summary = engine
        .client
        .describe_stream_summary()
        .stream_name("od")
        .send()
        .await
        .unwrap();
    let summary = summary.stream_description_summary.unwrap();
    assert_eq!(summary.open_shard_count, 4);
    assert_eq!(
        summary.stream_mode_details.unwrap().stream_mode,
        StreamMode::OnDemand
    );
    let limits = engine.client.describe_limits().send().await.unwrap();
    assert_eq!(limits.on_demand_stream_count, 1);
    assert_eq!(limits.open_shard_count, 4);
    assert_eq!(limits.shard_limit, 10_000);
}

#[tokio::test]
async fn list_streams_and_describe_stream_paginate() {
    let engine = TestEngine::start().await;
    let client = &engine.client;
    for i in 0..5 {
        engine.create_stream(&format!("page-{i}"), 1).await;
    }
    let first = client.list_streams().limit(2).send().await.unwrap();
    assert_eq!(first.stream_names, ["page-0", "page-1"]);
    assert!(first.has_more_streams);
    let second = client
        .list_streams()
        .limit(2)
        .next_token(first.next_token.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(second.stream_names, ["page-2", "page-3"]);
    let rest = client
        .list_streams()
        .exclusive_start_stream_name("page-3")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.stream_names, ["page-4"]);
    assert!(!rest.has_more_streams);
    assert!(rest.next_token.is_none());
    let (code, _) = code_of(client.list_streams().next_token("garbage").send().await);
    assert_eq!(code, "InvalidArgumentException");

    engine.create_stream("wide", 7).await;
    let mut seen = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = client
            .describe_stream()
            .stream_name("wide")
            .limit(3)
            .set_exclusive_start_shard_id(start.clone())
            .send()
            .await
            .unwrap()
            .stream_description
            .unwrap();
        assert!(page.shards.len() <= 3);
        seen.extend(page.shards.iter().map(|s| s.shard_id.clone()));
        if !page.has_more_shards {
            break;
        }
        start = seen.last().cloned();
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen[6], "shardId-000000000006");
}

#[tokio::test]
async fn retention_can_be_raised_and_lowered_within_bounds() {
    let engine = TestEngine::start().await;
    let client = &engine.client;
    engine.create_stream("keep", 1).await;
    client
        .increase_stream_retention_period()
        .stream_name("keep")
        .retention_period_hours(48)
        .send()
        .await
        .unwrap();
    let hours = |e: &TestEngine| {
        let client = e.client.clone();
        async move {
            client
                .describe_stream_summary()
                .stream_name("keep")
                .send()
                .await
                .unwrap()
                .stream_description_summary
                .unwrap()
                .retention_period_hours
        }
    };
    assert_eq!(hours(&engine).await, 48);
    let (code, message) = code_of(
        client
            .increase_stream_retention_period()
            .stream_name("keep")
            .retention_period_hours(30)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("can not be shorter than existing retention period (48 hours)"),
        "{message}"
    );
    let (code, _) = code_of(
        client
            .decrease_stream_retention_period()
            .stream_name("keep")
            .retention_period_hours(72)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    let (code, message) = code_of(
        client
            .increase_stream_retention_period()
            .stream_name("keep")
            .retention_period_hours(8761)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("Maximum allowed retention period is 8760 hours"),
        "{message}"
    );
    let (code, message) = code_of(
        client
            .decrease_stream_retention_period()
            .stream_name("keep")
            .retention_period_hours(23)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("Minimum allowed retention period is 24 hours"),
        "{message}"
    );
    let (code, _) = code_of(
        client
            .decrease_stream_retention_period()
            .stream_name("keep")
            .retention_period_hours(0)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    client
        .decrease_stream_retention_period()
        .stream_name("keep")
        .retention_period_hours(24)
        .send()
        .await
        .unwrap();
    assert_eq!(hours(&engine).await, 24);
}

#[tokio::test]
async fn tags_are_added_listed_paginated_and_removed() {
    let engine = TestEngine::start().await;
    let client = &engine.client;
    engine.create_stream("tagged", 1).await;
    client
        .add_tags_to_stream()
        .stream_name("tagged")
        .tags("team", "data")
        .tags("env", "dev")
        .send()
        .await
        .unwrap();
    client
        .add_tags_to_stream()
        .stream_name("tagged")
        .tags("env", "prod")
        .send()
        .await
        .unwrap();
    let tags = client
        .list_tags_for_stream()
        .stream_name("tagged")
        .send()
        .await
        .unwrap();
    let pairs: Vec<_> = tags
        .tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(pairs, [("env", "prod"), ("team", "data")]);
    let page = client
        .list_tags_for_stream()
        .stream_name("tagged")
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.tags.len(), 1);
    assert!(page.has_more_tags);
    let next = client
        .list_tags_for_stream()
        .stream_name("tagged")
        .exclusive_start_tag_key("env")
        .send()
        .await
        .unwrap();
    assert_eq!(next.tags[0].key, "team");
    client
        .remove_tags_from_stream()
        .stream_name("tagged")
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let tags = client
        .list_tags_for_stream()
        .stream_name("tagged")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags.len(), 1);

    let mut too_many = client.add_tags_to_stream().stream_name("tagged");
    for i in 0..50 {
        too_many = too_many.tags(format!("k{i}"), "v");
    }
    let (code, message) = code_of(too_many.send().await);
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("cannot have more than 50 tags"),
        "{message}"
    );
    let (code, _) = code_of(
        client
            .add_tags_to_stream()
            .stream_name("tagged")
            .tags("", "v")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(
        client
            .list_tags_for_stream()
            .stream_name("nope")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}

//! AWS-like timing, off by default: resharding shows UPDATING and consumer registration
//! CREATING for a configured time on the engine clock.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::types::{ConsumerStatus, ScalingType, ShardIteratorType, StreamStatus};
use core_engine::{Engine, ManualClock};

use crate::common::{TestEngine, code_of};
use crate::fan_out::{consumer, next_event, subscribe};

const START_MS: i64 = 1_750_000_000_000;

async fn stream_status(engine: &TestEngine, stream: &str) -> StreamStatus {
    engine
        .client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_status
}

#[tokio::test]
async fn resharding_shows_updating_for_the_configured_time() {
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = TestEngine::with(
        Engine::builder()
            .clock(clock.clone())
            .reshard_delay(Duration::from_secs(5)),
    )
    .await;
    engine.create_stream("resharded", 2).await;
    assert_eq!(
        stream_status(&engine, "resharded").await,
        StreamStatus::Active
    );
    engine
        .client
        .update_shard_count()
        .stream_name("resharded")
        .target_shard_count(4)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stream_status(&engine, "resharded").await,
        StreamStatus::Updating
    );
    // Records flow meanwhile; another resharding waits for ACTIVE, as on AWS.
    engine.put("resharded", "k", b"while updating").await;
    let (code, message) = code_of(
        engine
            .client
            .merge_shards()
            .stream_name("resharded")
            .shard_to_merge("shardId-000000000002")
            .adjacent_shard_to_merge("shardId-000000000003")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceInUseException");
    assert!(message.contains("UPDATING"), "{message}");
    clock.advance(4_999);
    assert_eq!(
        stream_status(&engine, "resharded").await,
        StreamStatus::Updating
    );
    clock.advance(1);
    assert_eq!(
        stream_status(&engine, "resharded").await,
        StreamStatus::Active
    );
    let shards = engine.shard_ids("resharded").await;
    engine
        .client
        .split_shard()
        .stream_name("resharded")
        .shard_to_split(shards.last().unwrap())
        .new_starting_hash_key("340282366920938463463374607431768211000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stream_status(&engine, "resharded").await,
        StreamStatus::Updating
    );
}

#[tokio::test]
async fn resharding_leaves_the_stream_active_by_default() {
    let engine = TestEngine::start().await;
    engine.create_stream("instant", 1).await;
    engine
        .client
        .update_shard_count()
        .stream_name("instant")
        .target_shard_count(2)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stream_status(&engine, "instant").await,
        StreamStatus::Active
    );
}

#[tokio::test]
async fn a_consumer_stays_creating_for_the_configured_time() {
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = TestEngine::with(
        Engine::builder()
            .clock(clock.clone())
            .consumer_create_delay(Duration::from_secs(5)),
    )
    .await;
    engine.create_stream("fan", 1).await;
    assert_eq!(stream_status(&engine, "fan").await, StreamStatus::Active);
    let arn = consumer(&engine, "slow").await;
    let status = || async {
        engine
            .client
            .describe_stream_consumer()
            .consumer_arn(&arn)
            .send()
            .await
            .unwrap()
            .consumer_description
            .unwrap()
            .consumer_status
    };
    assert_eq!(status().await, ConsumerStatus::Creating);
    let (code, _) = code_of(
        engine
            .client
            .subscribe_to_shard()
            .consumer_arn(&arn)
            .shard_id("shardId-000000000000")
            .starting_position(
                aws_sdk_kinesis::types::StartingPosition::builder()
                    .r#type(ShardIteratorType::Latest)
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!(code, "ResourceInUseException", "subscribing while CREATING");
    clock.advance(5_000);
    assert_eq!(status().await, ConsumerStatus::Active);
    let mut events = subscribe(
        &engine,
        &arn,
        "shardId-000000000000",
        ShardIteratorType::Latest,
    )
    .await;
    next_event(&mut events, Duration::from_secs(4)).await;
}

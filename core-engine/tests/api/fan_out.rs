//! Enhanced fan-out: consumers, and SubscribeToShard through the Rust SDK's event stream.

use std::time::Duration;

use aws_sdk_kinesis::types::{
    ConsumerStatus, ShardIteratorType, StartingPosition, SubscribeToShardEvent,
    SubscribeToShardEventStream,
};
use core_engine::Engine;

use crate::common::{TestEngine, code_of};

const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/fan";

/// Registers consumer `name` on the stream `fan` and returns its ARN.
pub(crate) async fn consumer(engine: &TestEngine, name: &str) -> String {
    let out = engine
        .client
        .register_stream_consumer()
        .stream_arn(STREAM_ARN)
        .consumer_name(name)
        .send()
        .await
        .unwrap();
    out.consumer.unwrap().consumer_arn
}

fn position(kind: ShardIteratorType) -> StartingPosition {
    StartingPosition::builder().r#type(kind).build().unwrap()
}

/// A SubscribeToShard event stream as the SDK hands it out.
pub(crate) type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
>;

/// Subscribes `consumer` to `shard` from the position `kind`.
pub(crate) async fn subscribe(
    engine: &TestEngine,
    consumer: &str,
    shard: &str,
    kind: ShardIteratorType,
) -> Events {
    engine
        .client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(position(kind))
        .send()
        .await
        .unwrap()
        .event_stream
}

/// The next SubscribeToShardEvent, failing after `within`.
pub(crate) async fn next_event(events: &mut Events, within: Duration) -> SubscribeToShardEvent {
    let event = tokio::time::timeout(within, events.recv())
        .await
        .expect("an event in time")
        .expect("a healthy stream")
        .expect("the stream is open");
    match event {
        SubscribeToShardEventStream::SubscribeToShardEvent(event) => event,
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test]
async fn consumers_register_turn_active_list_and_deregister() {
    let engine = TestEngine::start().await;
    engine.create_stream("fan", 1).await;
    let client = &engine.client;
    let registered = client
        .register_stream_consumer()
        .stream_arn(STREAM_ARN)
        .consumer_name("app-1")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap();
    assert_eq!(registered.consumer_status, ConsumerStatus::Creating);
    assert!(
        registered
            .consumer_arn
            .starts_with(&format!("{STREAM_ARN}/consumer/app-1:"))
    );
    let described = client
        .describe_stream_consumer()
        .consumer_arn(&registered.consumer_arn)
        .send()
        .await
        .unwrap()
        .consumer_description
        .unwrap();
    assert_eq!(described.consumer_status, ConsumerStatus::Active);
    assert_eq!(described.stream_arn, STREAM_ARN);
    let by_name = client
        .describe_stream_consumer()
        .stream_arn(STREAM_ARN)
        .consumer_name("app-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_name.consumer_description.unwrap().consumer_arn,
        registered.consumer_arn
    );
    let (code, _) = code_of(
        client
            .register_stream_consumer()
            .stream_arn(STREAM_ARN)
            .consumer_name("app-1")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceInUseException");
    for i in 2..=20 {
        consumer(&engine, &format!("app-{i}")).await;
    }
    let (code, _) = code_of(
        client
            .register_stream_consumer()
            .stream_arn(STREAM_ARN)
            .consumer_name("app-21")
            .send()
            .await,
    );
    assert_eq!(code, "LimitExceededException");
    let first_page = client
        .list_stream_consumers()
        .stream_arn(STREAM_ARN)
        .max_results(15)
        .send()
        .await
        .unwrap();
    assert_eq!(first_page.consumers.as_ref().unwrap().len(), 15);
    let rest = client
        .list_stream_consumers()
        .stream_arn(STREAM_ARN)
        .next_token(first_page.next_token.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.consumers.unwrap().len(), 5);
    let summary = client
        .describe_stream_summary()
        .stream_name("fan")
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary.stream_description_summary.unwrap().consumer_count,
        Some(20)
    );
    client
        .deregister_stream_consumer()
        .consumer_arn(&registered.consumer_arn)
        .send()
        .await
        .unwrap();
    let (code, _) = code_of(
        client
            .describe_stream_consumer()
            .consumer_arn(&registered.consumer_arn)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn subscribers_receive_records_pushed_as_they_are_put() {
    let engine = TestEngine::start().await;
    engine.create_stream("fan", 1).await;
    engine.put("fan", "k", b"before").await;
    let arn = consumer(&engine, "pusher").await;
    let mut events = subscribe(
        &engine,
        &arn,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
    )
    .await;
    let first = next_event(&mut events, Duration::from_secs(5)).await;
    assert_eq!(first.records.len(), 1);
    assert_eq!(first.records[0].data.as_ref(), b"before");
    assert_eq!(
        first.continuation_sequence_number,
        first.records[0].sequence_number
    );
    // Each put arrives as its own event, pushed on append. (How fast is measured by the
    // throughput bench's fan-out phase; this checks each record comes alone and in order.)
    for i in 0..20 {
        let (_, seq) = engine.put("fan", "k", format!("live-{i}").as_bytes()).await;
        let event = next_event(&mut events, Duration::from_secs(30)).await;
        assert_eq!(event.records.len(), 1);
        assert_eq!(event.records[0].sequence_number, seq);
        assert_eq!(event.millis_behind_latest, 0);
    }
}

#[tokio::test]
async fn an_idle_subscription_gets_heartbeats_that_can_be_checkpointed() {
    let engine = TestEngine::start().await;
    engine.create_stream("fan", 1).await;
    let arn = consumer(&engine, "idle").await;
    let mut events = subscribe(
        &engine,
        &arn,
        "shardId-000000000000",
        ShardIteratorType::Latest,
    )
    .await;
    let heartbeat = next_event(&mut events, Duration::from_secs(7)).await;
    assert!(heartbeat.records.is_empty());
    let continuation = heartbeat.continuation_sequence_number;
    assert!(!continuation.is_empty(), "a heartbeat has a continuation");
    // The continuation is a valid place to resume from.
    engine
        .client
        .get_shard_iterator()
        .stream_name("fan")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
        .starting_sequence_number(continuation)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_first_event_comes_at_once_not_after_the_first_heartbeat() {
    let engine = TestEngine::start().await;
    engine.create_stream("fan", 1).await;
    let arn = consumer(&engine, "eager").await;
    let mut events = subscribe(
        &engine,
        &arn,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
    )
    .await;
    // An empty shard: the first event is empty, and comes before the 5 s heartbeat would.
    let first = next_event(&mut events, Duration::from_secs(4)).await;
    assert!(first.records.is_empty());
    assert!(!first.continuation_sequence_number.is_empty());
}

#[tokio::test]
async fn a_subscription_reaches_shard_end_with_child_shards() {
    let engine = TestEngine::start().await;
    engine.create_stream("fan", 1).await;
    let arn = consumer(&engine, "ender").await;
    engine.put("fan", "k", b"last").await;
    let mut events = subscribe(
        &engine,
        &arn,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
    )
    .await;
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5))
            .await
            .records
            .len(),
        1
    );
    engine
        .client
        .split_shard()
        .stream_name("fan")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1000")
        .send()
        .await
        .unwrap();
    let end = next_event(&mut events, Duration::from_secs(5)).await;
    // Absent on the wire; the SDK models the member as required and reads it as empty.
    assert!(end.continuation_sequence_number.is_empty());
    let children: Vec<_> = end
        .child_shards
        .unwrap()
        .into_iter()
        .map(|c| c.shard_id)
        .collect();
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    // The stream ends after the shard end.
    let after = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(after.is_none());
}

#[tokio::test]
async fn a_second_subscription_is_refused_then_takes_over_after_five_seconds() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("fan", 1).await;
    let arn = consumer(&engine, "exclusive").await;
    let mut first = subscribe(
        &engine,
        &arn,
        "shardId-000000000000",
        ShardIteratorType::Latest,
    )
    .await;
    let start = || {
        engine
            .client
            .subscribe_to_shard()
            .consumer_arn(&arn)
            .shard_id("shardId-000000000000")
            .starting_position(position(ShardIteratorType::Latest))
            .send()
    };
    let (code, message) = code_of(start().await);
    assert_eq!(code, "ResourceInUseException");
    assert!(
        message.contains("Another active subscription exists"),
        "{message}"
    );
    clock.advance(5_000);
    let mut second = start().await.unwrap().event_stream;
    // The first stream ends with a ResourceInUseException.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match first.recv().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without saying why"),
                Err(error) => return error,
            }
        }
    })
    .await
    .unwrap();
    let error = ended.into_service_error();
    assert!(error.is_resource_in_use_exception(), "{error:?}");
    // The second one works: its first event comes at once, empty (nothing put yet).
    let opening = next_event(&mut second, Duration::from_secs(5)).await;
    assert!(opening.records.is_empty());
    engine.put("fan", "k", b"for the new owner").await;
    let event = next_event(&mut second, Duration::from_secs(5)).await;
    assert_eq!(event.records[0].data.as_ref(), b"for the new owner");
}

#[tokio::test]
async fn subscriptions_end_after_their_lifetime_and_validate_their_input() {
    let engine =
        TestEngine::with(Engine::builder().subscription_lifetime(Duration::from_millis(300))).await;
    engine.create_stream("fan", 1).await;
    let arn = consumer(&engine, "short").await;
    let mut events = subscribe(
        &engine,
        &arn,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
    )
    .await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(_event) = events.recv().await.unwrap() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the subscription should end after its lifetime"
    );
    let client = &engine.client;
    let (code, _) = code_of(
        client
            .subscribe_to_shard()
            .consumer_arn(format!("{arn}0"))
            .shard_id("shardId-000000000000")
            .starting_position(position(ShardIteratorType::Latest))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = code_of(
        client
            .subscribe_to_shard()
            .consumer_arn(&arn)
            .shard_id("shardId-000000000007")
            .starting_position(position(ShardIteratorType::Latest))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let at_sequence = StartingPosition::builder()
        .r#type(ShardIteratorType::AtSequenceNumber)
        .build()
        .unwrap();
    let (code, _) = code_of(
        client
            .subscribe_to_shard()
            .consumer_arn(&arn)
            .shard_id("shardId-000000000000")
            .starting_position(at_sequence)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
}

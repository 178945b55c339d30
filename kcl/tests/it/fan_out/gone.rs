//! A SubscribeToShard answered ResourceNotFoundException: the shard is gone (closed and past
//! retention), and is treated as ended so its children are read, or the consumer is gone
//! (deregistered), and the shard is not ended. The worker asks Kinesis which, rather than
//! reading the error's message.

use core_engine::ManualClock;

use super::*;

/// The lease's checkpoint, if the lease is still in the table.
async fn checkpoint(env: &Env, app: &str, shard: &str) -> Option<String> {
    let item = env
        .ddb
        .get_item()
        .table_name(app)
        .key(
            "leaseKey",
            aws_sdk_dynamodb::types::AttributeValue::S(shard.into()),
        )
        .send()
        .await
        .unwrap()
        .item?;
    item.get("checkpoint").and_then(|v| v.as_s().ok()).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_gone_past_retention_is_ended_and_its_children_are_read() {
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let env = Env::with(engine(Duration::from_secs(60)).clock(clock.clone())).await;
    env.create_stream("aged", 1).await;
    for i in 0..3 {
        env.put("aged", "k", &format!("old-{i}")).await;
    }
    let log = Arc::new(Log::default());
    let config = fan_out(Duration::from_secs(3));
    let first = Worker::start(&env, "aged-app", "aged", "w1", &log, config.clone());
    eventually(Duration::from_secs(20), "the old records", async || {
        log.data().len() == 3
    })
    .await;
    first.stop().await;

    // The fleet is down for a day; meanwhile the shard was split, and the parent expires.
    env.kinesis
        .split_shard()
        .stream_name("aged")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    clock.advance(25 * 3_600_000);
    let fresh: Vec<String> = (0..10).map(|i| format!("new-{i}")).collect();
    for (i, data) in fresh.iter().enumerate() {
        env.put("aged", &format!("user-{i}"), data).await;
    }

    let second = Worker::start(&env, "aged-app", "aged", "w2", &log, config);
    eventually(
        Duration::from_secs(30),
        "the children's records",
        async || log.has_all(&fresh),
    )
    .await;
    // The lease may already be cleaned up, which happens only to finished leases.
    if let Some(checkpoint) = checkpoint(&env, "aged-app", "shardId-000000000000").await {
        assert_eq!(checkpoint, "SHARD_END", "the gone parent is finished");
    }
    second.stop().await;
    assert_no_polling(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_consumer_does_not_end_the_shard() {
    // Short subscriptions, so the worker soon subscribes again after the deregistration.
    let env = Env::with(engine(Duration::from_millis(500))).await;
    env.create_stream("orphan", 1).await;
    env.put("orphan", "k", "before").await;
    let log = Arc::new(Log::default());
    let worker = Worker::start(
        &env,
        "orphan-app",
        "orphan",
        "w",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    eventually(Duration::from_secs(20), "the first record", async || {
        log.has_all(&["before".to_owned()])
    })
    .await;

    // Someone deregisters the application's consumer. The worker's next subscriptions fail
    // with ResourceNotFoundException; its first questions about the consumer fail too, then
    // it learns the consumer is gone.
    let questions = 3;
    env.handle
        .faults()
        .add(FaultRule::new("DescribeStreamConsumer", Fault::InternalFailure).times(questions))
        .unwrap();
    let stream = env
        .kinesis
        .describe_stream_summary()
        .stream_name("orphan")
        .send()
        .await
        .unwrap();
    let consumers = env
        .kinesis
        .list_stream_consumers()
        .stream_arn(stream.stream_description_summary().unwrap().stream_arn())
        .send()
        .await
        .unwrap();
    let arn = consumers.consumers()[0].consumer_arn().to_owned();
    env.kinesis
        .deregister_stream_consumer()
        .consumer_arn(arn)
        .send()
        .await
        .unwrap();
    env.put("orphan", "k", "after").await;
    eventually(
        Duration::from_secs(30),
        "the worker asking about its consumer",
        async || {
            env.handle.faults().rules().iter().all(|rule| {
                rule.operation.as_deref() != Some("DescribeStreamConsumer") || rule.times == Some(0)
            })
        },
    )
    .await;
    // The answers so far: three failed questions (nothing concluded) and "consumer gone".
    // Neither may end the shard, which still holds a record nobody read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let checkpoint = checkpoint(&env, "orphan-app", "shardId-000000000000").await;
    assert_ne!(checkpoint.as_deref(), Some("SHARD_END"));
    assert!(!log.data().contains(&"after".to_owned()));
    assert_eq!(
        env.owners("orphan-app").await.get("shardId-000000000000"),
        Some(&Some("w".to_owned())),
        "the worker keeps the lease"
    );
    worker.stop().await;
    assert_no_polling(&env);
}

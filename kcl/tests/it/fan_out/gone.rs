//! A SubscribeToShard answered ResourceNotFoundException: the shard is gone (closed and past
//! retention), and is treated as ended so its children are read, or the consumer is gone
//! (deregistered), and the shard is not ended: the consumer is registered again under its name
//! and reading goes on from where it stopped. The worker asks Kinesis which, rather than
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

/// Puts `{prefix}-{i}` records, `n` into each of the two shards of `stream`; returns them.
async fn put_both(env: &Env, stream: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..n {
        for (s, hash) in [0, 1u128 << 127].into_iter().enumerate() {
            let data = format!("{prefix}-{s}-{i}");
            env.put_at(stream, hash, &data).await;
            sent.push(data);
        }
    }
    sent
}

/// The ARNs of `stream`'s consumers.
async fn consumer_arns(env: &Env, stream: &str) -> Vec<String> {
    let stream_arn = env
        .kinesis
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn;
    env.kinesis
        .list_stream_consumers()
        .stream_arn(stream_arn)
        .send()
        .await
        .unwrap()
        .consumers
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.consumer_arn)
        .collect()
}

/// Someone deregisters the application's consumer.
async fn deregister(env: &Env, stream: &str) {
    let arns = consumer_arns(env, stream).await;
    assert_eq!(arns.len(), 1, "one consumer before");
    env.kinesis
        .deregister_stream_consumer()
        .consumer_arn(&arns[0])
        .send()
        .await
        .unwrap();
}

/// After the deregistration: every record exactly once, no lease finished, and one consumer,
/// the application's, which each worker now uses.
async fn assert_read_on(
    env: &Env,
    app: &str,
    stream: &str,
    log: &Log,
    sent: &[String],
    workers: &[&Worker],
) {
    eventually(
        Duration::from_secs(30),
        "the records put after the deregistration",
        async || log.has_all(sent),
    )
    .await;
    assert_exactly_once(log, sent);
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let checkpoint = checkpoint(env, app, shard).await;
        assert_ne!(checkpoint.as_deref(), Some("SHARD_END"), "{shard} ended");
    }
    assert_eq!(consumers(env, stream).await, vec![app.to_owned()]);
    let arns = consumer_arns(env, stream).await;
    for worker in workers {
        assert_eq!(worker.scheduler.consumer_arn().as_ref(), arns.first());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_consumer_is_registered_again_and_reading_goes_on() {
    // Short subscriptions, so the worker soon subscribes again after the deregistration.
    let env = Env::with(engine(Duration::from_millis(500))).await;
    env.create_stream("orphan", 2).await;
    let mut sent = put_both(&env, "orphan", "before", 3).await;
    let log = Arc::new(Log::default());
    let worker = Worker::start(
        &env,
        "orphan-app",
        "orphan",
        "w",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    eventually(Duration::from_secs(20), "the first records", async || {
        log.has_all(&sent)
    })
    .await;

    // The worker's next subscriptions fail with ResourceNotFoundException; its first questions
    // about the consumer fail too (nothing is concluded from them), then it learns the
    // consumer is gone and registers it again.
    env.handle
        .faults()
        .add(FaultRule::new("DescribeStreamConsumer", Fault::InternalFailure).times(3))
        .unwrap();
    deregister(&env, "orphan").await;
    sent.extend(put_both(&env, "orphan", "after", 5).await);
    assert_read_on(&env, "orphan-app", "orphan", &log, &sent, &[&worker]).await;
    assert_eq!(
        env.owners("orphan-app")
            .await
            .values()
            .flatten()
            .collect::<Vec<_>>(),
        vec!["w", "w"],
        "the worker keeps its leases"
    );
    // And again, now that the records flow through the consumer registered again.
    deregister(&env, "orphan").await;
    sent.extend(put_both(&env, "orphan", "again", 5).await);
    assert_read_on(&env, "orphan-app", "orphan", &log, &sent, &[&worker]).await;
    worker.stop().await;
    assert_no_polling(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_register_a_deregistered_consumer_again_as_one() {
    let env = Env::with(engine(Duration::from_millis(500))).await;
    env.create_stream("orphans", 2).await;
    let mut sent = put_both(&env, "orphans", "before", 3).await;
    let log = Arc::new(Log::default());
    let config = fan_out(Duration::from_secs(3));
    let a = Worker::start(&env, "orphans-app", "orphans", "a", &log, config.clone());
    let b = Worker::start(&env, "orphans-app", "orphans", "b", &log, config);
    eventually(Duration::from_secs(30), "a lease each, read", async || {
        let owners = env.owners("orphans-app").await;
        crate::common::per_owner(&owners).len() == 2
            && crate::common::owners_started(&log, &owners)
            && log.has_all(&sent)
    })
    .await;

    // Both workers learn at once that the consumer is gone, and both register it again.
    deregister(&env, "orphans").await;
    sent.extend(put_both(&env, "orphans", "after", 5).await);
    assert_read_on(&env, "orphans-app", "orphans", &log, &sent, &[&a, &b]).await;
    a.stop().await;
    b.stop().await;
    assert_no_polling(&env);
}

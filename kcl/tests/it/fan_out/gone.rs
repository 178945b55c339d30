//! A SubscribeToShard answered ResourceNotFoundException: the shard is gone (closed and past
//! retention), and is treated as ended so its children are read, or the consumer is gone
//! (deregistered), and the shard is not ended: the consumer is registered again under its name
//! and reading goes on from where it stopped. The worker asks Kinesis which, rather than
//! reading the error's message.

use super::*;
use crate::expired::checkpoint;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_gone_past_retention_is_ended_and_its_children_are_read() {
    let config = fan_out(Duration::from_secs(3));
    let env = crate::expired::a_gone_parent_is_ended(engine(Duration::from_secs(60)), config).await;
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

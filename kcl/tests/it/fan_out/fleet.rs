//! Fan-out in a fleet: resharding, a killed worker, two applications, registration races and
//! stealing.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_merge_under_load_keep_per_key_order() {
    let env = Arc::new(Env::with(engine(Duration::from_millis(700))).await);
    env.create_stream("efo-reshard", 1).await;
    let log = Arc::new(Log::default());
    let config = Config {
        finished_lease_retention: Duration::ZERO,
        ..fan_out(Duration::from_secs(3))
    };
    let a = Worker::start(
        &env,
        "efo-reshard-app",
        "efo-reshard",
        "a",
        &log,
        config.clone(),
    );
    let b = Worker::start(&env, "efo-reshard-app", "efo-reshard", "b", &log, config);
    let load = producer(&env, "efo-reshard", Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.kinesis
        .split_shard()
        .stream_name("efo-reshard")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.kinesis
        .merge_shards()
        .stream_name("efo-reshard")
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = stop_producer(load).await;
    eventually(
        Duration::from_secs(60),
        "every record through the lineage",
        async || log.has_all(&sent),
    )
    .await;
    assert_key_order(&log);
    let events = log.events();
    for parent in [
        "shardId-000000000000",
        "shardId-000000000001",
        "shardId-000000000002",
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.starts_with("shard_ended") && e.ends_with(parent)),
            "{parent} ended through fan-out"
        );
    }
    a.stop().await;
    b.stop().await;
    assert!(log.overlaps().is_empty());
    assert!(log.redelivered_after_ack().is_empty());
    assert_no_polling(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_shards_resume_elsewhere_from_their_checkpoints() {
    let env = Arc::new(Env::with(engine(Duration::from_secs(60))).await);
    env.create_stream("kill", 4).await;
    let log = Arc::new(Log::default());
    let a = Worker::start(
        &env,
        "kill-app",
        "kill",
        "a",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    let b = Worker::start(
        &env,
        "kill-app",
        "kill",
        "b",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    eventually(
        Duration::from_secs(15),
        "both workers holding leases",
        async || {
            let owners = crate::common::per_owner(&env.owners("kill-app").await);
            owners.len() == 2 && owners.values().sum::<usize>() == 4
        },
    )
    .await;
    let load = producer(&env, "kill", Duration::from_millis(15));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // As SIGKILL: no shutdown, no lease given up, subscriptions cut mid-stream.
    a.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = stop_producer(load).await;
    eventually(Duration::from_secs(30), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    let owners = env.owners("kill-app").await;
    assert!(owners.values().all(|o| o.as_deref() == Some("b")));
    b.stop().await;
    assert_key_order(&log);
    assert!(log.overlaps().is_empty(), "{:?}", log.overlaps());
    assert!(log.redelivered_after_ack().is_empty());
    assert_no_polling(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applications_each_read_every_record_through_their_own_consumer() {
    let env = Arc::new(Env::with(engine(Duration::from_secs(2))).await);
    env.create_stream("shared", 2).await;
    let (audit, search) = (Arc::new(Log::default()), Arc::new(Log::default()));
    let a = Worker::start(
        &env,
        "audit",
        "shared",
        "w",
        &audit,
        fan_out(Duration::from_secs(3)),
    );
    // One names the stream by ARN (registration then needs no DescribeStreamSummary).
    let s = Worker::start(
        &env,
        "search",
        "arn:aws:kinesis:us-east-1:000000000000:stream/shared",
        "w",
        &search,
        fan_out(Duration::from_secs(3)),
    );
    let load = producer(&env, "shared", Duration::from_millis(15));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = stop_producer(load).await;
    for log in [&audit, &search] {
        eventually(Duration::from_secs(20), "every record", async || {
            log.has_all(&sent)
        })
        .await;
    }
    a.stop().await;
    s.stop().await;
    for log in [&audit, &search] {
        assert_exactly_once(log, &sent);
        assert_key_order(log);
    }
    let mut names = consumers(&env, "shared").await;
    names.sort();
    assert_eq!(names, ["audit", "search"]);
    // Each application has its own lease table.
    assert_eq!(env.owners("audit").await.len(), 2);
    assert_eq!(env.owners("search").await.len(), 2);
    assert_no_polling(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_registering_at_once_end_with_one_consumer() {
    // Consumers stay CREATING for a while, so the registrations overlap.
    let env = Arc::new(
        Env::with(engine(Duration::from_secs(60)).stream_create_delay(Duration::from_millis(400)))
            .await,
    );
    env.create_stream("race", 4).await;
    eventually(Duration::from_secs(10), "the stream", async || {
        env.kinesis
            .describe_stream_summary()
            .stream_name("race")
            .send()
            .await
            .unwrap()
            .stream_description_summary
            .unwrap()
            .stream_status
            == aws_sdk_kinesis::types::StreamStatus::Active
    })
    .await;
    let log = Arc::new(Log::default());
    let workers: Vec<Worker> = (0..4)
        .map(|i| {
            Worker::start(
                &env,
                "race-app",
                "race",
                &format!("w{i}"),
                &log,
                fan_out(Duration::from_secs(3)),
            )
        })
        .collect();
    let mut sent = Vec::new();
    for i in 0..40 {
        let data = format!("key{}:{}", i % 8, i / 8);
        env.put("race", &format!("key{}", i % 8), &data).await;
        sent.push(data);
    }
    eventually(Duration::from_secs(20), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    eventually(
        Duration::from_secs(20),
        "every worker started",
        async || workers.iter().all(|w| w.scheduler.consumer_arn().is_some()),
    )
    .await;
    let arns: HashSet<Option<String>> =
        workers.iter().map(|w| w.scheduler.consumer_arn()).collect();
    assert_eq!(arns.len(), 1, "{arns:?}");
    assert!(arns.iter().all(Option::is_some));
    for w in workers {
        // `stop` fails the test if `run` returned an error.
        w.stop().await;
    }
    assert_eq!(consumers(&env, "race").await, ["race-app"]);
    // Never deregistered on shutdown.
    assert_no_polling(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_worker_steals_leases_and_the_old_subscriptions_close() {
    let env = Arc::new(Env::with(engine(Duration::from_secs(60))).await);
    env.create_stream("steal", 4).await;
    let log = Arc::new(Log::default());
    let a = Worker::start(
        &env,
        "steal-app",
        "steal",
        "a",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    eventually(
        Duration::from_secs(15),
        "a holding every lease",
        async || crate::common::per_owner(&env.owners("steal-app").await).get("a") == Some(&4),
    )
    .await;
    let load = producer(&env, "steal", Duration::from_millis(15));
    let b = Worker::start(
        &env,
        "steal-app",
        "steal",
        "b",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    eventually(
        Duration::from_secs(30),
        "two leases each, both processing",
        async || {
            let owners = env.owners("steal-app").await;
            let counts = crate::common::per_owner(&owners);
            counts.get("a") == Some(&2)
                && counts.get("b") == Some(&2)
                && crate::common::owners_started(&log, &owners)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut sent = stop_producer(load).await;
    // One record per shard: each is read by the shard's current owner. The stolen shards' new
    // owner subscribed while the old subscriptions may still have been on the engine's books
    // (ResourceInUse until they closed or the 5 s takeover) and goes on reading.
    let owners = env.owners("steal-app").await;
    let mut marks = Vec::new();
    for (shard, hash) in env.open_shards("steal").await {
        let data = format!("mark-{shard}:0");
        env.put_at("steal", hash, &data).await;
        marks.push((shard, data.clone()));
        sent.push(data);
    }
    eventually(Duration::from_secs(30), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    for (shard, data) in &marks {
        let readers: Vec<String> = log
            .deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| &d.data == data)
            .map(|d| d.worker.clone())
            .collect();
        assert_eq!(readers, [owners[shard].clone().unwrap()], "{shard}");
    }
    a.stop().await;
    b.stop().await;
    assert_key_order(&log);
    assert!(log.overlaps().is_empty(), "{:?}", log.overlaps());
    assert!(log.redelivered_after_ack().is_empty());
    // Moved by graceful handoff: a's processors were asked to shut down, not told of a loss.
    assert!(log.events().iter().any(|e| e.starts_with("shutdown a ")));
    assert!(!log.events().iter().any(|e| e.starts_with("lease_lost a ")));
    assert_no_polling(&env);
}

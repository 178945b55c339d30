//! kcl against a lease table that is slow, throttles, fails, hangs and drops answers (some after
//! applying the write): no shard is processed by two workers at once, no acknowledged
//! checkpoint is lost, renewals go on while a checkpoint hangs, shutdown stays bounded, and
//! start-up survives failing calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use core_engine::{Engine, Fault, FaultRule};
use kcl::leases::{Checkpoint, LeaseTable, SequenceNumber};

use crate::common::{
    Env, Hook, Log, Partition, Worker, eventually, fast_config, owners_started, per_owner,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_overlap_and_no_lost_checkpoint_under_dynamodb_latency_and_dropped_answers() {
    let app = "lossy-app";
    let table_rule = |operation: &str, fault| FaultRule::dynamodb(operation, fault).on_table(app);
    let env = Arc::new(
        Env::with(
            Engine::builder()
                // Renewals slower than the renewal interval, checkpoints waiting.
                .fault(table_rule("UpdateItem", Fault::Latency { ms: 700 }).with_probability(0.15))
                // Writes applied whose answer never comes, and writes never applied.
                .fault(table_rule("UpdateItem", Fault::DropAfterApply).with_probability(0.1))
                .fault(table_rule("UpdateItem", Fault::DropConnection).with_probability(0.05))
                .fault(table_rule("GetItem", Fault::DropConnection).with_probability(0.1))
                .fault(table_rule("Scan", Fault::Latency { ms: 300 }).with_probability(0.2))
                .fault(
                    FaultRule::dynamodb_any(Fault::Throttle)
                        .on_table(app)
                        .with_probability(0.05),
                ),
        )
        .await,
    );
    env.create_stream("lossy", 4).await;
    let log = Arc::new(Log::default());
    let start = |id: &str| Worker::start(&env, app, "lossy", id, &log, fast_config());
    let (a, b, c) = (start("a"), start("b"), start("c"));
    let running = Arc::new(AtomicBool::new(true));
    let producer = {
        let env = env.clone();
        let running = running.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut n = 0;
            while running.load(Ordering::SeqCst) {
                for k in 0..8 {
                    let data = format!("key{k}:{n}");
                    env.put("lossy", &format!("key{k}"), &data).await;
                    sent.push(data);
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            sent
        })
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    // A crash and a newcomer while the faults go on: leases expire, move and get stolen.
    c.kill();
    let d = start("d");
    tokio::time::sleep(Duration::from_secs(6)).await;
    running.store(false, Ordering::SeqCst);
    let sent = producer.await.unwrap();
    env.handle.faults().clear();
    eventually(Duration::from_secs(60), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    for w in [a, b, d] {
        w.stop().await;
    }

    let overlaps = log.overlaps();
    assert!(
        overlaps.is_empty(),
        "one shard processed by two workers at once: {overlaps:?}"
    );
    let redelivered = log.redelivered_after_ack();
    assert!(
        redelivered.is_empty(),
        "records delivered again after an acknowledged checkpoint covered them: {redelivered:?}"
    );
    // Every acknowledged checkpoint is in the table (or was passed by a later one).
    let leases = LeaseTable::new(env.ddb.clone(), app).list().await.unwrap();
    let mut acked: HashMap<String, SequenceNumber> = HashMap::new();
    for ack in log.acked.lock().unwrap().iter() {
        let seq = SequenceNumber::new(&*ack.sequence, 0);
        let best = acked.entry(ack.shard.clone()).or_insert(seq.clone());
        if seq > *best {
            *best = seq;
        }
    }
    for (shard, seq) in &acked {
        let lease = leases.iter().find(|l| &l.key == shard).unwrap();
        let stored = lease.checkpoint.sequence().cloned();
        assert!(
            stored.as_ref().is_some_and(|s| s >= seq) || lease.checkpoint == Checkpoint::ShardEnd,
            "{shard}: acknowledged {seq:?}, stored {:?}",
            lease.checkpoint
        );
    }
    let events = log.events();
    let lost = events
        .iter()
        .filter(|e| e.starts_with("lease_lost"))
        .count();
    println!(
        "{} records, {} deliveries, {} acknowledged checkpoints, {lost} leases lost",
        sent.len(),
        log.data().len(),
        log.acked.lock().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_go_on_while_a_checkpoint_hangs() {
    let app = "hang-cp-app";
    let env = Arc::new(Env::start().await);
    env.create_stream("hang-cp", 2).await;
    let log = Arc::new(Log::default());
    let config = kcl::Config {
        dynamodb_timeout: Duration::from_secs(1),
        ..fast_config()
    };
    let a = Worker::start(&env, app, "hang-cp", "a", &log, config.clone());
    let b = Worker::start(&env, app, "hang-cp", "b", &log, config.clone());
    eventually(Duration::from_secs(30), "one lease each", async || {
        let owners = env.owners(app).await;
        let counts = per_owner(&owners);
        counts.get("a") == Some(&1) && counts.get("b") == Some(&1) && owners_started(&log, &owners)
    })
    .await;
    let owners = env.owners(app).await;
    // Balancing may have moved a lease before; only what happens from here on counts.
    let earlier_events = log.events().len();
    // The next lease-table write (the checkpoint that follows) is answered 8 s late: more than
    // five times the failover time.
    let hung = Arc::new(AtomicBool::new(false));
    *log.before_checkpoint.lock().unwrap() = Some(Hook(Box::new({
        let env = env.clone();
        let hung = hung.clone();
        move || {
            env.handle
                .faults()
                .add(
                    FaultRule::dynamodb("UpdateItem", Fault::Latency { ms: 8_000 })
                        .on_table(app)
                        .times(1),
                )
                .unwrap();
            hung.store(true, Ordering::SeqCst);
        }
    })));
    let (shard, seq) = env.put("hang-cp", "k", "slow-checkpoint").await;
    eventually(Duration::from_secs(30), "the checkpoint", async || {
        let lease = LeaseTable::new(env.ddb.clone(), app)
            .get(&shard)
            .await
            .unwrap()
            .unwrap();
        lease.checkpoint == Checkpoint::at(seq.clone(), 0)
    })
    .await;
    assert!(hung.load(Ordering::SeqCst));
    // Outlast the hung call's answer too.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(env.owners(app).await, owners, "a lease changed hands");
    let events = log.events().split_off(earlier_events);
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("lease_lost") || e.starts_with("checkpoint-error")),
        "{events:?}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_under_a_hung_dynamodb() {
    let app = "hung-ddb-app";
    let env = Env::start().await;
    env.create_stream("hung-ddb", 2).await;
    let log = Arc::new(Log::default());
    let config = kcl::Config {
        shutdown_timeout: Duration::from_secs(1),
        ..fast_config()
    };
    let w = Worker::start(&env, app, "hung-ddb", "w", &log, config);
    env.put("hung-ddb", "k", "before").await;
    eventually(Duration::from_secs(30), "the first record", async || {
        log.has_all(&["before".into()])
    })
    .await;
    // From now on no lease-table call is ever answered (a minute is forever here).
    env.handle
        .faults()
        .add(FaultRule::dynamodb_any(Fault::Latency { ms: 60_000 }).on_table(app))
        .unwrap();
    env.put("hung-ddb", "k", "during").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    // Bounded by shutdown_timeout + dynamodb_timeout (1 s + 5 s); the margin is for a loaded
    // machine, the point is that it does not wait for DynamoDB.
    tokio::time::timeout(Duration::from_secs(30), w.stop())
        .await
        .expect("shutdown hung with DynamoDB");
    println!(
        "shutdown under a hung DynamoDB took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_survives_failing_calls() {
    // Each failure below outlasts the SDK's own three attempts.
    let env = Env::with(
        Engine::builder()
            .fault(FaultRule::dynamodb("DescribeTable", Fault::InternalFailure).times(6))
            .fault(FaultRule::dynamodb("CreateTable", Fault::Throttle).times(3))
            .fault(FaultRule::new("ListShards", Fault::InternalFailure).times(6)),
    )
    .await;
    env.create_stream("flaky-start", 1).await;
    env.put("flaky-start", "k", "first").await;
    let log = Arc::new(Log::default());
    let w = Worker::start(
        &env,
        "flaky-start-app",
        "flaky-start",
        "w",
        &log,
        fast_config(),
    );
    eventually(Duration::from_secs(60), "the first record", async || {
        assert!(!w.task.is_finished(), "run() gave up: {:?}", w.task);
        log.has_all(&["first".into()])
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_whose_answer_was_dropped_is_confirmed_not_assumed() {
    let app = "dropped-cp-app";
    let env = Arc::new(Env::start().await);
    env.create_stream("dropped-cp", 1).await;
    let log = Arc::new(Log::default());
    let w = Worker::start(&env, app, "dropped-cp", "w", &log, fast_config());
    env.put("dropped-cp", "k", "first").await;
    eventually(Duration::from_secs(30), "the first record", async || {
        log.has_all(&["first".into()])
    })
    .await;
    // The next lease-table write (the checkpoint that follows) is applied and its answer lost.
    *log.before_checkpoint.lock().unwrap() = Some(Hook(Box::new({
        let env = env.clone();
        move || {
            let faults = env.handle.faults();
            let rule = |fault| {
                FaultRule::dynamodb("UpdateItem", fault)
                    .on_table(app)
                    .times(1)
            };
            faults.add(rule(Fault::DropAfterApply)).unwrap();
        }
    })));
    let (shard, seq) = env.put("dropped-cp", "k", "second").await;
    eventually(
        Duration::from_secs(30),
        "the acknowledged checkpoint",
        async || log.acked.lock().unwrap().iter().any(|a| a.sequence == seq),
    )
    .await;
    let lease = LeaseTable::new(env.ddb.clone(), app)
        .get(&shard)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.checkpoint, Checkpoint::at(seq.clone(), 0));
    assert_eq!(lease.owner.as_deref(), Some("w"));
    let events = log.events();
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("lease_lost") || e.starts_with("checkpoint-error")),
        "the write landed, so the lease is still held: {events:?}"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_from_dynamodb_stops_before_another_takes_over() {
    let app = "cut-app";
    let env = Arc::new(Env::start().await);
    env.create_stream("cut", 1).await;
    let log = Arc::new(Log::default());
    let partition = Partition::start(&env).await;
    let a = Worker::start_with(
        &env,
        crate::common::ddb_client(&partition.url),
        app,
        "cut",
        "a",
        &log,
        fast_config(),
    );
    eventually(Duration::from_secs(30), "a running the shard", async || {
        log.events().iter().any(|e| e.starts_with("init a "))
    })
    .await;
    let b = Worker::start(&env, app, "cut", "b", &log, fast_config());
    let running = Arc::new(AtomicBool::new(true));
    let producer = {
        let env = env.clone();
        let running = running.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut n = 0;
            while running.load(Ordering::SeqCst) {
                let data = format!("c{n}");
                env.put("cut", "k", &data).await;
                sent.push(data);
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sent
        })
    };
    eventually(Duration::from_secs(30), "a processing", async || {
        log.deliveries.lock().unwrap().len() > 20
    })
    .await;
    // a's lease-table connection hangs: its renewals and checkpoints get no answer, while it
    // still reads the stream.
    partition.cut();
    eventually(Duration::from_secs(30), "b taking over", async || {
        log.deliveries
            .lock()
            .unwrap()
            .iter()
            .any(|d| d.worker == "b")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.store(false, Ordering::SeqCst);
    let sent = producer.await.unwrap();
    eventually(Duration::from_secs(30), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    let overlaps = log.overlaps();
    assert!(
        overlaps.is_empty(),
        "a and b processed the shard at once: {overlaps:?}"
    );
    assert!(
        log.events()
            .iter()
            .any(|e| e == "lease_lost a shardId-000000000000"),
        "a stopped the shard on its own: {:?}",
        log.events()
    );
    a.kill();
    b.stop().await;
}

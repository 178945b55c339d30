//! Processor contract: retries without skipping, graceful shutdown, fencing after a steal.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kcl::leases::{Checkpoint, LeaseTable};

use crate::common::{Env, Log, Worker, eventually, fast_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_retried_not_skipped() {
    let env = Env::start().await;
    env.create_stream("retry", 1).await;
    let log = Arc::new(Log::default());
    log.fail_batches.store(3, Ordering::SeqCst);
    let mut expected = Vec::new();
    for i in 0..5 {
        let data = format!("r{i}");
        env.put("retry", "k", &data).await;
        expected.push(data);
    }
    let w = Worker::start(&env, "retry-app", "retry", "w", &log, fast_config());
    eventually(
        Duration::from_secs(20),
        "success after failures",
        async || {
            log.fail_batches.load(Ordering::SeqCst) == 0
                && log.has_all(&expected)
                && log.data().len() >= 4 * expected.len()
        },
    )
    .await;
    // The same batch was delivered four times (three failures, one success), in order.
    let data = log.data();
    for attempt in data.chunks(expected.len()).take(4) {
        assert_eq!(attempt, expected.as_slice());
    }
    eventually(Duration::from_secs(10), "the checkpoint", async || {
        let lease = LeaseTable::new(env.ddb.clone(), "retry-app")
            .get("shardId-000000000000")
            .await
            .unwrap()
            .unwrap();
        matches!(lease.checkpoint, Checkpoint::Sequence(_))
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_checkpoints_and_releases_leases() {
    let env = Env::start().await;
    env.create_stream("graceful", 2).await;
    let log = Arc::new(Log::default());
    log.no_batch_checkpoints.store(true, Ordering::SeqCst);
    let w = Worker::start(&env, "graceful-app", "graceful", "w", &log, fast_config());
    let mut last = std::collections::HashMap::new();
    let mut expected = Vec::new();
    for i in 0..20 {
        let data = format!("g{i}");
        let (shard, seq) = env.put("graceful", &format!("k{i}"), &data).await;
        last.insert(shard, seq);
        expected.push(data);
    }
    eventually(Duration::from_secs(20), "every record", async || {
        log.has_all(&expected)
    })
    .await;
    w.stop().await;
    let leases = LeaseTable::new(env.ddb.clone(), "graceful-app")
        .list()
        .await
        .unwrap();
    assert_eq!(leases.len(), 2);
    for lease in leases {
        assert_eq!(lease.owner, None, "released at shutdown");
        if let Some(seq) = last.get(&lease.key) {
            assert_eq!(lease.checkpoint, Checkpoint::at(seq.clone(), 0));
        }
    }
    assert_eq!(
        log.events()
            .iter()
            .filter(|e| e.starts_with("shutdown"))
            .count(),
        2
    );

    // A new worker resumes after the checkpoints: nothing is delivered twice.
    let before = log.data().len();
    env.put("graceful", "k", "after").await;
    let w = Worker::start(&env, "graceful-app", "graceful", "w2", &log, fast_config());
    eventually(Duration::from_secs(20), "the new record", async || {
        log.has_all(&["after".to_string()])
    })
    .await;
    w.stop().await;
    assert_eq!(log.data().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_is_fenced_after_a_steal() {
    let env = Env::start().await;
    env.create_stream("fence", 1).await;
    let log = Arc::new(Log::default());
    let w = Worker::start(&env, "fence-app", "fence", "w", &log, fast_config());
    env.put("fence", "k", "first").await;
    eventually(Duration::from_secs(20), "first", async || {
        log.has_all(&["first".into()])
    })
    .await;
    let table = LeaseTable::new(env.ddb.clone(), "fence-app");
    // Another worker steals the lease (a conditional take on the counter it saw).
    loop {
        let lease = table.get("shardId-000000000000").await.unwrap().unwrap();
        if table
            .take(&lease.key, "thief", lease.counter, lease.owner.as_deref())
            .await
            .unwrap()
        {
            break;
        }
    }
    env.put("fence", "k", "second").await;
    eventually(Duration::from_secs(20), "lease lost", async || {
        log.events().iter().any(|e| e.starts_with("lease_lost w"))
    })
    .await;
    let lease = table.get("shardId-000000000000").await.unwrap().unwrap();
    assert_eq!(lease.owner.as_deref(), Some("thief"));
    // Whatever the old owner processed after the steal, its checkpoints did not land.
    if log.has_all(&["second".into()]) {
        assert!(
            log.events()
                .iter()
                .any(|e| e.contains("checkpoint-error w") && e.ends_with("lost=true"))
        );
    }
    assert_ne!(
        lease.checkpoint.sequence().map(|s| s.sequence.clone()),
        log.deliveries
            .lock()
            .unwrap()
            .iter()
            .find(|d| d.data == "second")
            .map(|d| d.sequence.clone())
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_processor_gets_its_batch_again() {
    let env = Env::start().await;
    env.create_stream("panic", 1).await;
    let log = Arc::new(Log::default());
    log.panic_once.store(true, Ordering::SeqCst);
    env.put("panic", "k", "p0").await;
    let w = Worker::start(&env, "panic-app", "panic", "w", &log, fast_config());
    eventually(
        Duration::from_secs(20),
        "redelivery after the panic",
        async || log.data().iter().filter(|d| *d == "p0").count() >= 2,
    )
    .await;
    env.put("panic", "k", "p1").await;
    eventually(Duration::from_secs(20), "later records", async || {
        log.has_all(&["p1".into()])
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_expired_iterators_lose_and_repeat_nothing() {
    use core_engine::{Engine, Fault, FaultRule};
    let rule = |fault, times| {
        FaultRule::new("GetRecords", fault)
            .with_probability(0.5)
            .times(times)
    };
    let env = Env::with(
        Engine::builder()
            .fault(rule(Fault::Throttle, 10))
            .fault(rule(Fault::ExpireIterator, 5)),
    )
    .await;
    env.create_stream("faulty", 2).await;
    let log = Arc::new(Log::default());
    let w = Worker::start(&env, "faulty-app", "faulty", "w", &log, fast_config());
    let mut expected = Vec::new();
    for i in 0..40 {
        let data = format!("f{i}");
        env.put("faulty", &format!("k{i}"), &data).await;
        expected.push(data);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually(Duration::from_secs(30), "every record", async || {
        log.has_all(&expected)
    })
    .await;
    w.stop().await;
    let mut data = log.data();
    data.sort();
    expected.sort();
    assert_eq!(
        data, expected,
        "each record exactly once despite the faults"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_and_hands_leases_over_at_once() {
    let env = Env::start().await;
    env.create_stream("bounded", 2).await;
    let log = Arc::new(Log::default());
    let config = kcl::Config {
        shutdown_timeout: Duration::from_secs(1),
        ..fast_config()
    };
    let a = Worker::start(&env, "bounded-app", "bounded", "a", &log, config.clone());
    eventually(Duration::from_secs(20), "a holding both", async || {
        crate::common::per_owner(&env.owners("bounded-app").await).get("a") == Some(&2)
    })
    .await;
    let b = Worker::start(&env, "bounded-app", "bounded", "b", &log, config.clone());
    eventually(Duration::from_secs(20), "one each", async || {
        let counts = crate::common::per_owner(&env.owners("bounded-app").await);
        counts.get("a") == Some(&1) && counts.get("b") == Some(&1)
    })
    .await;
    // a's processor never finishes shutting down: the worker still stops within the bound.
    log.hang_on_shutdown.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    a.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    log.hang_on_shutdown.store(false, Ordering::SeqCst);
    // Its lease was given up, so b takes it without waiting for the failover time.
    let released = std::time::Instant::now();
    eventually(Duration::from_secs(20), "b holding both", async || {
        crate::common::per_owner(&env.owners("bounded-app").await).get("b") == Some(&2)
    })
    .await;
    assert!(
        released.elapsed() < config.failover_time,
        "taken before expiry"
    );
    b.stop().await;
}

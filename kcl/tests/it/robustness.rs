//! Timeouts, renewal independence and fault tolerance: a hung or lossy service never makes two
//! workers process one shard at once, loses an acknowledged checkpoint, or hangs the worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use core_engine::{Engine, Fault, FaultRule};

use crate::common::{Env, Log, Worker, eventually, fast_config, owners_started, per_owner};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_get_records_is_timed_out_and_read_again() {
    // One GetRecords answered a minute late: without a timeout the shard stalls that long.
    let env = Env::with(
        Engine::builder()
            .fault(FaultRule::new("GetRecords", Fault::Latency { ms: 60_000 }).times(1)),
    )
    .await;
    env.create_stream("hung-read", 1).await;
    let log = Arc::new(Log::default());
    let config = kcl::Config {
        kinesis_timeout: Duration::from_secs(1),
        ..fast_config()
    };
    let w = Worker::start(&env, "hung-read-app", "hung-read", "w", &log, config);
    let mut expected = Vec::new();
    for i in 0..10 {
        let data = format!("h{i}");
        env.put("hung-read", "k", &data).await;
        expected.push(data);
    }
    eventually(Duration::from_secs(30), "every record", async || {
        log.has_all(&expected)
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_keeps_going_while_processors_are_slow() {
    let env = Env::start().await;
    env.create_stream("slow", 2).await;
    let log = Arc::new(Log::default());
    let config = fast_config();
    let a = Worker::start(&env, "slow-app", "slow", "a", &log, config.clone());
    let b = Worker::start(&env, "slow-app", "slow", "b", &log, config.clone());
    eventually(Duration::from_secs(30), "one lease each", async || {
        let owners = env.owners("slow-app").await;
        let counts = per_owner(&owners);
        counts.get("a") == Some(&1) && counts.get("b") == Some(&1) && owners_started(&log, &owners)
    })
    .await;
    let owners = env.owners("slow-app").await;
    // Balancing may have moved a lease before; only what happens from here on counts.
    let earlier_events = log.events().len();
    // Each batch takes twice the failover time, so the leases live only through renewals.
    let slow = 2 * config.failover_time.as_millis() as u64;
    log.process_delay_ms.store(slow, Ordering::SeqCst);
    let mut expected = Vec::new();
    for round in 0..3 {
        for (_, hash) in env.open_shards("slow").await {
            let data = format!("s{round}-{hash}");
            env.put_at("slow", hash, &data).await;
            expected.push(data);
        }
        tokio::time::sleep(Duration::from_millis(slow)).await;
    }
    eventually(Duration::from_secs(30), "every record", async || {
        log.has_all(&expected)
    })
    .await;
    assert_eq!(
        env.owners("slow-app").await,
        owners,
        "a lease changed hands"
    );
    let events = log.events().split_off(earlier_events);
    assert!(
        !events.iter().any(|e| e.starts_with("lease_lost")),
        "{events:?}"
    );
    log.process_delay_ms.store(0, Ordering::SeqCst);
    a.stop().await;
    b.stop().await;
    assert!(log.overlaps().is_empty(), "{:?}", log.overlaps());
}

//! Fleet behaviour: even spread, failover after a crash, a joining worker taking its share.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{Env, Log, Worker, eventually, fast_config, per_owner};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_spread_evenly_and_every_record_is_delivered() {
    let env = Env::start().await;
    env.create_stream("spread", 6).await;
    let log = Arc::new(Log::default());
    let workers: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| Worker::start(&env, "spread-app", "spread", id, &log, fast_config()))
        .collect();
    let mut expected = Vec::new();
    for i in 0..60 {
        let data = format!("r{i}");
        env.put("spread", &format!("key-{i}"), &data).await;
        expected.push(data);
    }
    eventually(Duration::from_secs(30), "an even spread", async || {
        let counts = per_owner(&env.owners("spread-app").await);
        counts.len() == 3 && counts.values().all(|c| *c == 2)
    })
    .await;
    eventually(Duration::from_secs(20), "every record", async || {
        log.has_all(&expected)
    })
    .await;
    for w in workers {
        w.stop().await;
    }
    assert!(log.overlaps().is_empty(), "{:?}", log.overlaps());
}

/// Kills worker "b" of two, keeps writing to every shard, and returns how long until each of
/// b's shards had a record processed by "a" (the worst shard), checking nothing was lost.
async fn measure_failover(config: kcl::Config, stream: &str) -> Duration {
    let env = Env::start().await;
    env.create_stream(stream, 4).await;
    let app = format!("{stream}-app");
    let log = Arc::new(Log::default());
    let a = Worker::start(&env, &app, stream, "a", &log, config.clone());
    let b = Worker::start(&env, &app, stream, "b", &log, config.clone());
    let shards = env.open_shards(stream).await;
    let mut expected = Vec::new();
    for (i, (_, hash)) in shards.iter().enumerate() {
        let data = format!("before-{i}");
        env.put_at(stream, *hash, &data).await;
        expected.push(data);
    }
    eventually(Duration::from_secs(60), "two leases each", async || {
        let counts = per_owner(&env.owners(&app).await);
        counts.get("a") == Some(&2) && counts.get("b") == Some(&2)
    })
    .await;
    eventually(Duration::from_secs(30), "first records", async || {
        log.has_all(&expected)
    })
    .await;
    // Delivered is not checkpointed: wait until a checkpoint covering each first record was
    // acknowledged, so that the check below asks only what a checkpoint promises.
    eventually(
        Duration::from_secs(30),
        "first records checkpointed",
        async || log.all_checkpointed(&expected),
    )
    .await;
    let owners = env.owners(&app).await;
    let b_shards: Vec<String> = owners
        .iter()
        .filter(|(_, o)| o.as_deref() == Some("b"))
        .map(|(s, _)| s.clone())
        .collect();

    b.kill();
    let killed = Instant::now();
    let mut round = 0;
    let mut taken_over: HashMap<String, Duration> = HashMap::new();
    while taken_over.len() < b_shards.len() {
        assert!(killed.elapsed() < Duration::from_secs(90), "no failover");
        for (shard, hash) in &shards {
            let data = format!("after-{round}-{shard}");
            env.put_at(stream, *hash, &data).await;
            expected.push(data);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        for d in log.deliveries.lock().unwrap().iter() {
            if d.worker == "a" && b_shards.contains(&d.shard) && d.at > killed {
                taken_over
                    .entry(d.shard.clone())
                    .or_insert_with(|| d.at.duration_since(killed));
            }
        }
    }
    eventually(
        Duration::from_secs(30),
        "every record after failover",
        async || log.has_all(&expected),
    )
    .await;
    // Resumed from the checkpoint: b's checkpointed records are not redelivered to a.
    for d in log.deliveries.lock().unwrap().iter() {
        if d.worker == "a" && d.at > killed && d.data.starts_with("before-") {
            assert!(!b_shards.contains(&d.shard), "{} redelivered", d.data);
        }
    }
    let lost_checkpoints = log.redelivered_after_ack();
    assert!(lost_checkpoints.is_empty(), "{lost_checkpoints:?}");
    a.stop().await;
    assert!(log.overlaps().is_empty(), "{:?}", log.overlaps());
    taken_over.into_values().max().unwrap()
}

/// Room for a busy machine's scheduling delays on top of the failover design target.
const SCHEDULING_SLACK: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_workers_shards_resume_from_checkpoint_short_failover() {
    let config = fast_config();
    // A sanity bound, not a speed check: timing is measured and reported (run with
    // --nocapture), and a loaded machine must not fail the test. The design target is
    // failover_time + renewal_interval; the slack only catches a worker that never takes over.
    let bound = config.failover_time + config.renewal_interval() + SCHEDULING_SLACK;
    let took = measure_failover(config, "failover-short").await;
    println!("failover (failover_time 1.5 s): {took:?}");
    assert!(took <= bound, "failover took {took:?}, bound {bound:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_workers_shards_resume_from_checkpoint_default_failover() {
    let config = kcl::Config {
        failover_time: kcl::Config::default().failover_time,
        ..fast_config()
    };
    // A sanity bound, not a speed check: timing is measured and reported (run with
    // --nocapture), and a loaded machine must not fail the test. The design target is
    // failover_time + renewal_interval; the slack only catches a worker that never takes over.
    let bound = config.failover_time + config.renewal_interval() + SCHEDULING_SLACK;
    let took = measure_failover(config, "failover-default").await;
    println!("failover (failover_time 10 s, default): {took:?}");
    assert!(took <= bound, "failover took {took:?}, bound {bound:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_worker_takes_its_share() {
    let env = Env::start().await;
    env.create_stream("join", 4).await;
    let log = Arc::new(Log::default());
    let a = Worker::start(&env, "join-app", "join", "a", &log, fast_config());
    eventually(Duration::from_secs(20), "a holding all", async || {
        per_owner(&env.owners("join-app").await).get("a") == Some(&4)
    })
    .await;
    let joined = Instant::now();
    let b = Worker::start(&env, "join-app", "join", "b", &log, fast_config());
    let mut expected = Vec::new();
    let mut i = 0;
    eventually(Duration::from_secs(30), "a 2/2 split", async || {
        let data = format!("j{i}");
        i += 1;
        env.put("join", &format!("k{i}"), &data).await;
        expected.push(data);
        let counts = per_owner(&env.owners("join-app").await);
        counts.get("a") == Some(&2) && counts.get("b") == Some(&2)
    })
    .await;
    println!("join to balanced: {:?}", joined.elapsed());
    eventually(Duration::from_secs(20), "every record", async || {
        log.has_all(&expected)
    })
    .await;
    // Moved by graceful handoff: the old processor is asked to shut down (and checkpoints)
    // rather than told its lease is lost.
    let events = log.events();
    assert!(
        events.iter().any(|e| e.starts_with("shutdown a")),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("lease_lost a")),
        "{events:?}"
    );
    // No overlap: on every shard b stole, a's last delivery precedes b's first.
    let deliveries = log.deliveries.lock().unwrap().clone();
    for shard in deliveries
        .iter()
        .filter(|d| d.worker == "b")
        .map(|d| &d.shard)
    {
        let a_last = deliveries
            .iter()
            .filter(|d| d.worker == "a" && &d.shard == shard)
            .map(|d| d.at)
            .max();
        let b_first = deliveries
            .iter()
            .filter(|d| d.worker == "b" && &d.shard == shard)
            .map(|d| d.at)
            .min();
        if let (Some(a_last), Some(b_first)) = (a_last, b_first) {
            assert!(a_last < b_first, "{shard} processed by a and b at once");
        }
    }
    b.stop().await;
    a.stop().await;
    assert!(log.overlaps().is_empty(), "{:?}", log.overlaps());
}

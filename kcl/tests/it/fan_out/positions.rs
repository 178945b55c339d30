//! Where subscriptions start: LATEST, AT_TIMESTAMP, and a restarted worker's checkpoint.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_positions_latest_and_at_timestamp() {
    let env = Arc::new(Env::with(engine(Duration::from_secs(60))).await);
    env.create_stream("pos", 1).await;
    let mut old = Vec::new();
    for i in 0..5 {
        let data = format!("old-{i}");
        env.put("pos", "k", &data).await;
        old.push(data);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let at = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut new = Vec::new();
    for i in 0..5 {
        let data = format!("new-{i}");
        env.put("pos", "k", &data).await;
        new.push(data);
    }

    // AT_TIMESTAMP: exactly the records written after the instant.
    let by_time = Arc::new(Log::default());
    let w = Worker::start(
        &env,
        "time-app",
        "pos",
        "w",
        &by_time,
        Config {
            initial_position: InitialPosition::AtTimestamp(at),
            ..fan_out(Duration::from_secs(3))
        },
    );
    eventually(Duration::from_secs(10), "the new records", async || {
        by_time.has_all(&new)
    })
    .await;

    // LATEST: nothing written before the subscription; everything after it, once. Probes are
    // written until one arrives (then the subscription is live).
    let latest = Arc::new(Log::default());
    let l = Worker::start(
        &env,
        "latest-app",
        "pos",
        "w",
        &latest,
        Config {
            initial_position: InitialPosition::Latest,
            ..fan_out(Duration::from_secs(3))
        },
    );
    let mut probes = 0;
    eventually(Duration::from_secs(10), "a probe", async || {
        env.put("pos", "k", &format!("probe-{probes}")).await;
        probes += 1;
        latest.data().iter().any(|d| d.starts_with("probe-"))
    })
    .await;
    let mut after = Vec::new();
    for i in 0..20 {
        let data = format!("after-{i}");
        env.put("pos", "k", &data).await;
        after.push(data);
    }
    eventually(Duration::from_secs(10), "the later records", async || {
        latest.has_all(&after)
    })
    .await;
    w.stop().await;
    l.stop().await;
    let by_time_log = Log::default();
    by_time_log.deliveries.lock().unwrap().extend(
        by_time
            .deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.data.starts_with("old-") || d.data.starts_with("new-"))
            .cloned(),
    );
    assert_exactly_once(&by_time_log, &new);
    let seen = latest.data();
    assert!(
        seen.iter()
            .all(|d| !d.starts_with("old-") && !d.starts_with("new-"))
    );
    let later: Vec<String> = seen
        .into_iter()
        .filter(|d| d.starts_with("after-"))
        .collect();
    assert_eq!(later, after, "once each, in order");
    assert_no_polling(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_resumes_after_its_checkpoint() {
    let env = Arc::new(Env::with(engine(Duration::from_secs(60))).await);
    env.create_stream("resume", 2).await;
    let log = Arc::new(Log::default());
    let mut first = Vec::new();
    for i in 0..30 {
        let data = format!("key{}:{i}", i % 3);
        env.put("resume", &format!("key{}", i % 3), &data).await;
        first.push(data);
    }
    let w = Worker::start(
        &env,
        "resume-app",
        "resume",
        "one",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    eventually(Duration::from_secs(10), "the first records", async || {
        log.all_checkpointed(&first)
    })
    .await;
    w.stop().await;
    let mut second = Vec::new();
    for i in 30..60 {
        let data = format!("key{}:{i}", i % 3);
        env.put("resume", &format!("key{}", i % 3), &data).await;
        second.push(data);
    }
    let w = Worker::start(
        &env,
        "resume-app",
        "resume",
        "two",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    eventually(Duration::from_secs(10), "the later records", async || {
        log.has_all(&second)
    })
    .await;
    w.stop().await;
    let all: Vec<String> = first.into_iter().chain(second).collect();
    assert_exactly_once(&log, &all);
    assert!(
        log.deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.worker == "two")
            .all(|d| d.data.split_once(':').unwrap().1.parse::<u32>().unwrap() >= 30),
        "the second worker starts after the checkpoint"
    );
    assert_no_polling(&env);
}

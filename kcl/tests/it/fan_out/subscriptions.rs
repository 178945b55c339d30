//! Subscriptions that end, fail, drop or fall silent: every record once all the same.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_across_many_subscription_ends() {
    let env = Arc::new(Env::with(engine(Duration::from_millis(300))).await);
    env.create_stream("efo", 2).await;
    let log = Arc::new(Log::default());
    let w = Worker::start(
        &env,
        "efo-app",
        "efo",
        "w",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    let load = producer(&env, "efo", Duration::from_millis(15));
    // About ten subscription lifetimes per shard.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = stop_producer(load).await;
    eventually(Duration::from_secs(20), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    w.stop().await;
    assert_exactly_once(&log, &sent);
    assert_key_order(&log);
    assert!(log.all_checkpointed(&sent));
    assert_eq!(consumers(&env, "efo").await, ["efo-app"]);
    assert_no_polling(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_subscription_ends_and_failures_skip_and_repeat_nothing() {
    let builder = engine(Duration::from_secs(60))
        .fault(FaultRule::new("SubscribeToShard", Fault::EndSubscription).with_probability(0.5))
        .fault(FaultRule::new("SubscribeToShard", Fault::InternalFailure).with_probability(0.2))
        .fault(FaultRule::new("SubscribeToShard", Fault::Throttle).with_probability(0.1));
    let env = Arc::new(Env::with(builder).await);
    env.create_stream("ended", 2).await;
    let log = Arc::new(Log::default());
    let w = Worker::start(
        &env,
        "ended-app",
        "ended",
        "w",
        &log,
        fan_out(Duration::from_secs(3)),
    );
    let load = producer(&env, "ended", Duration::from_millis(15));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = stop_producer(load).await;
    eventually(Duration::from_secs(30), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    w.stop().await;
    assert_exactly_once(&log, &sent);
    assert_key_order(&log);
    let fired = env
        .handle
        .faults()
        .rules()
        .iter()
        .filter(|r| r.operation.as_deref() == Some("SubscribeToShard"))
        .count();
    assert_eq!(fired, 3);
    assert_no_polling(&env);
}

/// A TCP proxy whose open connections can be dropped (closed at once) or silenced (kept open,
/// never answered); connections made afterwards pass normally.
struct Proxy {
    url: String,
    /// (generation, silence): connections older than the generation are dropped or silenced.
    signal: tokio::sync::watch::Sender<(u64, bool)>,
}

impl Proxy {
    async fn start(env: &Env) -> Self {
        let target = env
            .handle
            .endpoint_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (signal, rx) = tokio::sync::watch::channel((0u64, false));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut rx = rx.clone();
                let born = rx.borrow().0;
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let hit = async {
                        rx.wait_for(|(generation, _)| *generation > born)
                            .await
                            .map(|s| s.1)
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        silence = hit => {
                            drop(upstream);
                            if silence.unwrap_or(false) {
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                });
            }
        });
        Self { url, signal }
    }

    fn hit(&self, silence: bool) {
        self.signal.send_modify(|s| *s = (s.0 + 1, silence));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_silent_connections_resubscribe_without_gap_or_duplicate() {
    let env = Arc::new(Env::with(engine(Duration::from_secs(60))).await);
    env.create_stream("cut", 2).await;
    let proxy = Proxy::start(&env).await;
    let kinesis = aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&proxy.url)
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "t"))
            .build(),
    );
    let log = Arc::new(Log::default());
    let scheduler = Arc::new(
        kcl::Scheduler::new(
            kinesis,
            env.ddb.clone(),
            "cut-app",
            "cut",
            "w",
            crate::common::Factory::new("w", &log),
            fan_out(Duration::from_millis(800)),
        )
        .unwrap(),
    );
    let run = tokio::spawn({
        let s = scheduler.clone();
        async move { s.run().await }
    });
    let load = producer(&env, "cut", Duration::from_millis(15));
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        // Alternately: connections reset, and connections that go quiet (only the silence
        // timeout notices those; the engine's heartbeats never arrive).
        proxy.hit(round % 2 == 1);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = stop_producer(load).await;
    eventually(Duration::from_secs(30), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    scheduler.shutdown();
    run.await.unwrap().unwrap();
    assert_exactly_once(&log, &sent);
    assert_key_order(&log);
    assert_no_polling(&env);
}

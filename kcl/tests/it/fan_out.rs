//! Enhanced fan-out: every record once through SubscribeToShard, across subscription ends,
//! injected failures, dropped and silent connections, resharding, a killed worker and two
//! applications. Every engine here fails GetRecords and GetShardIterator, and each test checks
//! that no such call was made.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use core_engine::{Engine, Fault, FaultRule};
use kcl::{Config, FanOutConfig, InitialPosition, Retrieval};

use crate::common::{Env, Log, Worker, eventually, fast_config};

/// How many times the polling traps may fire; any firing shows in `rules()`.
const TRAP: u64 = 1_000_000;

/// An engine whose GetRecords and GetShardIterator always fail, with subscriptions that end
/// after `lifetime`.
pub(crate) fn engine(lifetime: Duration) -> core_engine::EngineBuilder {
    Engine::builder()
        .subscription_lifetime(lifetime)
        .fault(FaultRule::new("GetRecords", Fault::InternalFailure).times(TRAP))
        .fault(FaultRule::new("GetShardIterator", Fault::InternalFailure).times(TRAP))
}

/// No GetRecords or GetShardIterator reached the engine.
pub(crate) fn assert_no_polling(env: &Env) {
    for rule in env.handle.faults().rules() {
        if matches!(
            rule.operation.as_deref(),
            Some("GetRecords" | "GetShardIterator")
        ) {
            assert_eq!(
                rule.times,
                Some(TRAP),
                "a fan-out worker called {:?}",
                rule.operation
            );
        }
    }
}

pub(crate) fn fan_out(silence: Duration) -> Config {
    Config {
        retrieval: Retrieval::FanOut(FanOutConfig {
            silence_timeout: silence,
            ..FanOutConfig::default()
        }),
        ..fast_config()
    }
}

/// Every item of `expected` delivered exactly once, and nothing else.
fn assert_exactly_once(log: &Log, expected: &[String]) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in log.data() {
        *counts.entry(d).or_default() += 1;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|e| !counts.contains_key(*e))
        .collect();
    assert!(
        missing.is_empty(),
        "{} missing, such as {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "{} delivered more than once, such as {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(10)]
    );
    assert_eq!(counts.len(), expected.len(), "unexpected records delivered");
}

/// Per key (the part before ':'), first deliveries come in production order (the part after).
pub(crate) fn assert_key_order(log: &Log) {
    let mut seen: HashMap<String, (HashSet<u64>, u64)> = HashMap::new();
    for d in log.deliveries.lock().unwrap().iter() {
        let (key, n) = d.data.split_once(':').unwrap();
        let n: u64 = n.parse().unwrap();
        let (set, next) = seen.entry(key.to_owned()).or_default();
        if set.insert(n) {
            assert_eq!(n, *next, "{key}: {n} delivered before {next}");
            *next += 1;
        }
    }
}

/// Writes `key{k}:{n}` records for 8 keys until stopped; returns what it wrote.
pub(crate) fn producer(
    env: &Arc<Env>,
    stream: &str,
    pause: Duration,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<String>>) {
    let running = Arc::new(AtomicBool::new(true));
    let task = tokio::spawn({
        let env = env.clone();
        let running = running.clone();
        let stream = stream.to_owned();
        async move {
            let mut sent = Vec::new();
            let mut n = 0;
            while running.load(Ordering::SeqCst) {
                for k in 0..8 {
                    let data = format!("key{k}:{n}");
                    env.put(&stream, &format!("key{k}"), &data).await;
                    sent.push(data);
                }
                n += 1;
                tokio::time::sleep(pause).await;
            }
            sent
        }
    });
    (running, task)
}

pub(crate) async fn stop_producer(
    (running, task): (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<String>>),
) -> Vec<String> {
    running.store(false, Ordering::SeqCst);
    task.await.unwrap()
}

async fn consumers(env: &Env, stream: &str) -> Vec<String> {
    let arn = env
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
        .stream_arn(arn)
        .send()
        .await
        .unwrap()
        .consumers
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.consumer_name)
        .collect()
}

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

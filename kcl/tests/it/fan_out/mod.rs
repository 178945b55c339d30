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

mod fleet;
mod gone;
mod positions;
mod subscriptions;

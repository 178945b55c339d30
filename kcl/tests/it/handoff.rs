//! Graceful handoff (KCL 3.x `checkpointOwner`): a lease moved on purpose (a worker joining, a
//! worker shutting down) is handed over at a checkpoint, so no record is processed twice, and
//! the new owner starts at once. Failover time is a minute here: a move that had to wait for
//! the lease to expire would not finish within the tests' bounds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kcl::{Config, Retrieval};

use crate::common::{Env, Log, Worker, eventually, fast_config, owners_started, per_owner};
use crate::fan_out::{assert_key_order, producer, stop_producer};

fn config(fan_out: bool) -> Config {
    Config {
        failover_time: Duration::from_secs(60),
        renewal_interval: Some(Duration::from_millis(300)),
        lease_taker_interval: Some(Duration::from_millis(300)),
        retrieval: if fan_out {
            Retrieval::fan_out()
        } else {
            Retrieval::Polling
        },
        ..fast_config()
    }
}

/// Every item of `sent` delivered exactly once.
fn assert_exactly_once(log: &Log, sent: &[String]) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in log.data() {
        *counts.entry(d).or_default() += 1;
    }
    let missing = sent.iter().filter(|s| !counts.contains_key(*s)).count();
    assert_eq!(missing, 0, "records missing");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "processed twice: {twice:?}");
}

async fn joining_case(fan_out: bool) {
    let env = Arc::new(Env::start().await);
    env.create_stream("s", 4).await;
    let log = Arc::new(Log::default());
    let a = Worker::start(&env, "app", "s", "a", &log, config(fan_out));
    eventually(
        Duration::from_secs(20),
        "a holding and running all",
        async || {
            let owners = env.owners("app").await;
            per_owner(&owners).get("a") == Some(&4) && owners_started(&log, &owners)
        },
    )
    .await;
    let load = producer(&env, "s", Duration::from_millis(10));
    let b = Worker::start(&env, "app", "s", "b", &log, config(fan_out));
    eventually(
        Duration::from_secs(20),
        "two leases each, both running",
        async || {
            let owners = env.owners("app").await;
            let counts = per_owner(&owners);
            counts.get("a") == Some(&2)
                && counts.get("b") == Some(&2)
                && owners_started(&log, &owners)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = stop_producer(load).await;
    eventually(Duration::from_secs(20), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    a.stop().await;
    b.stop().await;
    assert_exactly_once(&log, &sent);
    assert_key_order(&log);
    assert!(log.overlaps().is_empty(), "{:?}", log.overlaps());
    let events = log.events();
    assert!(
        events.iter().any(|e| e.starts_with("shutdown a")),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("lease_lost")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_to_a_joining_worker_processes_no_record_twice() {
    joining_case(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_to_a_joining_worker_processes_no_record_twice_with_fan_out() {
    joining_case(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_from_a_worker_shutting_down_processes_no_record_twice() {
    let env = Arc::new(Env::start().await);
    env.create_stream("s", 4).await;
    let log = Arc::new(Log::default());
    let a = Worker::start(&env, "app", "s", "a", &log, config(false));
    let b = Worker::start(&env, "app", "s", "b", &log, config(false));
    eventually(
        Duration::from_secs(20),
        "two leases each, both running",
        async || {
            let owners = env.owners("app").await;
            let counts = per_owner(&owners);
            counts.get("a") == Some(&2)
                && counts.get("b") == Some(&2)
                && owners_started(&log, &owners)
        },
    )
    .await;
    let load = producer(&env, "s", Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.stop().await;
    eventually(
        Duration::from_secs(20),
        "b holding and running all",
        async || {
            let owners = env.owners("app").await;
            per_owner(&owners).get("b") == Some(&4) && owners_started(&log, &owners)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = stop_producer(load).await;
    eventually(Duration::from_secs(20), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    b.stop().await;
    assert_exactly_once(&log, &sent);
    assert_key_order(&log);
    assert!(log.overlaps().is_empty(), "{:?}", log.overlaps());
}

/// Renews leases as a Java KCL 2.x worker does (conditioned on the counter only, ignoring
/// `checkpointOwner`) until a renewal is refused: a holder that never answers a handoff.
fn legacy_renewer(
    ddb: aws_sdk_dynamodb::Client,
    table: &str,
    mut counters: HashMap<String, u64>,
) -> tokio::task::JoinHandle<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let table = table.to_owned();
    tokio::spawn(async move {
        while !counters.is_empty() {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let mut lost = Vec::new();
            for (key, counter) in counters.iter_mut() {
                let renewed = ddb
                    .update_item()
                    .table_name(&table)
                    .key("leaseKey", AttributeValue::S(key.clone()))
                    .update_expression("SET leaseCounter = :new")
                    .condition_expression("leaseCounter = :old")
                    .expression_attribute_values(
                        ":new",
                        AttributeValue::N((*counter + 1).to_string()),
                    )
                    .expression_attribute_values(":old", AttributeValue::N(counter.to_string()))
                    .send()
                    .await
                    .is_ok();
                if renewed {
                    *counter += 1;
                } else {
                    lost.push(key.clone());
                }
            }
            for key in lost {
                counters.remove(&key);
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_ignored_by_the_holder_times_out_and_the_lease_is_taken() {
    let env = Arc::new(Env::start().await);
    env.create_stream("s", 2).await;
    let log = Arc::new(Log::default());
    let config = Config {
        failover_time: Duration::from_secs(3),
        renewal_interval: Some(Duration::from_millis(300)),
        lease_taker_interval: Some(Duration::from_millis(300)),
        graceful_handoff_timeout: Some(Duration::from_secs(1)),
        ..fast_config()
    };
    // Worker a takes both leases, then is replaced by a holder that knows no handoff.
    let a = Worker::start(&env, "app", "s", "a", &log, config.clone());
    eventually(Duration::from_secs(20), "a holding all", async || {
        per_owner(&env.owners("app").await).get("a") == Some(&2)
    })
    .await;
    a.kill();
    let counters: HashMap<String, u64> = kcl::leases::LeaseTable::new(env.ddb.clone(), "app")
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.key, l.counter))
        .collect();
    let renewer = legacy_renewer(env.ddb.clone(), "app", counters);
    let b = Worker::start(&env, "app", "s", "b", &log, config);
    // b asks for one lease; the holder renews on regardless; past the handoff timeout b takes
    // it by force (and, as for a steal, starts once the holder's lease would have run out).
    eventually(Duration::from_secs(20), "b running one shard", async || {
        let owners = env.owners("app").await;
        per_owner(&owners).get("b") == Some(&1)
            && owners_started(
                &log,
                &owners
                    .into_iter()
                    .filter(|(_, o)| o.as_deref() == Some("b"))
                    .collect(),
            )
    })
    .await;
    let leases = kcl::leases::LeaseTable::new(env.ddb.clone(), "app")
        .list()
        .await
        .unwrap();
    assert!(
        leases.iter().all(|l| l.checkpoint_owner.is_none()),
        "{leases:?}"
    );
    b.stop().await;
    renewer.abort();
}

//! Split and merge under load: children wait for their parents, per-key order holds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::{Env, Log, Worker, eventually, fast_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_merge_under_load_keep_per_key_order() {
    let env = Arc::new(Env::start().await);
    env.create_stream("reshard", 1).await;
    let log = Arc::new(Log::default());
    let config = kcl::Config {
        finished_lease_retention: Duration::ZERO,
        ..fast_config()
    };
    let a = Worker::start(&env, "reshard-app", "reshard", "a", &log, config.clone());
    let b = Worker::start(&env, "reshard-app", "reshard", "b", &log, config);
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
                    env.put("reshard", &format!("key{k}"), &data).await;
                    sent.push(data);
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sent
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.kinesis
        .split_shard()
        .stream_name("reshard")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.kinesis
        .merge_shards()
        .stream_name("reshard")
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.store(false, Ordering::SeqCst);
    let sent = producer.await.unwrap();
    eventually(
        Duration::from_secs(60),
        "every record through the lineage",
        async || log.has_all(&sent),
    )
    .await;

    // Per key, first deliveries come in production order, across parent and children.
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
    // Every shard in the lineage was processed to its end by someone, children after parents.
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
            "{parent}"
        );
    }
    let leases = kcl::leases::LeaseTable::new(env.ddb.clone(), "reshard-app")
        .list()
        .await
        .unwrap();
    let merged = leases
        .iter()
        .find(|l| l.key == "shardId-000000000003")
        .unwrap();
    assert_eq!(merged.parent_shard_ids.len(), 2);
    a.stop().await;
    b.stop().await;
}

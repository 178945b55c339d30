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

/// A stream with shard 0 open and shard 1 split into 2 and 3; records for one key in shard 1 and
/// then in its child. Returns the key's records in production order.
async fn resharded_stream(env: &Env, stream: &str) -> Vec<String> {
    env.create_stream(stream, 2).await;
    let shards = env.open_shards(stream).await;
    let (_, hash) = shards
        .iter()
        .find(|(id, _)| id == "shardId-000000000001")
        .unwrap()
        .clone();
    let mut sent = Vec::new();
    for i in 0..5 {
        let data = format!("parent-{i}");
        env.put_at(stream, hash, &data).await;
        sent.push(data);
    }
    env.kinesis
        .split_shard()
        .stream_name(stream)
        .shard_to_split("shardId-000000000001")
        .new_starting_hash_key((hash + (1u128 << 125)).to_string())
        .send()
        .await
        .unwrap();
    crate::common::eventually(Duration::from_secs(10), "the split", async || {
        env.open_shards(stream).await.len() == 3
    })
    .await;
    for i in 0..5 {
        let data = format!("child-{i}");
        env.put_at(stream, hash, &data).await;
        sent.push(data);
    }
    sent
}

/// Every child lease names its parent, and the key's records came in order (parent first).
async fn check_lineage(env: &Env, app: &str, log: &Log, sent: &[String]) {
    let leases = kcl::leases::LeaseTable::new(env.ddb.clone(), app)
        .list()
        .await
        .unwrap();
    for child in ["shardId-000000000002", "shardId-000000000003"] {
        let lease = leases.iter().find(|l| l.key == child).unwrap();
        assert_eq!(
            lease.parent_shard_ids,
            vec!["shardId-000000000001".to_string()],
            "{child} without its parent link"
        );
    }
    let mut firsts = Vec::new();
    for d in log.data() {
        if sent.contains(&d) && !firsts.contains(&d) {
            firsts.push(d);
        }
    }
    assert_eq!(
        firsts, sent,
        "records of one key out of order across the split"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_starting_on_another_workers_partial_sync_links_children_to_parents() {
    // Worker A started first on a resharded stream and had written the lease of shard 0 only
    // when worker B scanned the table. B must still create the parent's lease, and the
    // children's with their parent links, parents first. (Before, B took the table as an
    // existing application, skipped the closed parent and created the children unlinked: the
    // parent's records were never read.)
    let env = Env::start().await;
    let sent = resharded_stream(&env, "partial").await;
    let table = kcl::leases::LeaseTable::new(env.ddb.clone(), "partial-app");
    table
        .create_if_not_exists(Duration::from_secs(10))
        .await
        .unwrap();
    table
        .create_if_absent(&kcl::leases::Lease::new(
            "shardId-000000000000",
            kcl::leases::Checkpoint::TrimHorizon,
        ))
        .await
        .unwrap();
    let log = Arc::new(Log::default());
    let b = Worker::start(&env, "partial-app", "partial", "b", &log, fast_config());
    eventually(Duration::from_secs(30), "every record", async || {
        log.has_all(&sent)
    })
    .await;
    check_lineage(&env, "partial-app", &log, &sent).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_starting_together_on_a_resharded_stream_read_parents_first() {
    let env = Env::start().await;
    // Rounds of four workers starting at the same moment, each round a new application.
    for round in 0..3 {
        let stream = format!("together-{round}");
        let app = format!("{stream}-app");
        let sent = resharded_stream(&env, &stream).await;
        let log = Arc::new(Log::default());
        let workers: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|id| Worker::start(&env, &app, &stream, id, &log, fast_config()))
            .collect();
        eventually(Duration::from_secs(30), "every record", async || {
            log.has_all(&sent)
        })
        .await;
        check_lineage(&env, &app, &log, &sent).await;
        assert!(log.overlaps().is_empty(), "{:?}", log.overlaps());
        for w in workers {
            w.stop().await;
        }
    }
}

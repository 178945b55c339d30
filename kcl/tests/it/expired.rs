//! A lease whose shard expired while nobody read it: the shard counts as ended, so its children
//! are not blocked behind it forever.

use std::sync::Arc;
use std::time::Duration;

use core_engine::{Engine, ManualClock};

use crate::common::{Env, Log, Worker, eventually, fast_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_gone_past_retention_is_ended_and_its_children_are_read() {
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let env = Env::with(Engine::builder().clock(clock.clone())).await;
    env.create_stream("aged", 1).await;
    for i in 0..3 {
        env.put("aged", "k", &format!("old-{i}")).await;
    }
    let log = Arc::new(Log::default());
    let first = Worker::start(&env, "aged-app", "aged", "w1", &log, fast_config());
    eventually(Duration::from_secs(20), "the old records", async || {
        log.data().len() == 3
    })
    .await;
    first.stop().await;

    // The fleet is down for a day; meanwhile the shard was split, and the parent expires.
    env.kinesis
        .split_shard()
        .stream_name("aged")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    clock.advance(25 * 3_600_000);
    let fresh: Vec<String> = (0..10).map(|i| format!("new-{i}")).collect();
    for (i, data) in fresh.iter().enumerate() {
        env.put("aged", &format!("user-{i}"), data).await;
    }

    let second = Worker::start(&env, "aged-app", "aged", "w2", &log, fast_config());
    eventually(
        Duration::from_secs(30),
        "the children's records",
        async || log.has_all(&fresh),
    )
    .await;
    let parent = env
        .ddb
        .get_item()
        .table_name("aged-app")
        .key(
            "leaseKey",
            aws_sdk_dynamodb::types::AttributeValue::S("shardId-000000000000".into()),
        )
        .send()
        .await
        .unwrap()
        .item;
    // The lease may already be cleaned up, which happens only to finished leases.
    if let Some(item) = parent {
        let checkpoint = item.get("checkpoint").and_then(|v| v.as_s().ok()).cloned();
        assert_eq!(
            checkpoint.as_deref(),
            Some("SHARD_END"),
            "the gone parent is finished"
        );
    }
    second.stop().await;
}

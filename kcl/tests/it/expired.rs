//! A lease whose shard expired while nobody read it: the shard counts as ended, so its children
//! are not blocked behind it forever. (The fan-out variant is in `fan_out/gone.rs`.)

use std::sync::Arc;
use std::time::Duration;

use core_engine::{Engine, EngineBuilder, ManualClock};

use crate::common::{Env, Log, Worker, eventually, fast_config};

/// The lease's checkpoint, if the lease is still in the table.
pub(crate) async fn checkpoint(env: &Env, app: &str, shard: &str) -> Option<String> {
    let item = env
        .ddb
        .get_item()
        .table_name(app)
        .key(
            "leaseKey",
            aws_sdk_dynamodb::types::AttributeValue::S(shard.into()),
        )
        .send()
        .await
        .unwrap()
        .item?;
    item.get("checkpoint").and_then(|v| v.as_s().ok()).cloned()
}

/// A worker reads a shard, the fleet stops, the shard is split and the parent expires a day
/// later; a new worker with `config` must end the parent and read the children's records.
/// The engine is `builder` on a manual clock; returned for further checks.
pub(crate) async fn a_gone_parent_is_ended(builder: EngineBuilder, config: kcl::Config) -> Env {
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let env = Env::with(builder.clock(clock.clone())).await;
    env.create_stream("aged", 1).await;
    for i in 0..3 {
        env.put("aged", "k", &format!("old-{i}")).await;
    }
    let log = Arc::new(Log::default());
    let first = Worker::start(&env, "aged-app", "aged", "w1", &log, config.clone());
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

    let second = Worker::start(&env, "aged-app", "aged", "w2", &log, config);
    eventually(
        Duration::from_secs(30),
        "the children's records",
        async || log.has_all(&fresh),
    )
    .await;
    // The lease may already be cleaned up, which happens only to finished leases.
    if let Some(checkpoint) = checkpoint(&env, "aged-app", "shardId-000000000000").await {
        assert_eq!(checkpoint, "SHARD_END", "the gone parent is finished");
    }
    second.stop().await;
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_gone_past_retention_is_ended_and_its_children_are_read() {
    a_gone_parent_is_ended(Engine::builder(), fast_config()).await;
}

//! Resharding while records flow.

use std::time::Duration;

use integration::TestEnv;

use crate::{Run, assert_sound};

/// Two splits under load, with unaggregated records (each routed by the engine on its own
/// hash key): the fleet reads parents before children, so nothing is lost or reordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_under_load_keep_order() {
    let run = Run::start(TestEnv::start().await, 2, 2).await;
    let config = kpl::Config {
        aggregation_enabled: false,
        ..integration::load::producer_config()
    };
    // 600 records/s over two shards stays under the 1,000 records/s per shard limit.
    let load = run.load_with(config, 600).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.env.split_widest(&run.stream).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.env.split_widest(&run.stream).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    load.stop().await;
    let report = run.finish().await;
    assert_sound(&report);
}

/// The same with KPL aggregation on and `preserve_order`. An aggregate in flight to the parent
/// when it closes can land in a child that does not own all its user records; kpl re-sends those
/// records ahead of anything newer for their keys, so per-key order holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_under_load_keep_order_with_aggregation() {
    let run = Run::start(TestEnv::start().await, 2, 2).await;
    let load = run.load(3_000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.env.split_widest(&run.stream).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    load.stop().await;
    let report = run.finish().await;
    assert_sound(&report);
}

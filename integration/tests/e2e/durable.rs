//! The engine restarted in durable mode while records flow.

use std::time::Duration;

use core_engine::Engine;
use integration::TestEnv;

use crate::{Run, assert_sound};

/// The engine stops and comes back on the same address and data directory while the producer
/// puts and the fleet reads; both ride out the gap with retries, and every acknowledged record
/// survives and is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_restart_under_load_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = TestEnv::with(Engine::builder().data_dir(dir.path())).await;
    if !env.is_local() {
        eprintln!("skipped: restarting needs the in-process engine");
        return;
    }
    let mut run = Run::start(env, 2, 2).await;
    let load = run.load(1_000).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let engine = run.env.engine.take().expect("local engine");
    let addr = engine.local_addr();
    engine.shutdown().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = Engine::builder()
        .data_dir(dir.path())
        .listen(addr)
        .build()
        .expect("engine configuration")
        .start()
        .await
        .expect("engine restart on the same address");
    run.env.engine = Some(restarted);

    tokio::time::sleep(Duration::from_secs(3)).await;
    load.stop().await;
    let report = run.finish().await;
    assert_sound(&report);
}

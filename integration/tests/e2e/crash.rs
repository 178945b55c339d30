//! A worker dies in the middle of a batch.

use std::time::Duration;

use integration::TestEnv;

use crate::{Run, assert_sound};

/// The worker applied a batch but never checkpointed it, then its task is killed. Its shards
/// move to the others after the failover time; the batch is delivered again (duplicates),
/// nothing is lost and per-user order holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_batch_loses_nothing() {
    let mut run = Run::start(TestEnv::start().await, 4, 3).await;
    let load = run.load(1_500).await;
    // Let the fleet balance so that the victim holds shards.
    let victim = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let owners = run.env.owners(&run.app).await;
        let held = |id: &str| owners.iter().any(|(_, o)| o.as_deref() == Some(id));
        if let Some(i) = run.fleet.workers.iter().position(|w| held(&w.id)) {
            break i;
        }
    };
    run.fleet.workers[victim].stall.stall();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dead = run.fleet.kill(victim);

    // Its leases go to the survivors.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let owners = run.env.owners(&run.app).await;
        if owners
            .iter()
            .all(|(_, o)| o.is_some() && o.as_deref() != Some(dead.as_str()))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{dead}'s leases were not taken over: {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    load.stop().await;
    let report = run.finish().await;
    assert_sound(&report);
    assert!(
        report.duplicates > 0,
        "the stalled batch was not replayed: {report:?}"
    );
}

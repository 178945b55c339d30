//! The steady state: every record reaches a processor, in order per user.

use std::time::Duration;

use integration::TestEnv;

use crate::{Run, assert_sound};

/// Three workers share four shards while 2,000 events/s flow. Replays may only come from the
/// leases that move while the fleet balances (one uncheckpointed batch each), so they stay a
/// small fraction of the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_modulo_replays_in_order() {
    let run = Run::start(TestEnv::start().await, 4, 3).await;
    let load = run.load(2_000).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    load.stop().await;
    let report = run.finish().await;
    assert_sound(&report);
    // Replays go to the next owner of a lease, never back to the processor that had them.
    assert_eq!(report.self_repeats, 0, "{report:?}");
    assert!(
        report.duplicates * 10 <= report.acked,
        "more replays than lease moves explain: {report:?}"
    );
}

//! Throttling and injected faults while records flow.

use std::time::Duration;

use core_engine::{Engine, Fault, FaultRule};
use integration::TestEnv;

use crate::{Run, assert_sound};

/// Throttled and failing PutRecords; failing, throttled, slow and expiring GetRecords: the
/// producer retries in order, the consumers retry reads, and nothing is lost or reordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_during_the_run_lose_nothing() {
    let env = TestEnv::with(Engine::builder().fault_seed(7)).await;
    if !env.is_local() {
        eprintln!("skipped: fault injection needs the in-process engine");
        return;
    }
    let run = Run::start(env, 3, 2).await;
    let faults = run.env.engine.as_ref().expect("local engine").faults();
    let load = run.load(1_500).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A large `times` never runs out here, but counts down on every hit: proof each rule fired.
    const BUDGET: u64 = 1_000_000;
    let rules = [
        FaultRule::new("PutRecords", Fault::Throttle).with_probability(0.2),
        FaultRule::new("PutRecords", Fault::InternalFailure).with_probability(0.05),
        FaultRule::new("GetRecords", Fault::InternalFailure).with_probability(0.1),
        FaultRule::new("GetRecords", Fault::Throttle).with_probability(0.1),
        FaultRule::new("GetRecords", Fault::Latency { ms: 200 }).with_probability(0.1),
        FaultRule::new("GetRecords", Fault::ExpireIterator).with_probability(0.05),
    ];
    for rule in rules {
        faults.add(rule.times(BUDGET)).expect("valid rule");
    }
    // Run under faults for at least 5 s, and until every rule has fired (a rare one on a quiet
    // operation may need longer; a fixed window made this test flaky).
    let started = tokio::time::Instant::now();
    let fired = |rules: Vec<FaultRule>| rules.iter().all(|r| r.times.is_some_and(|l| l < BUDGET));
    while started.elapsed() < Duration::from_secs(5)
        || (!fired(faults.rules()) && started.elapsed() < Duration::from_secs(60))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for rule in faults.rules() {
        assert!(
            rule.times.is_some_and(|left| left < BUDGET),
            "rule never fired within 60 s: {rule:?}"
        );
    }
    faults.clear();
    load.stop().await;
    let report = run.finish().await;
    assert_sound(&report);
}

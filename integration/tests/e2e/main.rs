//! End-to-end tests: engine, `kpl` producer and `kcl` fleet together, with failures injected.
//! See the `integration` crate docs for running them against external endpoints.

mod crash;
mod delivery;
mod durable;
mod faults;
mod reshard;

use std::time::Duration;

use examples::features::{Report, Shared};
use integration::{Fleet, Load, TestEnv, load::producer_config};

/// A stream, a fleet on it and a load into it, for one test.
struct Run {
    env: TestEnv,
    stream: String,
    app: String,
    shared: Shared,
    fleet: Fleet,
}

impl Run {
    /// Creates a stream of `shards` shards and starts `workers` workers on it.
    async fn start(env: TestEnv, shards: i32, workers: usize) -> Self {
        let stream = env.name("clicks");
        let app = env.name("features");
        env.create_stream(&stream, shards).await;
        let shared = Shared::default();
        let fleet = Fleet::start(&env, &app, &stream, workers, &shared);
        Self {
            env,
            stream,
            app,
            shared,
            fleet,
        }
    }

    /// Starts producing `rate` events/s from 200 users.
    async fn load(&self, rate: u64) -> Load {
        self.load_with(producer_config(), rate).await
    }

    async fn load_with(&self, config: kpl::Config, rate: u64) -> Load {
        Load::start(
            &self.env.kinesis,
            &self.stream,
            config,
            rate,
            200,
            &self.shared,
        )
        .await
    }

    /// Waits for the fleet to catch up, stops it, and returns the verdict.
    async fn finish(self) -> Report {
        let caught_up = self.fleet.wait_caught_up(Duration::from_secs(60)).await;
        self.fleet.stop().await;
        let report = self.shared.report();
        assert!(caught_up, "the fleet did not catch up: {report:?}");
        report
    }
}

/// Nothing lost, nothing reordered, everything produced.
fn assert_sound(report: &Report) {
    assert!(report.acked > 0, "nothing was produced: {report:?}");
    assert_eq!(report.producer_failures, 0, "{report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.order_violations, 0, "{report:?}");
    assert_eq!(report.malformed, 0, "{report:?}");
}

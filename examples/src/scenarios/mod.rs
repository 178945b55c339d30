//! Scenarios from real use, each a library module with a `run(clients, options)` entry point and a
//! thin binary of the same name in `src/bin/`.
//!
//! - [`clickstream_features`]: per-user features from a clickstream into a DynamoDB table, with
//!   writes that a replay cannot double-count.
//! - [`iot_alerts`]: anomaly alerts on device telemetry, published to a second stream.
//! - [`log_fanout`]: one log stream read by two independent applications.
//!
//! A scenario starts nothing itself: it takes [`Clients`] for an engine that is already running
//! (embedded or `core-engine serve`) or for AWS, creates its streams and tables (each
//! scenario's `resources` lists them), runs, and returns a report that says whether its
//! guarantees held. The helpers here are what the three share; [`cli`] is where the binaries
//! run (`--endpoint`, the AWS configuration, or an engine in their own process) and
//! [`resources`] deletes what a run created.

pub mod app;
pub mod cli;
pub mod clickstream_features;
pub mod iot_alerts;
pub mod log_fanout;
pub mod produce;
pub mod read;
pub mod resources;

use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;

use crate::clients;

/// The two SDK clients a scenario needs.
#[derive(Clone, Debug)]
pub struct Clients {
    /// Kinesis, for the streams.
    pub kinesis: aws_sdk_kinesis::Client,
    /// DynamoDB, for lease tables and application tables.
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Clients {
    /// Clients for the engine at `endpoint` (e.g. `http://127.0.0.1:4567`).
    pub fn new(endpoint: &str) -> Self {
        Self {
            kinesis: clients::kinesis(endpoint),
            dynamodb: clients::dynamodb(endpoint),
        }
    }
}

/// Polls `done` every 100 ms until it returns true (then returns true) or `limit` passes (then
/// false). Waiting on the condition itself keeps scenarios fast on a fast machine and correct on
/// a slow one.
pub async fn wait_until<F, Fut>(limit: Duration, mut done: F) -> Result<bool>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if done().await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `kcl` configuration for short runs: reads from TRIM_HORIZON (nothing produced before the
/// workers start is skipped), finds shards and failed workers within seconds, and, when
/// `retrieval` is polling, polls each shard 4 times a second (under Kinesis' limit of 5 reads/s).
pub fn kcl_config(retrieval: &kcl::Retrieval) -> kcl::Config {
    kcl::Config {
        retrieval: retrieval.clone(),
        initial_position: kcl::InitialPosition::TrimHorizon,
        failover_time: Duration::from_secs(3),
        shard_sync_interval: Duration::from_secs(1),
        idle_time_between_reads: Duration::from_millis(250),
        shutdown_timeout: Duration::from_secs(10),
        ..kcl::Config::default()
    }
}

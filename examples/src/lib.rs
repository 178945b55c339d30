//! Shardline examples: the building blocks of the quickstart (`src/bin/quickstart.rs`), the
//! scenarios and the worker fleet.
//!
//! - [`clients`]: Kinesis and DynamoDB clients from the AWS configuration, `--endpoint`, or an
//!   engine in this process.
//! - [`clickstream`]: the workload, click events with a per-user sequence number.
//! - [`features`]: a `kcl` record processor computing per-user features, and the ledger that
//!   checks nothing was lost or reordered.
//! - [`scenarios`]: three scenarios from real use (feature store, IoT alerts, log fan-out), each
//!   with a binary of the same name.
//! - [`verdict`]: the checks every run's verdict shares (something acknowledged, no producer
//!   failure, nothing lost or reordered, no shard processed by two workers at once), as pure,
//!   tested functions.
//! - [`fleet`]: the worker-fleet example, `kcl` workers as separate processes
//!   (`src/bin/fleet_*.rs`, walkthrough in `docs/fleet.md`).
//! - [`logging`]: `--log-format text|json` of the binaries that log.
//! - [`metrics`]: `--metrics-listen`, the Prometheus endpoint of the producer and worker binaries,
//!   and `--cloudwatch` (cargo feature `cloudwatch`), their metrics published to CloudWatch.
//! - [`retrieval`]: the `--retrieval` flag (enhanced fan-out, the default, or polling).
//! - [`soak`]: the chaos soak (`src/bin/chaos_soak.rs`): kills, reshards and faults against a
//!   durable engine, a producer and a worker fleet, then a check that nothing was lost.

pub mod clickstream;
pub mod clients;
pub mod features;
pub mod fleet;
pub mod logging;
pub mod metrics;
pub mod retrieval;
pub mod scenarios;
pub mod soak;
pub mod verdict;

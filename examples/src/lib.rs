//! Shardline examples: the building blocks of the quickstart (`src/bin/quickstart.rs`).
//!
//! - [`clients`]: Kinesis and DynamoDB clients pointed at an engine.
//! - [`clickstream`]: the workload, click events with a per-user sequence number.
//! - [`features`]: a `kcl` record processor computing per-user features, and the ledger that
//!   checks nothing was lost or reordered.
//! - [`scenarios`]: three scenarios from real use (feature store, IoT alerts, log fan-out), each
//!   with a binary of the same name.

pub mod clickstream;
pub mod clients;
pub mod features;
pub mod scenarios;

//! Shardline examples: the building blocks of the quickstart (`src/bin/quickstart.rs`).
//!
//! - [`clients`]: Kinesis and DynamoDB clients pointed at an engine.
//! - [`clickstream`]: the workload, click events with a per-user sequence number.
//! - [`features`]: a `kcl` record processor computing per-user features, and the ledger that
//!   checks nothing was lost or reordered.
//! - [`fleet`]: the worker-fleet example, `kcl` workers as separate processes
//!   (`src/bin/fleet_*.rs`, walkthrough in `FLEET.md`).

pub mod clickstream;
pub mod clients;
pub mod features;
pub mod fleet;

//! Shardline examples: the building blocks of the quickstart (`src/bin/quickstart.rs`), the
//! scenarios and the worker fleet.
//!
//! - [`clients`]: Kinesis and DynamoDB clients pointed at an engine.
//! - [`clickstream`]: the workload, click events with a per-user sequence number.
//! - [`features`]: a `kcl` record processor computing per-user features, and the ledger that
//!   checks nothing was lost or reordered.
//! - [`scenarios`]: three scenarios from real use (feature store, IoT alerts, log fan-out), each
//!   with a binary of the same name.
//! - [`fleet`]: the worker-fleet example, `kcl` workers as separate processes
//!   (`src/bin/fleet_*.rs`, walkthrough in the README).
//! - [`soak`]: the chaos soak (`src/bin/chaos_soak.rs`): kills, reshards and faults against a
//!   durable engine, a producer and a worker fleet, then a check that nothing was lost.

pub mod clickstream;
pub mod clients;
pub mod features;
pub mod fleet;
pub mod scenarios;
pub mod soak;

//! Engine-backed tests: several workers in one process against the in-process engine.

mod aggregation;
mod builder;
mod common;
mod distribution;
mod dynamodb_faults;
mod expired;
mod failover;
mod failure_policy;
mod fan_out;
mod handoff;
mod java_table;
mod lease_table;
mod multi_stream;
mod positions;
mod processing;
mod resharding;
mod robustness;
mod stuck;

//! The producer against the in-process engine, through the real AWS SDK over HTTP.

mod common;
mod delivery;
mod distribution;
mod failures;
mod reshard;

//! `kcl`: the Shardline consumer framework for Amazon Kinesis.
#![doc = "(docs in progress)"]

pub mod error;
pub mod leases;

pub use error::{Error, Result};

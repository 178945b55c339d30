//! `kcl`: the Shardline consumer framework for Amazon Kinesis.
#![doc = "(docs in progress)"]

pub mod checkpointer;
pub mod config;
mod consumer;
pub mod error;
pub mod leases;
pub mod processor;
pub mod retrieval;
mod scheduler;
mod shard_sync;

pub use checkpointer::{Checkpointer, PreparedCheckpoint};
pub use config::{Config, InitialPosition, RetryPolicy};
pub use error::{Error, Result};
pub use processor::{
    InitializationInput, ProcessRecordsInput, ProcessorError, Record, RecordProcessor,
    RecordProcessorFactory,
};
pub use scheduler::Scheduler;

//! `kpl`: the Shardline producer library (aggregation, batching, rate limiting and retries for Kinesis). Its implementation lands with its own issue.
pub mod aggregation;

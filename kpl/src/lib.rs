//! `kpl`: the Shardline producer library for Amazon Kinesis Data Streams.
//!
//! # Model
//! A [`Producer`] takes user [`Record`]s and delivers them to one stream with as few requests
//! as the stream allows, like the Kinesis Producer Library, in-process:
//!
//! 1. **Routing.** Each record's shard is predicted from its hash key (the MD5 of its partition
//!    key, or its explicit hash key) and a shard map read with ListShards, refreshed when the
//!    stream is resharded.
//! 2. **Aggregation.** Records bound for the same shard are packed into KPL aggregates (the
//!    [`aggregation`] format that the KCL, Lambda and aws-kinesis-agg decode) of up to
//!    `aggregation_max_size` bytes. An aggregate that lands on a shard not owning all its
//!    records would be dropped by consumers, so it is re-aggregated and sent again.
//! 3. **Collection.** Kinesis records are sent in PutRecords calls of up to 500 records and
//!    `collection_max_size` bytes, when their `record_max_buffered_time` is up or a call is full.
//! 4. **Rate limiting.** Each shard's records pass token buckets at `rate_limit` % of the
//!    shard's write limits, so most calls succeed the first time.
//! 5. **Retries.** Throttled and failed records are retried with jittered exponential backoff
//!    until `record_ttl`; errors retrying cannot fix fail at once.
//! 6. **Outcomes.** Every put gives a [`DeliveryFuture`]: the shard, sequence number and
//!    sub-sequence number, with every attempt; or a [`PutFailure`] that hands the record back.
//! 7. **Bounded memory.** [`Producer::put`] waits while the producer holds
//!    `max_outstanding_records` records or `max_outstanding_bytes` bytes;
//!    [`Producer::try_put`] fails instead. A record bigger than `max_outstanding_bytes` is
//!    refused at once ([`PutError::LargerThanBuffer`]).
//!
//! Metrics use the KPL's names (UserRecordsReceived, UserRecordsPut, KinesisRecordsPut,
//! BufferingTime, RetriesPerRecord, AllErrors, ErrorsByCode, ...) and levels through the
//! `metrics` facade, labelled `stream` (and `shard`); see [`MetricsLevel`] and
//! [`MetricsGranularity`].
//!
//! # Example
//! ```no_run
//! # async fn demo(client: aws_sdk_kinesis::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use kpl::{Config, Producer, Record};
//!
//! let producer = Producer::new(client, "clicks", Config::default()).await?;
//! let delivery = producer.put(Record::new("user-42", "page=/home")).await?;
//! let landed = delivery.await?;
//! println!("{} {}", landed.shard_id, landed.sequence_number);
//! let undelivered = producer.shutdown(std::time::Duration::from_secs(5)).await;
//! assert!(undelivered.is_empty());
//! # Ok(()) }
//! ```

// A failed put hands the record back by value (as rdkafka does); its size is the point.
#![allow(clippy::result_large_err)]

pub mod aggregation;
mod config;
mod error;
mod limiter;
mod metrics;
mod producer;
mod record;
mod shard_map;
mod worker;

pub use config::Config;
pub use error::{ConfigError, PutError, PutFailure, StartError};
pub use metrics::{MetricsGranularity, MetricsLevel};
pub use producer::{DeliveryFuture, Producer, StreamTarget};
pub use record::{Attempt, Delivery, Record};

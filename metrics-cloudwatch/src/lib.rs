//! Publishes the metrics `kpl` and `kcl` emit (through the [`metrics`] facade) to Amazon
//! CloudWatch, the way the KPL and the KCL publish theirs.
//!
//! [`CloudWatchPublisher::start`] returns a publisher whose [`recorder`](CloudWatchPublisher::recorder)
//! is a [`metrics::Recorder`]: install it (globally with [`CloudWatchPublisher::install`], or
//! per scope with [`metrics::with_local_recorder`]) and every counter, gauge and histogram is
//! aggregated per interval into a CloudWatch `StatisticSet` (sample count, sum, minimum,
//! maximum) and sent with `PutMetricData`, at most 1000 data per request.
//!
//! # Namespaces and dimensions
//! The labels decide where a metric goes ([`mapping`]):
//! - a metric with an `application` label is a KCL metric: namespace = the application name
//!   (as the KCL's default), dimensions `Operation` (the `operation` label, or the KCL operation
//!   the metric belongs to, such as `ProcessTask` for `RecordsProcessed`), `ShardId` (label
//!   `shard`), `StreamName` (label `stream`), `WorkerIdentifier` (label `worker`);
//! - any other metric is a KPL metric: namespace [`Config::kpl_namespace`]
//!   (`KinesisProducerLibrary`), published, as the KPL does, at each level up to
//!   [`Config::granularity`]: global (no stream or shard), per stream (`StreamName`), per shard
//!   (`StreamName`, `ShardId`); [`Config::default_application`] sends unlabelled metrics to a
//!   KCL application instead.
//!
//! Other labels become dimensions of the same name (the KPL's `ErrorCode`).
//!
//! # Aggregation
//! Per interval and per target, every sample becomes part of one `StatisticSet`: each counter
//! increment and histogram value is a sample (so `UserRecordsPut` has the sum of records put
//! and the number of increments), each gauge `set` is a sample, and a gauge not set during an
//! interval reports its last value again (a level stays a level); counters and histograms with
//! no new samples send nothing. Data are timestamped at the flush.
//!
//! # Guarantees
//! - Recording never waits on the network: it updates an in-memory cell under a short lock.
//! - Every request has a timeout ([`Config::request_timeout`]); a failed request is logged and
//!   counted ([`PublisherStats`]) and its data kept for the next flush when the failure is
//!   transient, up to [`Config::max_buffered_data`] (the oldest are dropped and counted beyond);
//!   data CloudWatch rejects as invalid are dropped.
//! - [`CloudWatchPublisher::shutdown`] flushes what was recorded since the last interval
//!   (dropping the publisher instead stops it without a last flush).
//!
//! # Example
//! ```no_run
//! # async fn demo() {
//! use shardline_cloudwatch::{CloudWatchPublisher, Config};
//!
//! // Credentials, region and endpoint the standard way (`AWS_ENDPOINT_URL` for an engine).
//! let sdk = aws_config::load_from_env().await;
//! let client = shardline_cloudwatch::aws_sdk_cloudwatch::Client::new(&sdk);
//! let publisher = CloudWatchPublisher::start(client, Config::default());
//! publisher.install().expect("no other global metrics recorder");
//! // ... run kpl producers and kcl workers: their metrics go to CloudWatch every minute ...
//! let last = publisher.shutdown().await;
//! println!("last flush sent {} data", last.data_sent);
//! # }
//! ```

mod config;
mod error;
pub mod mapping;
mod publisher;
mod recorder;

pub use aws_sdk_cloudwatch;
pub use config::{Config, Granularity};
pub use error::PublishError;
pub use publisher::{CloudWatchPublisher, FlushReport, PublisherStats};
pub use recorder::CloudWatchRecorder;

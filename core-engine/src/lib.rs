//! A Kinesis-compatible engine that the real AWS clients talk to.
//!
//! `core-engine` serves the Amazon Kinesis Data Streams API on one port, so that unmodified
//! clients (`aws-sdk-kinesis`, awscli, boto3, the Java SDK) work against it. Run it in-process in
//! tests with [`Engine::start`], or standalone with the `core-engine serve` binary.
//!
//! # Model
//! - A **stream** has shards, each owning an even slice of the 128-bit hash key space. A record
//!   goes to the shard owning the MD5 of its partition key (or its `ExplicitHashKey`).
//! - Each record gets a **sequence number**, a decimal string that strictly increases within its
//!   shard and is unique in its stream (layout in [`model::sequence`]).
//! - Readers hold **shard iterators**: opaque tokens naming a shard and a position, valid for
//!   five minutes ([`model::iterator`]).
//! - Records expire after the stream's **retention period** (24 hours by default).
//! - **Storage** is in memory, or durable in a data directory: a put is acknowledged only once
//!   its records are synced to a write-ahead log, and a record is readable only once durable
//!   ([`storage`]).
//! - **Resharding** closes parent shards and opens children that name them; readers follow the
//!   lineage, and the end of a closed shard names its children.
//! - **Enhanced fan-out** pushes records to registered consumers over an event stream as soon as
//!   they are appended.
//! - **Throughput limits** apply per shard as in Kinesis (switchable off), and [`faults`] can
//!   make chosen calls fail reproducibly.
//! - **Time** comes from a [`Clock`], so tests can drive expiry, retention and rate limits.
//!
//! The wire protocol is awsJson1.1, or its CBOR variant `application/x-amz-cbor-1.1` (the Java
//! SDK's default), over HTTP/1.1 or HTTP/2, cleartext or TLS ([`tls`]): `POST /` with
//! `X-Amz-Target: Kinesis_20131202.<Operation>`. The same port also serves the part of DynamoDB
//! that lease tables need (awsJson1.0, `X-Amz-Target: DynamoDB_20120810.<Operation>`), in
//! memory or durable in the same data directory. Errors carry AWS's codes and status codes
//! ([`ApiError`]). Requests must carry SigV4 credentials; by default any are accepted, and with
//! [`EngineBuilder::credentials`] signatures are verified and access rules applied ([`auth`]).
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = core_engine::Engine::builder().build()?.start().await?;
//! // Point any AWS SDK at engine.endpoint_url(), with any credentials.
//! println!("listening on {}", engine.endpoint_url());
//! engine.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`engine`]: the builder, [`Engine::start`] / [`Engine::run`] and the running handle.
//! - `server`: HTTP/1.1 + HTTP/2 connections, cleartext or TLS ([`tls`]); `protocol`: routing, the awsJson1.1 codec and the
//!   CBOR translation.
//! - `kinesis`: one file per family of operations.
//! - [`cloudwatch`]: CloudWatch PutMetricData (RPC v2 CBOR, awsJson1.0 and awsQuery) and the
//!   points it keeps, readable with [`EngineHandle::cloudwatch_series`].
//! - [`model`]: streams, shards, hash keys, sequence numbers and iterators.
//! - [`storage`]: the storage trait, in memory and as a write-ahead log on disk.
//! - `observe`: `GET /metrics` (Prometheus text) and the live page at `GET /`, with their counters.

pub mod auth;
pub mod clock;
pub mod cloudwatch;
mod dynamodb;
pub mod engine;
mod error;
pub mod faults;
mod fuzz;
mod kinesis;
pub mod model;
mod observe;
mod protocol;
mod server;
pub mod storage;
pub mod tls;

pub use clock::{Clock, ManualClock, TokioClock};
pub use engine::{Engine, EngineBuilder, EngineHandle, RecoveredEngine};
pub use error::{ApiError, Error};
pub use faults::{Fault, FaultRule, Service};
pub use storage::wal::SyncMode;
pub use tls::TlsConfig;

/// The DynamoDB expression parsers, for the fuzz target in `core-engine/fuzz`. Not a stable API.
#[doc(hidden)]
pub use dynamodb::expr::fuzz_expression as __fuzz_expression;
/// The direct CBOR request decoders against the translation, for the fuzz target in
/// `core-engine/fuzz`. Not a stable API.
#[doc(hidden)]
pub use fuzz::fuzz_cbor_requests as __fuzz_cbor_requests;
/// Whole requests through the real dispatch path, for the fuzz target in `core-engine/fuzz`.
/// Not a stable API.
#[doc(hidden)]
pub use fuzz::fuzz_requests as __fuzz_requests;

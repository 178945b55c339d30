//! The producer's errors. A failed put always hands the record back.

use crate::record::{Attempt, Record};

/// Why a user record was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PutError {
    /// The record breaks a Kinesis rule (key length, hash key, size) and can never succeed.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The producer holds as many records or bytes as it may (`try_put` only).
    #[error("the producer is full: {0}")]
    Full(String),
    /// The record is within the stream's size limit but bigger than
    /// [`Config::max_outstanding_bytes`](crate::Config::max_outstanding_bytes), so this producer
    /// could never hold it: `put` would wait forever. A producer with a larger
    /// `max_outstanding_bytes` can send it.
    #[error(
        "the record is {size} bytes (data plus partition key), more than the producer may hold \
         (max_outstanding_bytes = {max_outstanding_bytes})"
    )]
    LargerThanBuffer {
        /// The record's size: data plus partition key.
        size: usize,
        /// The producer's `max_outstanding_bytes`.
        max_outstanding_bytes: usize,
    },
    /// The record was not delivered within its time to live.
    #[error("record expired after {attempts} attempt(s); last error: {last_error}")]
    Expired {
        /// How many attempts were made.
        attempts: usize,
        /// The last error seen, or "never sent".
        last_error: String,
    },
    /// Kinesis throttled the record and `fail_if_throttled` is set.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Kinesis refused the request for a reason retrying cannot fix (missing stream, access
    /// denied, validation).
    #[error("{code}: {message}")]
    Rejected {
        /// The AWS error code.
        code: String,
        /// The AWS message.
        message: String,
    },
    /// The producer shut down before the record was delivered.
    #[error("the producer shut down before the record was delivered")]
    Shutdown,
}

impl PutError {
    /// Whether putting the same record again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Full(_) | Self::Expired { .. } | Self::Throttled(_) | Self::Shutdown
        )
    }
}

/// A record that was not delivered, handed back with the reason and its attempts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct PutFailure {
    /// Why.
    #[source]
    pub error: PutError,
    /// The record, to retry, park or drop.
    pub record: Record,
    /// Every attempt made.
    pub attempts: Vec<Attempt>,
}

/// A configuration field out of its range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("config field {field} must be {range}")]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// Its valid range.
    pub range: &'static str,
}

/// Why a producer could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The stream's shards could not be listed.
    #[error("cannot list the shards of {stream}: {message}")]
    ShardMap {
        /// The stream.
        stream: String,
        /// What went wrong.
        message: String,
    },
}

//! The crate's one error type.

use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Errors surfaced by `kcl`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This worker no longer holds the shard's lease: a conditional write on `leaseCounter` failed,
    /// or renewal has not succeeded for longer than the failover time.
    #[error("lease for shard {shard_id} lost")]
    LeaseLost {
        /// The shard (lease key).
        shard_id: String,
    },
    /// A checkpoint beyond the last delivered record or behind the current checkpoint.
    #[error("invalid checkpoint: {0}")]
    InvalidCheckpoint(String),
    /// The worker is shutting down.
    #[error("worker is shutting down")]
    Shutdown,
    /// A DynamoDB call failed.
    #[error("DynamoDB {op} failed: {message}")]
    DynamoDb {
        /// The operation.
        op: &'static str,
        /// What the service or transport said.
        message: String,
        /// Whether trying again may succeed (throttling, 5xx, transport).
        retryable: bool,
    },
    /// A Kinesis call failed.
    #[error("Kinesis {op} failed: {message}")]
    Kinesis {
        /// The operation.
        op: &'static str,
        /// Error code, when the service gave one.
        code: Option<String>,
        /// What the service or transport said.
        message: String,
        /// Whether trying again may succeed (throttling, 5xx, transport).
        retryable: bool,
    },
    /// An AWS call got no answer within its timeout ([`Config::dynamodb_timeout`],
    /// [`Config::kinesis_timeout`]). Retryable: the call may or may not have taken effect, so
    /// whatever depends on it is verified or written again, never assumed.
    ///
    /// [`Config::dynamodb_timeout`]: crate::Config::dynamodb_timeout
    /// [`Config::kinesis_timeout`]: crate::Config::kinesis_timeout
    #[error("{service} {op} timed out after {after:?}")]
    Timeout {
        /// `DynamoDB` or `Kinesis`.
        service: &'static str,
        /// The operation.
        op: &'static str,
        /// The timeout that passed.
        after: Duration,
    },
    /// A lease item that does not follow the lease-table schema.
    #[error("malformed lease {key}: {reason}")]
    MalformedLease {
        /// The item's `leaseKey`, if it had one.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The lease table did not become ACTIVE in time.
    #[error("lease table {0} not active")]
    TableNotActive(String),
    /// The enhanced fan-out consumer did not become ACTIVE in time
    /// ([`FanOutConfig::activation_timeout`](crate::config::FanOutConfig::activation_timeout)).
    #[error("stream consumer {0} not active")]
    ConsumerNotActive(String),
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A [`Config`](crate::Config) field, or a setting of the
    /// [`SchedulerBuilder`](crate::SchedulerBuilder), that is missing or out of range; returned
    /// when the scheduler is built, before anything is called.
    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig {
        /// The field or builder setting (`"failover_time"`, `"application"`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading a shard failed with an error trying again cannot fix (`AccessDeniedException`,
    /// the stream deleted, `InvalidArgumentException`, a KMS key unusable). Returned by
    /// [`Scheduler::run`](crate::Scheduler::run) once every shard of the stream failed so on
    /// this worker.
    #[error("reading shard {shard_id} failed: {source}")]
    ReadFailed {
        /// The shard.
        shard_id: String,
        /// The Kinesis error.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Whether the failed operation may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::DynamoDb { retryable, .. } | Error::Kinesis { retryable, .. } => *retryable,
            Error::TableNotActive(_) | Error::ConsumerNotActive(_) | Error::Timeout { .. } => true,
            _ => false,
        }
    }

    /// Whether this worker lost the lease (the processor must stop and must not checkpoint).
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Error::LeaseLost { .. })
    }

    /// Whether an AWS call timed out (see [`Error::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Whether Kinesis reported an expired shard iterator.
    pub fn is_expired_iterator(&self) -> bool {
        matches!(self, Error::Kinesis { code: Some(c), .. } if c == "ExpiredIteratorException")
    }

    /// Whether Kinesis reported that the stream or shard does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Kinesis { code: Some(c), .. } if c == "ResourceNotFoundException")
    }

    /// Whether Kinesis reported `ResourceInUseException` (for a subscription: another one of the
    /// same consumer and shard is live; for a registration: the consumer is being registered).
    pub fn is_resource_in_use(&self) -> bool {
        matches!(self, Error::Kinesis { code: Some(c), .. } if c == "ResourceInUseException")
    }

    /// Whether a read (GetShardIterator, GetRecords, SubscribeToShard) that failed so cannot
    /// succeed if tried again: access denied, an argument refused, a KMS key unusable. (A
    /// missing stream is found by asking whether the stream exists: ResourceNotFoundException
    /// alone does not say whether the stream or the shard is gone.)
    pub fn is_non_retryable_read(&self) -> bool {
        matches!(self, Error::Kinesis { code: Some(c), .. } if matches!(
            c.as_str(),
            "AccessDeniedException"
                | "InvalidArgumentException"
                | "ValidationException"
                | "KMSAccessDeniedException"
                | "KMSDisabledException"
                | "KMSInvalidStateException"
                | "KMSNotFoundException"
                | "KMSOptInRequired"
        ))
    }

    /// Whether Kinesis or DynamoDB throttled the call.
    pub fn is_throttling(&self) -> bool {
        match self {
            Error::Kinesis { code: Some(c), .. } => is_throttling_code(c),
            Error::DynamoDb { message, .. } => {
                message.contains("Throttl") || message.contains("ProvisionedThroughputExceeded")
            }
            _ => false,
        }
    }
}

fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "LimitExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "KMSThrottlingException"
    )
}

/// The error code of an SDK error, if the service returned one.
pub(crate) fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: &SdkError<E, R>,
) -> (Option<String>, String, bool) {
    match err {
        SdkError::ServiceError(e) => {
            let code = e.err().code().map(str::to_owned);
            let message = format!(
                "{}: {}",
                code.as_deref().unwrap_or("unknown"),
                e.err().message().unwrap_or_default()
            );
            let retryable = code.as_deref().is_some_and(|c| {
                is_throttling_code(c)
                    || matches!(
                        c,
                        "InternalFailure"
                            | "InternalServerError"
                            | "ServiceUnavailable"
                            | "ServiceUnavailableException"
                    )
            });
            (code, message, retryable)
        }
        // Timeouts, dispatch and response failures are transport trouble: worth another try.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (None, format!("{err:?}"), true)
        }
        _ => (None, format!("{err:?}"), false),
    }
}

pub(crate) fn ddb<E, R>(op: &'static str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (_, message, retryable) = classify(&err);
    Error::DynamoDb {
        op,
        message,
        retryable,
    }
}

pub(crate) fn kinesis<E, R>(op: &'static str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (code, message, retryable) = classify(&err);
    Error::Kinesis {
        op,
        code,
        message,
        retryable,
    }
}

/// Runs one AWS call under `limit`; the outer error is the timeout.
pub(crate) async fn within<F: Future>(
    limit: Duration,
    service: &'static str,
    op: &'static str,
    call: F,
) -> Result<F::Output> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| Error::Timeout {
            service,
            op,
            after: limit,
        })
}

/// A DynamoDB call under `limit`, its SDK error mapped.
pub(crate) async fn ddb_call<T, E, R, F>(limit: Duration, op: &'static str, call: F) -> Result<T>
where
    F: Future<Output = std::result::Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    within(limit, "DynamoDB", op, call)
        .await?
        .map_err(|e| ddb(op, e))
}

/// A Kinesis call under `limit`, its SDK error mapped.
pub(crate) async fn kinesis_call<T, E, R, F>(
    limit: Duration,
    op: &'static str,
    call: F,
) -> Result<T>
where
    F: Future<Output = std::result::Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    within(limit, "Kinesis", op, call)
        .await?
        .map_err(|e| kinesis(op, e))
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

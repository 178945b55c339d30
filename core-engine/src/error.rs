//! Errors: what the engine answers on the wire ([`ApiError`]) and what can stop it from starting
//! ([`Error`]).

use std::fmt;

use crate::storage::StorageError;

/// An error returned to a client, with the AWS error code and HTTP status AWS uses for it.
///
/// The codes are stable strings that clients match on; never rename one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The named stream, shard or consumer does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The resource is in a state that does not allow the operation (for example it exists already).
    #[error("{0}")]
    ResourceInUse(String),
    /// A parameter is well formed but not acceptable.
    #[error("{0}")]
    InvalidArgument(String),
    /// An account or stream limit would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// The KMS key named for server-side encryption does not exist (here: is not well formed).
    #[error("{0}")]
    KmsNotFound(String),
    /// The shard iterator is older than five minutes.
    #[error("{0}")]
    ExpiredIterator(String),
    /// The pagination token is older than five minutes.
    #[error("{0}")]
    ExpiredNextToken(String),
    /// The request exceeds the throughput of the shard.
    #[error("{0}")]
    ProvisionedThroughputExceeded(String),
    /// One or more members violate their constraints; each entry is one violation.
    #[error("{}", validation_message(.0))]
    Validation(Vec<String>),
    /// The body could not be parsed, or a member has the wrong type.
    #[error("{0}")]
    Serialization(String),
    /// The `X-Amz-Target` names no known operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// The request was not authenticated.
    #[error("{0}")]
    MissingAuthenticationToken(String),
    /// The request's signature is malformed or incomplete.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The request's signature, credential scope or time is wrong.
    #[error("{0}")]
    InvalidSignature(String),
    /// The access key is unknown, or its session token is wrong.
    #[error("{0}")]
    UnrecognizedClient(String),
    /// The access key's rules do not allow the operation on the resource.
    #[error("{0}")]
    AccessDenied(String),
    /// The request body is larger than the engine accepts.
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// The engine failed; the request may be retried.
    #[error("{0}")]
    InternalFailure(String),
}

fn validation_message(violations: &[String]) -> String {
    let count = violations.len();
    let plural = if count == 1 { "" } else { "s" };
    format!(
        "{count} validation error{plural} detected: {}",
        violations.join("; ")
    )
}

impl ApiError {
    /// The AWS error code, as sent in `__type` and `x-amzn-ErrorType`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::ResourceInUse(_) => "ResourceInUseException",
            Self::InvalidArgument(_) => "InvalidArgumentException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::KmsNotFound(_) => "KMSNotFoundException",
            Self::ExpiredIterator(_) => "ExpiredIteratorException",
            Self::ExpiredNextToken(_) => "ExpiredNextTokenException",
            Self::ProvisionedThroughputExceeded(_) => "ProvisionedThroughputExceededException",
            Self::Validation(_) => "ValidationException",
            Self::Serialization(_) => "SerializationException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::MissingAuthenticationToken(_) => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::InvalidSignature(_) => "InvalidSignatureException",
            Self::UnrecognizedClient(_) => "UnrecognizedClientException",
            Self::AccessDenied(_) => "AccessDeniedException",
            Self::RequestEntityTooLarge(_) => "RequestEntityTooLargeException",
            Self::InternalFailure(_) => "InternalFailure",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::InternalFailure(_) => 500,
            Self::MissingAuthenticationToken(_) => 403,
            Self::RequestEntityTooLarge(_) => 413,
            _ => 400,
        }
    }

    /// Whether a client may retry the same request and expect it to succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::InternalFailure(_)
                | Self::ProvisionedThroughputExceeded(_)
                | Self::LimitExceeded(_)
        )
    }

    /// A single constraint violation, in the words AWS uses.
    pub(crate) fn invalid_member(value: impl fmt::Display, path: &str, constraint: &str) -> Self {
        Self::Validation(vec![violation(value, path, constraint)])
    }
}

/// Formats one violation: `Value 'x' at 'path' failed to satisfy constraint: Member must ...`.
pub(crate) fn violation(value: impl fmt::Display, path: &str, constraint: &str) -> String {
    format!("Value '{value}' at '{path}' failed to satisfy constraint: Member must {constraint}")
}

/// Formats a violation for a missing required member.
pub(crate) fn missing(path: &str) -> String {
    format!("Value null at '{path}' failed to satisfy constraint: Member must not be null")
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        tracing::error!(error = %err, "storage failure");
        Self::InternalFailure(format!("Internal service failure: {err}"))
    }
}

/// Why the engine could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be opened or recovered.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The engine's configuration is not valid.
    #[error("invalid engine configuration: {0}")]
    Config(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_read_like_aws() {
        let one = ApiError::invalid_member(
            "a b",
            "streamName",
            "satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        );
        assert_eq!(
            one.to_string(),
            "1 validation error detected: Value 'a b' at 'streamName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        );
        let two = ApiError::Validation(vec![missing("streamName"), missing("shardCount")]);
        assert!(
            two.to_string()
                .starts_with("2 validation errors detected: Value null at 'streamName'")
        );
        assert_eq!(two.code(), "ValidationException");
        assert_eq!(two.status(), 400);
        assert!(!two.is_retryable());
        assert!(ApiError::InternalFailure(String::new()).is_retryable());
    }
}

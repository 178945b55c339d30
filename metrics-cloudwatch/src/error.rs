//! Why a PutMetricData failed.

use std::time::Duration;

/// A failed PutMetricData.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// No answer within the request timeout.
    #[error("PutMetricData timed out after {0:?}")]
    Timeout(Duration),
    /// CloudWatch refused the request; `code` is its error code (`InvalidParameterValue`).
    #[error("PutMetricData refused: {code}: {message}")]
    Refused {
        /// The error code.
        code: String,
        /// The message.
        message: String,
        /// Whether CloudWatch said it was a server-side fault (status 5xx, throttling).
        transient: bool,
    },
    /// The request did not reach CloudWatch or its answer did not come back.
    #[error("PutMetricData failed: {0}")]
    Transport(String),
}

impl PublishError {
    /// Whether the same data may be sent again and expect success.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Transport(_) => true,
            Self::Refused { transient, .. } => *transient,
        }
    }

    /// The stable code of the error: CloudWatch's code, `Timeout` or `Transport`.
    pub fn code(&self) -> &str {
        match self {
            Self::Timeout(_) => "Timeout",
            Self::Refused { code, .. } => code,
            Self::Transport(_) => "Transport",
        }
    }
}

//! CloudWatch's errors: the awsQuery codes (`InvalidParameterValue`, `MissingParameter`, ...)
//! that every CloudWatch protocol reports, and the Smithy shape names the RPC v2 CBOR and JSON
//! protocols put in `__type`.

use crate::error::ApiError;

/// A failed CloudWatch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CwError {
    /// The awsQuery error code, stable across protocols (`InvalidParameterValue`).
    pub(crate) code: String,
    /// The Smithy shape name (`InvalidParameterValueException`); `None` where the code is also
    /// the shape name (the common AWS errors).
    shape: Option<&'static str>,
    /// The HTTP status.
    pub(crate) status: u16,
    /// The human-readable message.
    pub(crate) message: String,
}

impl CwError {
    fn new(code: &str, shape: Option<&'static str>, status: u16, message: String) -> Self {
        Self {
            code: code.to_owned(),
            shape,
            status,
            message,
        }
    }

    /// A parameter has a value CloudWatch does not accept.
    pub(crate) fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(
            "InvalidParameterValue",
            Some("InvalidParameterValueException"),
            400,
            message.into(),
        )
    }

    /// A required parameter is missing.
    pub(crate) fn missing(parameter: &str) -> Self {
        Self::new(
            "MissingParameter",
            Some("MissingRequiredParameterException"),
            400,
            format!("The parameter {parameter} is required."),
        )
    }

    /// Parameters that cannot be used together, or none of a required group.
    pub(crate) fn combination(message: impl Into<String>) -> Self {
        Self::new(
            "InvalidParameterCombination",
            Some("InvalidParameterCombinationException"),
            400,
            message.into(),
        )
    }

    /// Input GetMetricData refuses (CloudWatch's `ValidationError`, not a modelled shape):
    /// several problems are joined by newlines, as CloudWatch joins them.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", None, 400, message.into())
    }

    /// A NextToken this engine did not hand out for this request.
    pub(crate) fn invalid_next_token() -> Self {
        Self::new(
            "InvalidNextToken",
            None,
            400,
            "The specified NextToken is not valid for this request.".to_owned(),
        )
    }

    /// An operation this engine does not serve.
    pub(crate) fn unknown_operation(operation: &str) -> Self {
        Self::new(
            "InvalidAction",
            Some("UnknownOperationException"),
            400,
            format!(
                "The action {operation} is not valid for this web service: this engine serves \
                 CloudWatch PutMetricData, ListMetrics, GetMetricStatistics and GetMetricData"
            ),
        )
    }

    /// A body that does not decode.
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::new("SerializationException", None, 400, message.into())
    }

    /// The Smithy error shape name for `__type`.
    pub(crate) fn shape(&self) -> &str {
        self.shape.unwrap_or(&self.code)
    }

    /// `Sender` for client errors, `Receiver` for server faults (awsQuery's `<Type>`).
    pub(crate) fn fault(&self) -> &'static str {
        if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        }
    }
}

impl From<&ApiError> for CwError {
    /// An authentication or authorization failure, with the codes CloudWatch (an awsQuery
    /// service at heart) uses for them rather than Kinesis's.
    fn from(error: &ApiError) -> Self {
        let (code, status) = match error {
            ApiError::MissingAuthenticationToken(_) => ("MissingAuthenticationToken", 403),
            ApiError::IncompleteSignature(_) => ("IncompleteSignature", 400),
            ApiError::InvalidSignature(_) => ("SignatureDoesNotMatch", 403),
            ApiError::UnrecognizedClient(_) => ("InvalidClientTokenId", 403),
            ApiError::AccessDenied(_) => ("AccessDenied", 403),
            other => (other.code(), other.status()),
        };
        Self::new(code, None, status, error.to_string())
    }
}

impl std::fmt::Display for CwError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

//! DynamoDB's errors: one enum, each variant with its stable AWS code, its fully qualified
//! `__type` and its HTTP status.

use serde::Serialize;

use super::value::Item;
use crate::storage::StorageError;

/// Why a transaction item made the transaction fail, as `CancellationReasons` reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancellationReason {
    /// `None` for items that did not fail, else for example `ConditionalCheckFailed`.
    pub code: String,
    /// What went wrong, absent for `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The item as it was, when `ReturnValuesOnConditionCheckFailure` is `ALL_OLD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Item>,
}

/// An error answered to a DynamoDB client. The codes are stable strings clients match on.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DdbError {
    /// The request is malformed or violates a constraint.
    #[error("{0}")]
    Validation(String),
    /// The table or index does not exist (or is not ACTIVE yet).
    #[error("{0}")]
    ResourceNotFound(String),
    /// The table does not exist: the not-found error of the backup operations
    /// (DescribeContinuousBackups), which AWS answers with its own type.
    #[error("{0}")]
    TableNotFound(String),
    /// The table exists already, or is being created or deleted.
    #[error("{0}")]
    ResourceInUse(String),
    /// A condition evaluated to false; `item` is the item as it was when asked for.
    #[error("The conditional request failed")]
    ConditionalCheckFailed {
        /// The current item, for `ReturnValuesOnConditionCheckFailure = ALL_OLD`.
        item: Option<Item>,
    },
    /// A transaction failed; one reason per transaction item, in request order.
    #[error("{}", canceled_message(.0))]
    TransactionCanceled(Vec<CancellationReason>),
    /// The body is not valid JSON of the expected shape.
    #[error("{0}")]
    Serialization(String),
    /// The `X-Amz-Target` names no supported operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// The engine failed; the request may be retried.
    #[error("{0}")]
    InternalServerError(String),
    /// The request was throttled (only by an injected fault); it may be retried.
    #[error("{0}")]
    ProvisionedThroughputExceeded(String),
}

fn canceled_message(reasons: &[CancellationReason]) -> String {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
    format!(
        "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
        codes.join(", ")
    )
}

const DYNAMODB: &str = "com.amazonaws.dynamodb.v20120810#";

impl DdbError {
    /// The short AWS error code, as in `x-amzn-ErrorType`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationException",
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::TableNotFound(_) => "TableNotFoundException",
            Self::ResourceInUse(_) => "ResourceInUseException",
            Self::ConditionalCheckFailed { .. } => "ConditionalCheckFailedException",
            Self::TransactionCanceled(_) => "TransactionCanceledException",
            Self::Serialization(_) => "SerializationException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::InternalServerError(_) => "InternalServerError",
            Self::ProvisionedThroughputExceeded(_) => "ProvisionedThroughputExceededException",
        }
    }

    /// The fully qualified type DynamoDB sends in `__type`.
    pub fn qualified_type(&self) -> String {
        let namespace = match self {
            Self::Validation(_) => "com.amazon.coral.validate#",
            Self::Serialization(_) | Self::UnknownOperation(_) => "com.amazon.coral.service#",
            _ => DYNAMODB,
        };
        format!("{namespace}{}", self.code())
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::InternalServerError(_) => 500,
            _ => 400,
        }
    }

    /// The JSON error body.
    pub fn body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            __type: String,
            message: String,
            #[serde(rename = "Item", skip_serializing_if = "Option::is_none")]
            item: Option<&'a Item>,
            #[serde(
                rename = "CancellationReasons",
                skip_serializing_if = "Option::is_none"
            )]
            reasons: Option<&'a [CancellationReason]>,
        }
        let (item, reasons) = match self {
            Self::ConditionalCheckFailed { item } => (item.as_ref(), None),
            Self::TransactionCanceled(reasons) => (None, Some(reasons.as_slice())),
            _ => (None, None),
        };
        serde_json::to_vec(&Body {
            __type: self.qualified_type(),
            message: self.to_string(),
            item,
            reasons,
        })
        .unwrap_or_default()
    }

    /// A ValidationException saying "One or more parameter values were invalid: …".
    pub(crate) fn invalid(detail: impl std::fmt::Display) -> Self {
        Self::Validation(format!(
            "One or more parameter values were invalid: {detail}"
        ))
    }

    /// The not-found error of item operations.
    pub(crate) fn not_found() -> Self {
        Self::ResourceNotFound("Requested resource not found".into())
    }
}

impl From<StorageError> for DdbError {
    fn from(err: StorageError) -> Self {
        tracing::error!(error = %err, "dynamodb storage failure");
        Self::InternalServerError(format!("Internal server error: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_dynamodb_shape() {
        let body = DdbError::ConditionalCheckFailed { item: None }.body();
        assert_eq!(
            body,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#
        );
        let body = DdbError::Validation("bad".into()).body();
        assert_eq!(
            body,
            br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}"#
        );
        let canceled = DdbError::TransactionCanceled(vec![
            CancellationReason {
                code: "None".into(),
                message: None,
                item: None,
            },
            CancellationReason {
                code: "ConditionalCheckFailed".into(),
                message: Some("The conditional request failed".into()),
                item: None,
            },
        ]);
        assert_eq!(
            String::from_utf8(canceled.body()).unwrap(),
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]","CancellationReasons":[{"Code":"None"},{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"}]}"#
        );
        assert_eq!(DdbError::InternalServerError(String::new()).status(), 500);
    }
}

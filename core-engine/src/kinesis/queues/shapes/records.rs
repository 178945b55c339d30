//! The request and response shapes of the record operations: the receives, and the
//! acknowledge, visibility and restore operations on receipt handles.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::protocol::json::{Base64Out, Timestamp};

use super::super::super::validate::Violations;
use super::{MAX_VISIBILITY_S, queue_arn_member};

/// The request of ReceiveQueueRecords and ReceiveDeadLetterQueueRecords.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReceiveInput {
    #[serde(rename = "QueueARN")]
    pub(crate) queue_arn: Option<String>,
    pub(crate) limit: Option<i64>,
    pub(crate) wait_time_seconds: Option<i64>,
    pub(crate) visibility_timeout_seconds: Option<i64>,
}

impl ReceiveInput {
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        let mut v = Violations::default();
        queue_arn_member(&mut v, self.queue_arn.as_deref());
        if let Some(limit) = self.limit {
            v.range(limit, "limit", 1, 10);
        }
        if let Some(wait) = self.wait_time_seconds {
            v.range(wait, "waitTimeSeconds", 1, 20);
        }
        if let Some(seconds) = self.visibility_timeout_seconds {
            v.range(seconds, "visibilityTimeoutSeconds", 0, MAX_VISIBILITY_S);
        }
        data_plane(v)
    }
}

/// A record as a queue delivers it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueRecord<'a> {
    pub(crate) receipt_handle: String,
    pub(crate) record_id: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) partition_key: &'a str,
    pub(crate) data: Base64Out<'a>,
    pub(crate) approximate_arrival_timestamp: Timestamp,
    pub(crate) first_receive_timestamp: Timestamp,
    pub(crate) receive_count: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReceiveOutput<'a> {
    pub(crate) queue_records: Vec<QueueRecord<'a>>,
}

/// One entry of the acknowledge, visibility and restore operations.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EntryIn {
    pub(crate) receipt_handle: Option<String>,
    pub(crate) visibility_timeout_seconds: Option<i64>,
}

/// The request of the acknowledge, visibility and restore operations.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EntriesInput {
    #[serde(rename = "QueueARN")]
    pub(crate) queue_arn: Option<String>,
    pub(crate) entries: Option<Vec<EntryIn>>,
}

impl EntriesInput {
    /// Checks the request; `with_visibility` for the visibility operations, whose entries need
    /// a timeout.
    pub(crate) fn check(&self, with_visibility: bool) -> Result<(), ApiError> {
        let mut v = Violations::default();
        queue_arn_member(&mut v, self.queue_arn.as_deref());
        v.require(&self.entries, "entries");
        if let Some(entries) = &self.entries {
            v.check(
                !entries.is_empty(),
                "[]",
                "entries",
                "have length greater than or equal to 1",
            );
            v.check(
                entries.len() <= 10,
                entries.len(),
                "entries",
                "have length less than or equal to 10",
            );
            for (i, entry) in entries.iter().enumerate() {
                let at = format!("entries.{}.member", i + 1);
                v.require(&entry.receipt_handle, &format!("{at}.receiptHandle"));
                if let Some(handle) = &entry.receipt_handle {
                    v.length(handle, &format!("{at}.receiptHandle"), 1, 1024);
                }
                if with_visibility {
                    let path = format!("{at}.visibilityTimeoutSeconds");
                    v.require(&entry.visibility_timeout_seconds, &path);
                    if let Some(seconds) = entry.visibility_timeout_seconds {
                        v.range(seconds, &path, 0, MAX_VISIBILITY_S);
                    }
                }
            }
        }
        data_plane(v)
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EntryResult {
    pub(crate) receipt_handle: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EntryError {
    pub(crate) receipt_handle: String,
    pub(crate) error_code: &'static str,
    pub(crate) error_message: String,
}

/// The output of the acknowledge, visibility and restore operations.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EntriesOutput {
    pub(crate) successful: Vec<EntryResult>,
    pub(crate) failed: Vec<EntryError>,
}

/// The record operations list no ValidationException in the model: their constraint
/// violations are InvalidArgumentExceptions, with the same wording.
fn data_plane(v: Violations) -> Result<(), ApiError> {
    v.finish()
        .map_err(|e| ApiError::InvalidArgument(e.to_string()))
}

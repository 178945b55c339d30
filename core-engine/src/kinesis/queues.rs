//! Queues: CreateQueue, DescribeQueue, ListQueues, UpdateQueue and DeleteQueue
//! ([`manage`]), ReceiveQueueRecords and the acknowledge, visibility and dead-letter operations
//! ([`records`]).
//!
//! A queue delivers the records of one on-demand stream to queue consumers: each receive
//! returns up to 10 records with receipt handles and keeps them in flight (invisible) for the
//! visibility timeout; a record not acknowledged in time is delivered again; one received
//! MaxReceiveCount times becomes a dead-letter record, received, acknowledged and restored
//! through the dead-letter operations. Queue status changes (CREATING, UPDATING → ACTIVE) take
//! the stream creation delay of the engine (zero by default); DeleteQueue removes the queue at
//! once.
//!
//! Durability (durable engine): each queue is a JSON snapshot,
//! `<data-dir>/queues/<queue-id>.json`, and a journal of the changes since,
//! `<queue-id>.journal`, one CRC-framed entry per change holding just what changed, synced
//! before the change is answered or visible, and compacted into a new snapshot once it outgrows
//! a multiple of the snapshot (the layout and the crash rules are in `store`). A receive is
//! saved before its records are returned, so after a crash a record comes back no earlier than
//! its visibility timeout allows, never lost; an acknowledgement is saved before it is
//! confirmed.

mod handle;
mod journal;
mod manage;
mod records;
mod shapes;
mod state;
mod store;
mod tags;

#[cfg(test)]
mod crash_tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::storage::StorageError;

use super::Kinesis;
use shapes::{QueueAttributes, StartingPosition};
use state::DeliveryState;

/// The queues of the account and where a durable engine keeps them.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    store: std::sync::OnceLock<store::QueueStore>,
    /// By queue ARN.
    by_arn: Mutex<BTreeMap<String, Arc<Queue>>>,
}

/// What never changes about a queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct QueueDef {
    id: String,
    name: String,
    arn: String,
    stream_name: String,
    stream_arn: String,
    stream_created_ms: i64,
    created_ms: i64,
}

/// What changes: settings and delivery state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct QueueInner {
    /// The starting position as configured, with the effective time in `timestamp`.
    start: StartingPosition,
    attributes: QueueAttributes,
    tags: BTreeMap<String, String>,
    updated_ms: Option<i64>,
    delivery: DeliveryState,
    /// Set (never saved) once DeleteQueue has removed the queue, so no later change saves it
    /// again.
    #[serde(skip)]
    deleted: bool,
}

/// One queue.
#[derive(Debug)]
pub(crate) struct Queue {
    def: QueueDef,
    inner: Mutex<QueueInner>,
}

/// A queue's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QueueStatus {
    Creating,
    Active,
    Updating,
}

impl QueueStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Active => "ACTIVE",
            Self::Updating => "UPDATING",
        }
    }
}

impl Kinesis {
    /// Sets where a durable engine keeps queues (`None`: in memory only) and restores the
    /// queues saved there.
    pub(crate) fn open_queues(&self, dir: Option<PathBuf>) -> Result<(), StorageError> {
        self.open_queue_store(store::QueueStore::new(dir))
    }

    fn open_queue_store(&self, store: store::QueueStore) -> Result<(), StorageError> {
        let restored = store.load()?;
        let mut by_arn = self.queues.by_arn.lock();
        for (def, inner) in restored {
            by_arn.insert(
                def.arn.clone(),
                Arc::new(Queue {
                    def,
                    inner: Mutex::new(inner),
                }),
            );
        }
        if !by_arn.is_empty() {
            tracing::info!(queues = by_arn.len(), "restored queues");
        }
        let _ = self.queues.store.set(store);
        Ok(())
    }

    fn queue_store(&self) -> &store::QueueStore {
        self.queues
            .store
            .get_or_init(|| store::QueueStore::new(None))
    }

    /// Whether a queue delivers from the stream (which then cannot be deleted or made
    /// provisioned).
    pub(crate) fn stream_has_queues(&self, stream_name: &str) -> bool {
        self.queues
            .by_arn
            .lock()
            .values()
            .any(|q| q.def.stream_name == stream_name)
    }

    /// How many queues deliver from the stream (they count as registered consumers).
    pub(crate) fn queues_on(&self, stream_name: &str) -> usize {
        self.queues
            .by_arn
            .lock()
            .values()
            .filter(|q| q.def.stream_name == stream_name)
            .count()
    }

    /// The queue an ARN names (the ARN's shape already checked).
    fn queue(&self, arn: &str) -> Result<Arc<Queue>, ApiError> {
        self.queues
            .by_arn
            .lock()
            .get(arn)
            .cloned()
            .ok_or_else(|| queue_not_found(arn))
    }

    fn queue_status(&self, def: &QueueDef, inner: &QueueInner) -> QueueStatus {
        let now = self.now_ms();
        let delay = self.config.create_delay_ms;
        if now < def.created_ms + delay {
            QueueStatus::Creating
        } else if inner.updated_ms.is_some_and(|at| now < at + delay) {
            QueueStatus::Updating
        } else {
            QueueStatus::Active
        }
    }

    /// Runs `change` on a queue's state and saves the result, if it changed anything, before
    /// anyone sees it; on a failed save the queue keeps its state before the change.
    fn change_queue<T>(
        &self,
        queue: &Queue,
        change: impl FnOnce(&mut QueueInner) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut inner = queue.inner.lock();
        if inner.deleted {
            return Err(queue_not_found(&queue.def.arn));
        }
        let before = inner.clone();
        let value = change(&mut inner)?;
        if *inner == before {
            return Ok(value);
        }
        if let Err(error) = self.queue_store().record(&queue.def, &before, &inner) {
            *inner = before;
            return Err(error.into());
        }
        Ok(value)
    }
}

fn queue_not_found(arn: &str) -> ApiError {
    ApiError::ResourceNotFound(format!("Queue {arn} not found."))
}

/// Runs the queue operation `operation` (one whose name has "Queue" in it) on `body`.
pub(super) async fn dispatch(
    kinesis: &Kinesis,
    operation: &str,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    use super::json::{decode, encode};
    use records::EntryOp;
    let settle = |op, dead_letter| -> Result<Vec<u8>, ApiError> {
        Ok(encode(&kinesis.settle_queue_records(
            decode(body)?,
            op,
            dead_letter,
        )?))
    };
    match operation {
        "CreateQueue" => Ok(encode(&kinesis.create_queue(decode(body)?)?)),
        "DescribeQueue" => Ok(encode(&kinesis.describe_queue(decode(body)?)?)),
        "ListQueues" => Ok(encode(&kinesis.list_queues(decode(body)?)?)),
        "UpdateQueue" => Ok(encode(&kinesis.update_queue(decode(body)?)?)),
        "DeleteQueue" => kinesis.delete_queue(decode(body)?).map(|()| Vec::new()),
        "ReceiveQueueRecords" => kinesis.receive_queue_records(decode(body)?, false).await,
        "ReceiveDeadLetterQueueRecords" => kinesis.receive_queue_records(decode(body)?, true).await,
        "AcknowledgeQueueRecords" => settle(EntryOp::Acknowledge, false),
        "AcknowledgeDeadLetterQueueRecords" => settle(EntryOp::Acknowledge, true),
        "UpdateQueueRecordsVisibility" => settle(EntryOp::Visibility, false),
        "UpdateDeadLetterQueueRecordsVisibility" => settle(EntryOp::Visibility, true),
        "RestoreDeadLetterQueueRecords" => settle(EntryOp::Restore, true),
        other => Err(ApiError::UnknownOperation(format!(
            "Operation {other} is not supported by this engine"
        ))),
    }
}

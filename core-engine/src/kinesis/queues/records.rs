//! ReceiveQueueRecords, AcknowledgeQueueRecords, UpdateQueueRecordsVisibility, and their
//! dead-letter counterparts with RestoreDeadLetterQueueRecords.

use std::time::Duration;

use crate::error::ApiError;
use crate::model::shard::ReadLimits;
use crate::protocol::json::{Base64Out, Timestamp};
use crate::storage::StoredRecord;

use super::super::Kinesis;
use super::handle::ReceiptHandle;
use super::shapes::{
    EntriesInput, EntriesOutput, EntryError, EntryResult, QueueRecord, ReceiveInput, ReceiveOutput,
};
use super::state::{EntryFault, RecordKey, Settle};
use super::{Queue, QueueStatus};

/// Records per receive when Limit is left out, and WaitTimeSeconds likewise (the model's).
const DEFAULT_LIMIT: i64 = 10;
const DEFAULT_WAIT_S: i64 = 9;
/// How often a waiting receive looks again.
const POLL: Duration = Duration::from_millis(50);

/// A record received, with its delivery.
struct Received {
    handle: String,
    key: RecordKey,
    record: StoredRecord,
    first_receive_ms: i64,
    receive_count: u32,
}

/// The operations on receipt handles.
#[derive(Clone, Copy, Debug)]
pub(crate) enum EntryOp {
    Acknowledge,
    Visibility,
    Restore,
}

impl Kinesis {
    /// ReceiveQueueRecords (`dead_letter` false) or ReceiveDeadLetterQueueRecords (true): waits
    /// up to WaitTimeSeconds for a visible record.
    pub(crate) async fn receive_queue_records(
        &self,
        input: ReceiveInput,
        dead_letter: bool,
    ) -> Result<Vec<u8>, ApiError> {
        input.check()?;
        let queue = self.queue_in_account(input.queue_arn.as_deref().unwrap_or_default())?;
        let limit = usize::try_from(input.limit.unwrap_or(DEFAULT_LIMIT)).unwrap_or(10);
        let wait = input.wait_time_seconds.unwrap_or(DEFAULT_WAIT_S);
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(u64::try_from(wait).unwrap_or(0));
        loop {
            let received =
                self.receive_now(&queue, limit, input.visibility_timeout_seconds, dead_letter)?;
            if !received.is_empty() || tokio::time::Instant::now() >= deadline {
                let queue_records = received
                    .iter()
                    .map(|r| QueueRecord {
                        receipt_handle: r.handle.clone(),
                        record_id: r.key.record_id(),
                        partition_key: &r.record.partition_key,
                        data: Base64Out(&r.record.data),
                        approximate_arrival_timestamp: Timestamp(r.record.arrival_ms),
                        first_receive_timestamp: Timestamp(r.first_receive_ms),
                        receive_count: r.receive_count,
                    })
                    .collect();
                return Ok(crate::protocol::json::encode(&ReceiveOutput {
                    queue_records,
                }));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One attempt to receive: the visible tracked records of the path first, then (normal path)
    /// records new in the stream. Saved before returned.
    fn receive_now(
        &self,
        queue: &Queue,
        limit: usize,
        visibility_s: Option<i64>,
        dead_letter: bool,
    ) -> Result<Vec<Received>, ApiError> {
        let Some(stream) = self
            .registry
            .get(&queue.def.stream_name)
            .filter(|s| s.created_ms == queue.def.stream_created_ms)
        else {
            return Ok(Vec::new());
        };
        let now = self.now_ms();
        let durable_lsn = self.durable_lsn();
        self.change_queue(queue, |inner| {
            // A queue delivers while ACTIVE (and UPDATING, which changes only attributes).
            if self.queue_status(&queue.def, inner) == QueueStatus::Creating {
                return Ok(Vec::new());
            }
            let visibility_ms =
                visibility_s.map_or(inner.attributes.visibility_ms(), |s| s.saturating_mul(1000));
            let max_receives = inner.attributes.max_receives();
            let delivery = &mut inner.delivery;
            delivery.turn_dead_letters(now, max_receives);
            let mut picked: Vec<(RecordKey, StoredRecord)> = Vec::new();
            {
                let state = stream.state.lock();
                let one = ReadLimits {
                    max_records: 1,
                    max_bytes: usize::MAX,
                    durable_lsn,
                };
                for key in delivery.visible(now, dead_letter) {
                    if picked.len() >= limit {
                        break;
                    }
                    let record = state
                        .shard(key.shard)
                        .and_then(|s| s.read(key.seq, one, now).records.into_iter().next())
                        .filter(|r| r.sequence_number == key.seq);
                    match record {
                        Some(record) => picked.push((key, record)),
                        // Past the stream's retention: the queue no longer delivers it.
                        None => delivery.forget(key),
                    }
                }
                if !dead_letter {
                    for shard in &state.shards {
                        let room = limit - picked.len();
                        if room == 0 {
                            break;
                        }
                        let limits = ReadLimits {
                            max_records: room,
                            max_bytes: usize::MAX,
                            durable_lsn,
                        };
                        let read = shard.read(delivery.cursor(shard.index), limits, now);
                        let seqs: Vec<u128> =
                            read.records.iter().map(|r| r.sequence_number).collect();
                        delivery.pulled(shard.index, &seqs, read.next_position, now);
                        picked.extend(read.records.into_iter().map(|r| {
                            let key = RecordKey {
                                shard: shard.index,
                                seq: r.sequence_number,
                            };
                            (key, r)
                        }));
                    }
                }
            }
            Ok(picked
                .into_iter()
                .map(|(key, record)| {
                    let tracked = delivery.receive(key, now, visibility_ms);
                    let handle = ReceiptHandle {
                        queue_id: queue.def.id.clone(),
                        dead_letter,
                        key,
                        delivery: tracked.delivery,
                    };
                    Received {
                        handle: handle.encode(),
                        key,
                        record,
                        first_receive_ms: tracked.first_receive_ms.unwrap_or(now),
                        receive_count: tracked.receive_count,
                    }
                })
                .collect())
        })
    }

    /// AcknowledgeQueueRecords, UpdateQueueRecordsVisibility and their dead-letter
    /// counterparts, and RestoreDeadLetterQueueRecords: each entry succeeds or fails on its
    /// own; the successes are saved before they are confirmed.
    pub(crate) fn settle_queue_records(
        &self,
        input: EntriesInput,
        op: EntryOp,
        dead_letter: bool,
    ) -> Result<EntriesOutput, ApiError> {
        input.check(matches!(op, EntryOp::Visibility))?;
        let queue = self.queue_in_account(input.queue_arn.as_deref().unwrap_or_default())?;
        let now = self.now_ms();
        let entries = input.entries.unwrap_or_default();
        self.change_queue(&queue, |inner| {
            inner
                .delivery
                .turn_dead_letters(now, inner.attributes.max_receives());
            let mut out = EntriesOutput::default();
            for entry in entries {
                let text = entry.receipt_handle.unwrap_or_default();
                let settle = match op {
                    EntryOp::Acknowledge => Settle::Acknowledge,
                    EntryOp::Restore => Settle::Restore,
                    EntryOp::Visibility => Settle::Visibility(
                        entry
                            .visibility_timeout_seconds
                            .unwrap_or(0)
                            .saturating_mul(1000),
                    ),
                };
                let result = match ReceiptHandle::decode(&text) {
                    // A handle of the other path is refused before it changes anything.
                    Some(h) if h.queue_id == queue.def.id && h.dead_letter != dead_letter => {
                        Err(fault_error(EntryFault::WrongPath, dead_letter))
                    }
                    Some(h) if h.queue_id == queue.def.id => inner
                        .delivery
                        .settle(h.key, h.delivery, h.dead_letter, settle, now)
                        .map_err(|fault| fault_error(fault, dead_letter)),
                    Some(_) => Err((
                        "InvalidArgumentException",
                        "The receipt handle was issued by another queue.".to_owned(),
                    )),
                    None => Err((
                        "InvalidArgumentException",
                        "The receipt handle is not valid.".to_owned(),
                    )),
                };
                match result {
                    Ok(()) => out.successful.push(EntryResult {
                        receipt_handle: text,
                    }),
                    Err((error_code, error_message)) => out.failed.push(EntryError {
                        receipt_handle: text,
                        error_code,
                        error_message,
                    }),
                }
            }
            Ok(out)
        })
    }
}

/// The error code and message of an entry that failed.
fn fault_error(fault: EntryFault, dead_letter: bool) -> (&'static str, String) {
    match fault {
        EntryFault::Gone => (
            "ResourceNotFoundException",
            "The record is no longer in the queue: it was acknowledged or is past the stream's retention.".into(),
        ),
        EntryFault::Stale => (
            "InvalidArgumentException",
            "The receipt handle has expired: the record was received again since.".into(),
        ),
        EntryFault::WrongPath if dead_letter => (
            "InvalidArgumentException",
            "The record is not a dead-letter record, or the receipt handle was not issued by ReceiveDeadLetterQueueRecords.".into(),
        ),
        EntryFault::WrongPath => (
            "InvalidArgumentException",
            "The record is a dead-letter record, or the receipt handle was issued by ReceiveDeadLetterQueueRecords.".into(),
        ),
    }
}

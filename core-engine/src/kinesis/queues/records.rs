//! ReceiveQueueRecords, AcknowledgeQueueRecords, UpdateQueueRecordsVisibility, and their
//! dead-letter counterparts with RestoreDeadLetterQueueRecords.

use std::time::Duration;

use crate::error::ApiError;
use crate::model::records::{PlannedRead, finish_read};
use crate::model::shard::{ReadFailure, ReadLimits};
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

/// A receive planned under the queue's and the stream's locks (see
/// [`Kinesis::receive_now`]), to read without them.
struct ReceivePlan {
    /// The visible tracked records, each with the read of it (`None`: its shard is gone).
    tracked: Vec<(RecordKey, Option<PlannedRead>)>,
    /// Per shard, its cursor when planned and the read of its new records.
    new: Vec<(u32, u128, PlannedRead)>,
}

/// What a planned receive read.
enum Read {
    /// A tracked record; `None` when the stream no longer keeps it.
    Tracked(RecordKey, Option<StoredRecord>),
    /// Records new in `shard`, pulled from `cursor`; `next` is where the next pull starts.
    New {
        shard: u32,
        cursor: u128,
        records: Vec<StoredRecord>,
        next: u128,
    },
}

impl ReceivePlan {
    /// Whether it plans no record (so taking it would change nothing).
    fn is_empty(&self) -> bool {
        self.tracked.is_empty() && self.new.iter().all(|(_, _, r)| r.is_empty())
    }

    fn reads_log(&self) -> bool {
        let tracked = self.tracked.iter().filter_map(|(_, r)| r.as_ref());
        tracked
            .chain(self.new.iter().map(|(_, _, r)| r))
            .any(PlannedRead::reads_log)
    }

    /// Reads the records (those not cached back from the log), in order, up to the first
    /// that fails to read back: the reads before it, and the failure with its shard.
    fn finish(self) -> (Vec<Read>, Option<(u32, ReadFailure)>) {
        let mut reads = Vec::new();
        for (key, read) in self.tracked {
            let mut batch = read.map(PlannedRead::finish).unwrap_or_default();
            if let Some(failure) = batch.failure.take()
                && failure.seq == key.seq
            {
                return (reads, Some((key.shard, failure)));
            }
            // Not the record (gone from the shard's index) or left out (its segment released
            // meanwhile): past the stream's retention.
            let record = batch
                .records
                .into_iter()
                .next()
                .filter(|r| r.sequence_number == key.seq);
            reads.push(Read::Tracked(key, record));
        }
        for (shard, cursor, read) in self.new {
            let mut batch = read.finish();
            let failure = batch.failure.take();
            // On a failure `next` is the failed record: the cursor stops before it.
            reads.push(Read::New {
                shard,
                cursor,
                records: batch.records,
                next: batch.next_position,
            });
            if let Some(failure) = failure {
                return (reads, Some((shard, failure)));
            }
        }
        (reads, None)
    }
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
            let received = self
                .receive_now(&queue, limit, input.visibility_timeout_seconds, dead_letter)
                .await?;
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
    ///
    /// Records no longer cached are read back from the log without the stream's lock (a
    /// receive holds up none of the stream's puts or reads) and without the queue's: the
    /// receive is planned under both, read, then taken under the queue's lock again, keeping
    /// only what no other receive or settlement changed meanwhile.
    async fn receive_now(
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
        let plan = self.change_queue(queue, |inner| {
            // A queue delivers while ACTIVE (and UPDATING, which changes only attributes).
            if self.queue_status(&queue.def, inner) == QueueStatus::Creating {
                return Ok(None);
            }
            let max_receives = inner.attributes.max_receives();
            let delivery = &mut inner.delivery;
            delivery.turn_dead_letters(now, max_receives);
            let state = stream.state.lock();
            let one = ReadLimits {
                max_records: 1,
                max_bytes: usize::MAX,
                durable_lsn,
            };
            let tracked: Vec<_> = delivery
                .visible(now, dead_letter)
                .into_iter()
                .take(limit)
                .map(|key| {
                    let read = state
                        .shard(key.shard)
                        .map(|s| s.plan_read(key.seq, one, now));
                    (key, read)
                })
                .collect();
            let mut new = Vec::new();
            if !dead_letter {
                let mut room = limit - tracked.len();
                for shard in &state.shards {
                    if room == 0 {
                        break;
                    }
                    let limits = ReadLimits {
                        max_records: room,
                        max_bytes: usize::MAX,
                        durable_lsn,
                    };
                    let cursor = delivery.cursor(shard.index);
                    let read = shard.plan_read(cursor, limits, now);
                    room -= read.len();
                    new.push((shard.index, cursor, read));
                }
            }
            Ok(Some(ReceivePlan { tracked, new }))
        })?;
        // Nothing to receive (a waiting receive's usual poll): nothing to take either.
        let Some(plan) = plan.filter(|p| !p.is_empty()) else {
            return Ok(Vec::new());
        };
        // Off the async workers when it reads the log, as GetRecords does.
        let (reads, failure) = finish_read(plan.reads_log(), move || plan.finish()).await?;
        let received = self.change_queue(queue, |inner| {
            let visibility_ms =
                visibility_s.map_or(inner.attributes.visibility_ms(), |s| s.saturating_mul(1000));
            let max_receives = inner.attributes.max_receives();
            let delivery = &mut inner.delivery;
            delivery.turn_dead_letters(now, max_receives);
            let mut picked: Vec<(RecordKey, StoredRecord)> = Vec::new();
            for read in reads {
                match read {
                    // Past the stream's retention: the queue no longer delivers it.
                    Read::Tracked(key, None) => delivery.forget(key),
                    Read::Tracked(key, Some(record)) => {
                        // Unless acknowledged, received or turned meanwhile.
                        if delivery.is_visible(key, now, dead_letter) {
                            picked.push((key, record));
                        }
                    }
                    Read::New {
                        shard,
                        cursor,
                        records,
                        next,
                    } => {
                        // Another receive pulled from this cursor meanwhile: it has these.
                        if delivery.cursor(shard) != cursor {
                            continue;
                        }
                        let seqs: Vec<u128> = records.iter().map(|r| r.sequence_number).collect();
                        delivery.pulled(shard, &seqs, next, now);
                        picked.extend(records.into_iter().map(|r| {
                            let key = RecordKey {
                                shard,
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
                .collect::<Vec<_>>())
        })?;
        match failure {
            // As GetRecords: the records before the failure, or, with none, InternalFailure
            // (retried by SDKs) until the record reads back.
            Some((shard, failure)) if received.is_empty() => Err(failure.into_api_error(shard)),
            _ => Ok(received),
        }
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

//! The records a shard retains, packed compactly, and the memory they may use.
//!
//! A shard's records live in blocks of up to [`BLOCK_BYTES`] of record bodies (partition key
//! then data, back to back in one buffer) with a 24-byte header per record ([`Meta`]: the
//! sequence number, arrival time and log position as deltas from the block's first record, the
//! body's end and the key's length). So a record costs its key and data plus 24 bytes, instead of
//! a `String`, a `Bytes` and a struct of its own.
//!
//! All shards of an engine share one [`RecordBacking`], which counts the bytes they hold and
//! decides what happens as they grow:
//! - In memory, bodies stay until retention drops them; with a cap
//!   ([`RecordBacking::memory`]), puts are refused while the records held exceed it (see
//!   [`RecordBacking::check_cap`]).
//! - Durable, the headers stay (they are the shard's index into the log: a record's LSN names
//!   its frame) but the bodies are a cache: every block's body joins a FIFO when it is made, and
//!   the oldest bodies are dropped once the bodies held exceed the cache size. A read that meets
//!   a dropped body reads the record's frame back from its segment
//!   ([`Storage::read_batch`](crate::storage::Storage::read_batch)), opening it with the stream's data key if it was sealed.
//!   GetRecords, SubscribeToShard, queue receives and channel delivery do so without the stream's
//!   lock: they plan the read under the lock ([`ShardRecords::plan`]) and finish it after
//!   ([`PlannedRead::finish`]).

mod backing;
mod block;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::storage::{Lsn, ShardRecord, StorageError, StoredRecord};

use super::sequence::SequenceNumber;
use super::shard::{ReadBatch, ReadFailure, ReadLimits, shard_id};
pub(crate) use backing::RecordBacking;
use backing::{Body, BodyState, UNATTACHED, Usage};
pub(crate) use block::{BLOCK_BYTES, ENTRY_BYTES, Entry, META_BYTES};
use block::{Block, FIRST_BODY_BYTES, Meta, View};

/// The records of one shard; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct ShardRecords {
    blocks: VecDeque<Block>,
    /// Records of the first block already trimmed (its memory goes with the whole block).
    skip: usize,
    len: usize,
    backing: Arc<RecordBacking>,
}

impl Default for ShardRecords {
    fn default() -> Self {
        Self {
            blocks: VecDeque::new(),
            skip: 0,
            len: 0,
            backing: UNATTACHED.clone(),
        }
    }
}

/// The last batch read back from the log during one read, and where to look in it next.
#[derive(Debug)]
struct ReadBack {
    lsn: Lsn,
    records: Vec<ShardRecord>,
    next: usize,
}

/// Where a record is: block and record within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    block: usize,
    record: usize,
}

impl ShardRecords {
    /// Makes the records count against `backing`; only while there are none.
    pub(crate) fn attach(&mut self, backing: &Arc<RecordBacking>) {
        if self.blocks.is_empty() {
            self.backing = backing.clone();
        }
    }

    /// The backing these records count against.
    pub(crate) fn backing(&self) -> &Arc<RecordBacking> {
        &self.backing
    }

    /// Records retained.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no record is retained.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sequence number of the newest record.
    pub(crate) fn last_seq(&self) -> Option<u128> {
        self.blocks.back().map(|b| b.last().seq)
    }

    /// Adds a record after every other (with its log position; 0 in memory).
    pub(crate) fn push(&mut self, record: &StoredRecord, lsn: Lsn) {
        let entry = Entry::of(record, lsn);
        self.push_entry(&entry, false);
        let Some(block) = self.blocks.back_mut() else {
            return;
        };
        let usage = &block.body.usage;
        let mut state = block.body.state.lock();
        if let BodyState::Open(buf) = &mut *state {
            let before = buf.capacity();
            let needed = buf.len() + entry.key_len + entry.data_len;
            if needed > before {
                let grown = (before * 2).clamp(needed, needed.max(BLOCK_BYTES));
                buf.reserve_exact(grown - buf.len());
            }
            buf.extend_from_slice(record.partition_key.as_bytes());
            buf.extend_from_slice(&record.data);
            Usage::add(&usage.bodies, before, buf.capacity());
        }
        drop(state);
        self.backing.enforce_cache();
    }

    /// Adds the header of a record whose body is only in the log (restored from a checkpoint).
    pub(crate) fn push_indexed(&mut self, entry: &Entry) {
        self.push_entry(entry, true);
    }

    /// Adds `entry`'s header, starting a block if the last one does not take it.
    fn push_entry(&mut self, entry: &Entry, indexed: bool) {
        let meta = self.blocks.back().and_then(|b| b.meta_for(entry, indexed));
        let meta = match meta {
            Some(meta) => meta,
            None => {
                // A cache's bodies all have one size and are never reallocated, so that the
                // space of evicted ones is reused whole (growing and shrinking them left the
                // heap fragmented, and resident memory well above the cache size).
                let cache = self.backing.durable.is_some();
                if let Some(last) = self.blocks.back_mut() {
                    last.seal(!cache);
                }
                let size = entry.key_len + entry.data_len;
                let body = match indexed {
                    true => Arc::new(Body {
                        state: Mutex::new(BodyState::Evicted),
                        usage: self.backing.usage.clone(),
                    }),
                    false if cache => self.backing.new_body(size.max(BLOCK_BYTES)),
                    false => self.backing.new_body(size.max(FIRST_BODY_BYTES)),
                };
                let block = Block {
                    first_seq: entry.seq,
                    first_arrival: entry.arrival_ms,
                    base_lsn: entry.lsn,
                    metas: Vec::new(),
                    body,
                };
                let meta = block.meta_for(entry, indexed);
                self.blocks.push_back(block);
                // The first record of a block always fits (all deltas are 0).
                meta.unwrap_or(Meta {
                    dt: 0,
                    dc: 0,
                    arrival: 0,
                    lsn: 0,
                    end: size as u32,
                    key_len: entry.key_len as u16,
                    encrypted: entry.encrypted,
                })
            }
        };
        let Some(block) = self.blocks.back_mut() else {
            return;
        };
        let before = block.metas.capacity();
        block.metas.push(meta);
        Usage::add(
            &block.body.usage.index,
            before * META_BYTES,
            block.metas.capacity() * META_BYTES,
        );
        self.len += 1;
    }

    /// Appends the entries of the records whose LSN is at most `upto`, in checkpoint form,
    /// after their count; returns how many.
    pub(crate) fn encode_index(&self, upto: Lsn, out: &mut Vec<u8>) -> u64 {
        let count_at = out.len();
        out.extend_from_slice(&0u64.to_le_bytes());
        let mut count = 0u64;
        let mut at = self.first();
        while let Some(v) = self.view(at) {
            if v.lsn > upto {
                break;
            }
            Entry {
                seq: v.seq,
                arrival_ms: v.arrival_ms,
                lsn: v.lsn,
                key_len: v.key_len,
                data_len: v.end - v.start - v.key_len,
                encrypted: v.encrypted,
            }
            .encode(out);
            count += 1;
            at = self.next(at);
        }
        out[count_at..count_at + 8].copy_from_slice(&count.to_le_bytes());
        count
    }

    /// Drops records that arrived before `cutoff_ms`; returns how many.
    pub(crate) fn trim(&mut self, cutoff_ms: i64) -> usize {
        let mut dropped = 0;
        // Arrival times never decrease within a shard, so expired records form a prefix.
        while let Some(front) = self.blocks.front() {
            if front.last().arrival_ms >= cutoff_ms {
                let expired = (self.skip..front.metas.len())
                    .find(|&i| front.view(i).arrival_ms >= cutoff_ms)
                    .unwrap_or(front.metas.len());
                dropped += expired - self.skip;
                self.skip = expired;
                break;
            }
            dropped += front.metas.len() - self.skip;
            self.skip = 0;
            self.blocks.pop_front();
        }
        self.len -= dropped;
        dropped
    }

    fn first(&self) -> Cursor {
        Cursor {
            block: 0,
            record: self.skip,
        }
    }

    fn view(&self, at: Cursor) -> Option<View> {
        let block = self.blocks.get(at.block)?;
        (at.record < block.metas.len()).then(|| block.view(at.record))
    }

    fn next(&self, at: Cursor) -> Cursor {
        match self.blocks.get(at.block) {
            Some(b) if at.record + 1 < b.metas.len() => Cursor {
                record: at.record + 1,
                ..at
            },
            _ => Cursor {
                block: at.block + 1,
                record: 0,
            },
        }
    }

    /// The first record for which `before` is false (records are ordered by it).
    fn seek(&self, before: impl Fn(&View) -> bool) -> Cursor {
        let block = self.blocks.partition_point(|b| before(&b.last()));
        let Some(b) = self.blocks.get(block) else {
            return Cursor { block, record: 0 };
        };
        let from = if block == 0 { self.skip } else { 0 };
        let mut lo = from;
        let mut hi = b.metas.len();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if before(&b.view(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Cursor { block, record: lo }
    }

    /// The sequence number of the first record that arrived at or after `timestamp_ms`.
    pub(crate) fn seq_at_timestamp(&self, timestamp_ms: i64) -> Option<u128> {
        self.view(self.seek(|v| v.arrival_ms < timestamp_ms))
            .map(|v| v.seq)
    }

    /// The record at `at` if its body is cached.
    fn cached(&self, at: Cursor, v: &View) -> Option<StoredRecord> {
        let make = |key: &[u8], data: Bytes| StoredRecord {
            sequence_number: v.seq,
            arrival_ms: v.arrival_ms,
            partition_key: String::from_utf8_lossy(key).into_owned(),
            data,
            encrypted: v.encrypted,
        };
        match &*self.blocks[at.block].body.state.lock() {
            BodyState::Open(buf) => {
                let key = &buf[v.start..v.start + v.key_len];
                let data = Bytes::copy_from_slice(&buf[v.start + v.key_len..v.end]);
                Some(make(key, data))
            }
            BodyState::Sealed(buf, _) => {
                let key = &buf[v.start..v.start + v.key_len];
                Some(make(key, buf.slice(v.start + v.key_len..v.end)))
            }
            BodyState::Evicted => None,
        }
    }

    /// Plans a read of the records at or after `position` (`closed` says whether the shard is
    /// closed): which records it returns, with those whose bodies are cached copied out and
    /// the log position of the others. Cheap, so done under the stream's lock; the log is
    /// read by [`PlannedRead::finish`], which needs no lock.
    pub(crate) fn plan(
        &self,
        position: u128,
        limits: ReadLimits,
        now_ms: i64,
        closed: bool,
    ) -> PlannedRead {
        let mut at = self.seek(|v| v.seq < position);
        if at.block == 0 && at.record < self.skip {
            at = self.first();
        }
        let mut batch = ReadBatch {
            next_position: position,
            ..ReadBatch::default()
        };
        let mut slots = Vec::new();
        let mut bytes = 0usize;
        let mut next_unread = None;
        while let Some(v) = self.view(at) {
            if v.lsn > limits.durable_lsn {
                break;
            }
            let size = v.end - v.start;
            let full = slots.len() >= limits.max_records
                || (!slots.is_empty() && bytes + size > limits.max_bytes);
            if full {
                next_unread = Some(v);
                break;
            }
            slots.push(match self.cached(at, &v) {
                Some(record) => Slot::Cached(record),
                None => Slot::InLog(InLog {
                    seq: v.seq,
                    arrival_ms: v.arrival_ms,
                    lsn: v.lsn,
                    encrypted: v.encrypted,
                }),
            });
            bytes += size;
            batch.next_position = v.seq + 1;
            at = self.next(at);
        }
        batch.millis_behind = next_unread.map_or(0, |v| (now_ms - v.arrival_ms).max(0));
        batch.at_shard_end = closed && next_unread.is_none() && self.view(at).is_none();
        PlannedRead {
            slots,
            backing: self.backing.clone(),
            batch,
            now_ms,
        }
    }

    /// Reads records at or after `position`; `closed` says whether the shard is closed.
    /// Reads the log in place: see [`ShardRecords::plan`] to read it without the lock.
    pub(crate) fn read(
        &self,
        position: u128,
        limits: ReadLimits,
        now_ms: i64,
        closed: bool,
    ) -> ReadBatch {
        self.plan(position, limits, now_ms, closed).finish()
    }
}

/// A read planned by [`ShardRecords::plan`], to finish with [`PlannedRead::finish`]. Owns
/// everything it needs (records copied out, log positions, the backing), so it outlives the
/// stream's lock and whatever retention or a deletion does meanwhile.
#[derive(Debug)]
pub(crate) struct PlannedRead {
    slots: Vec<Slot>,
    backing: Arc<RecordBacking>,
    /// The answer if every record reads back, but for its records.
    batch: ReadBatch,
    now_ms: i64,
}

/// One record of a planned read.
#[derive(Debug)]
enum Slot {
    Cached(StoredRecord),
    InLog(InLog),
}

/// A record whose body is only in the log: what its index entry says.
#[derive(Debug)]
struct InLog {
    seq: u128,
    arrival_ms: i64,
    lsn: Lsn,
    encrypted: bool,
}

/// Runs `finish` (a planned read's second half) on a blocking thread when it reads the log,
/// and inline when everything is cached: log I/O stays off the async workers without a thread
/// hop for hot reads. A panic on that thread is an InternalFailure.
pub(crate) async fn finish_read<T: Send + 'static>(
    reads_log: bool,
    finish: impl FnOnce() -> T + Send + 'static,
) -> Result<T, crate::error::ApiError> {
    if !reads_log {
        return Ok(finish());
    }
    tokio::task::spawn_blocking(finish).await.map_err(|e| {
        crate::error::ApiError::InternalFailure(format!("Internal service failure: {e}"))
    })
}

impl PlannedRead {
    /// Whether finishing reads the log (so it is better done off the async workers).
    pub(crate) fn reads_log(&self) -> bool {
        self.slots.iter().any(|s| matches!(s, Slot::InLog(_)))
    }

    /// Whether the answer ends the closed shard, if every record reads back.
    pub(crate) fn at_shard_end(&self) -> bool {
        self.batch.at_shard_end
    }

    /// The records planned (some may be left out by [`PlannedRead::finish`]).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no record is planned.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Where the next read starts, if every record reads back.
    pub(crate) fn next_position(&self) -> u128 {
        self.batch.next_position
    }

    /// Reads the records not cached back from the log (opening sealed batches) and gives the
    /// answer. A record whose segment retention has released meanwhile is past its retention
    /// period, so it is left out, as if the read had come after the trim. A record that fails
    /// to read back ends the answer before it (see [`ReadBatch::failure`]).
    pub(crate) fn finish(self) -> ReadBatch {
        let Self {
            slots,
            backing,
            mut batch,
            now_ms,
        } = self;
        batch.records.reserve_exact(slots.len());
        let mut memo = None;
        for slot in slots {
            let record = match slot {
                Slot::Cached(record) => record,
                Slot::InLog(entry) => match read_back(&backing, &entry, &mut memo) {
                    Ok(Some(record)) => record,
                    Ok(None) => continue,
                    Err(error) => {
                        // The reader gets what was read and tries again from here.
                        log_failure(entry.seq, entry.lsn, &error);
                        batch.next_position = entry.seq;
                        batch.millis_behind = (now_ms - entry.arrival_ms).max(0);
                        batch.at_shard_end = false;
                        batch.failure = Some(ReadFailure {
                            seq: entry.seq,
                            error,
                        });
                        break;
                    }
                },
            };
            batch.records.push(record);
        }
        batch
    }
}

/// The record `entry` read back from the log; `None` if the log no longer holds it (released
/// by retention). `memo` keeps the last batch read back, so a read meets each batch once.
fn read_back(
    backing: &RecordBacking,
    entry: &InLog,
    memo: &mut Option<ReadBack>,
) -> Result<Option<StoredRecord>, StorageError> {
    if memo.as_ref().is_none_or(|m| m.lsn != entry.lsn) {
        *memo = Some(ReadBack {
            lsn: entry.lsn,
            records: backing.load(entry.lsn)?,
            next: 0,
        });
    }
    let Some(memo) = memo.as_mut() else {
        return Ok(None);
    };
    // A shard's records are in order within a batch: look from after the last one found.
    let n = memo.records.len();
    let found = (0..n)
        .map(|k| (memo.next + k) % n)
        .find(|&i| memo.records[i].record.sequence_number == entry.seq);
    Ok(found.map(|i| {
        memo.next = i + 1;
        StoredRecord {
            encrypted: entry.encrypted,
            ..memo.records[i].record.clone()
        }
    }))
}

/// Logs a record that could not be read back from the log, naming its shard (from its
/// sequence number) and the batch (LSN) holding it.
fn log_failure(seq: u128, lsn: Lsn, error: &StorageError) {
    let shard = SequenceNumber::from_u128(seq).map(|s| shard_id(s.shard_index));
    tracing::error!(
        %error,
        shard = shard.as_deref().unwrap_or("?"),
        sequence_number = %seq,
        lsn,
        "reading a record back from the log failed"
    );
}

#[cfg(test)]
mod tests;

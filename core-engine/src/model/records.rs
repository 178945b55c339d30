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
//!   ([`Storage::read_batch`]), opening it with the stream's data key if it was sealed.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::storage::crypto::DataKey;
use crate::storage::{Lsn, ShardRecord, Storage, StorageError, StoredRecord, StreamId};

use super::sequence::SequenceNumber;
use super::shard::{ReadBatch, ReadLimits};

/// Bytes of record bodies after which a block takes no more records.
pub(crate) const BLOCK_BYTES: usize = 64 * 1024;
/// Records after which a block takes no more.
const BLOCK_RECORDS: usize = 4096;
/// Capacity of a new block's body buffer (it grows by doubling up to [`BLOCK_BYTES`]).
const FIRST_BODY_BYTES: usize = 1024;
/// The bit where a sequence number's time field starts (see `model::sequence`).
const TIME_SHIFT: u32 = 80;
/// Bytes of one record header.
pub(crate) const META_BYTES: usize = std::mem::size_of::<Meta>();

/// A record's header within its block.
#[derive(Clone, Copy, Debug)]
struct Meta {
    /// Sequence number time, ms after the block's first record's.
    dt: u32,
    /// Sequence number counter after the block's first record's.
    dc: u32,
    /// Arrival time relative to the block's first record's.
    arrival: i32,
    /// LSN after the block's first record's.
    lsn: u32,
    /// Offset just past the record's body in the block's buffer.
    end: u32,
    key_len: u16,
    encrypted: bool,
}

/// Bytes the records of an engine hold.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Record bodies (keys and data) held in memory.
    bodies: AtomicU64,
    /// Record headers (the index).
    index: AtomicU64,
}

impl Usage {
    fn add(counter: &AtomicU64, before: usize, after: usize) {
        if after >= before {
            counter.fetch_add((after - before) as u64, Ordering::Relaxed);
        } else {
            counter.fetch_sub((before - after) as u64, Ordering::Relaxed);
        }
    }
}

/// A block's buffer of record bodies.
#[derive(Debug)]
struct Body {
    state: Mutex<BodyState>,
    usage: Arc<Usage>,
}

#[derive(Debug)]
enum BodyState {
    /// Still taking records.
    Open(Vec<u8>),
    /// Full; reads share it without copying. With the bytes it holds (its capacity).
    Sealed(Bytes, usize),
    /// Dropped from the cache (durable mode) or with its block.
    Evicted,
}

impl BodyState {
    fn held(&self) -> usize {
        match self {
            Self::Open(v) => v.capacity(),
            Self::Sealed(_, held) => *held,
            Self::Evicted => 0,
        }
    }
}

impl Body {
    /// Drops the buffer; returns the bytes freed.
    fn evict(&self) -> usize {
        let mut state = self.state.lock();
        let held = state.held();
        *state = BodyState::Evicted;
        Usage::add(&self.usage.bodies, held, 0);
        held
    }
}

/// What the records of every shard of an engine share; see the [module docs](self).
pub(crate) struct RecordBacking {
    usage: Arc<Usage>,
    /// In memory: the most bytes of records held before puts are refused.
    max_memory_bytes: Option<u64>,
    /// Durable: where dropped bodies are read back from.
    durable: Option<DurableCache>,
}

struct DurableCache {
    storage: Arc<dyn Storage>,
    cache_bytes: u64,
    /// Every block body still cached, oldest first.
    fifo: Mutex<VecDeque<Arc<Body>>>,
    /// The data keys of encrypted streams, to open sealed batches read back.
    keys: RwLock<HashMap<StreamId, Arc<DataKey>>>,
}

impl fmt::Debug for RecordBacking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordBacking")
            .field("usage", &self.usage)
            .field("max_memory_bytes", &self.max_memory_bytes)
            .field("cache_bytes", &self.durable.as_ref().map(|d| d.cache_bytes))
            .finish()
    }
}

/// The backing of shards not yet in a registry (their records are empty).
static UNATTACHED: LazyLock<Arc<RecordBacking>> =
    LazyLock::new(|| Arc::new(RecordBacking::memory(None)));

impl RecordBacking {
    /// In-memory records, refused beyond `max_memory_bytes` if given.
    pub(crate) fn memory(max_memory_bytes: Option<u64>) -> Self {
        Self {
            usage: Arc::default(),
            max_memory_bytes,
            durable: None,
        }
    }

    /// Records whose bodies are a cache of at most about `cache_bytes` over `storage`'s log.
    pub(crate) fn durable(storage: Arc<dyn Storage>, cache_bytes: u64) -> Self {
        Self {
            usage: Arc::default(),
            max_memory_bytes: None,
            durable: Some(DurableCache {
                storage,
                cache_bytes,
                fifo: Mutex::default(),
                keys: RwLock::default(),
            }),
        }
    }

    /// Bytes of record bodies held in memory.
    pub(crate) fn body_bytes(&self) -> u64 {
        self.usage.bodies.load(Ordering::Relaxed)
    }

    /// Bytes of record headers (the per-record index).
    pub(crate) fn index_bytes(&self) -> u64 {
        self.usage.index.load(Ordering::Relaxed)
    }

    /// Fails with a message naming the cap if the records held exceed it.
    pub(crate) fn check_cap(&self) -> Result<(), String> {
        let Some(cap) = self.max_memory_bytes else {
            return Ok(());
        };
        let held = self.body_bytes() + self.index_bytes();
        if held < cap {
            return Ok(());
        }
        Err(format!(
            "The engine holds {held} bytes of records, at or above its memory cap of {cap} bytes \
             (--max-memory-bytes, EngineBuilder::max_memory_bytes); no record is accepted until \
             retention expires records, streams are deleted, or the engine restarts with a \
             larger cap"
        ))
    }

    /// Remembers the data key of an encrypted stream, to read its sealed batches back.
    pub(crate) fn remember_key(&self, stream: StreamId, key: Arc<DataKey>) {
        if let Some(durable) = &self.durable {
            durable.keys.write().insert(stream, key);
        }
    }

    /// Makes a new block body, entering it into the cache.
    fn new_body(&self, capacity: usize) -> Arc<Body> {
        let body = Arc::new(Body {
            state: Mutex::new(BodyState::Open(Vec::with_capacity(capacity))),
            usage: self.usage.clone(),
        });
        Usage::add(&self.usage.bodies, 0, capacity);
        if let Some(durable) = &self.durable {
            durable.fifo.lock().push_back(body.clone());
        }
        body
    }

    /// Drops the oldest cached bodies while the cache is over its size.
    fn enforce_cache(&self) {
        let Some(durable) = &self.durable else {
            return;
        };
        if self.body_bytes() <= durable.cache_bytes {
            return;
        }
        let mut fifo = durable.fifo.lock();
        while self.body_bytes() > durable.cache_bytes {
            let Some(oldest) = fifo.pop_front() else {
                break;
            };
            oldest.evict();
        }
    }

    /// The records of the batch with `lsn`, read back from the log (opened if sealed).
    fn load(&self, lsn: Lsn) -> Result<Vec<ShardRecord>, StorageError> {
        let Some(durable) = &self.durable else {
            return Ok(Vec::new());
        };
        let Some(mut batch) = durable.storage.read_batch(lsn)? else {
            return Ok(Vec::new());
        };
        if let Some(sealed) = batch.sealed.take() {
            let key = durable.keys.read().get(&batch.stream_id).cloned();
            let key = key.ok_or_else(|| {
                StorageError::Key(format!(
                    "no data key is known for stream id {} to read its records back",
                    batch.stream_id
                ))
            })?;
            batch.records = sealed.open(&key).map_err(StorageError::Key)?;
        }
        Ok(batch.records)
    }
}

/// A block of consecutive records of one shard.
#[derive(Debug)]
struct Block {
    first_seq: u128,
    first_arrival: i64,
    base_lsn: Lsn,
    metas: Vec<Meta>,
    body: Arc<Body>,
}

impl Drop for Block {
    fn drop(&mut self) {
        self.body.evict();
        Usage::add(
            &self.body.usage.index,
            self.metas.capacity() * META_BYTES,
            0,
        );
    }
}

/// One record's index entry: what a header holds, in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) seq: u128,
    pub(crate) arrival_ms: i64,
    pub(crate) lsn: Lsn,
    pub(crate) key_len: usize,
    pub(crate) data_len: usize,
    pub(crate) encrypted: bool,
}

/// Bytes of one entry in a checkpoint: sequence number (16), arrival (8), LSN (8), key length
/// (2), data length (4), flags (1).
pub(crate) const ENTRY_BYTES: usize = 39;

impl Entry {
    fn of(record: &StoredRecord, lsn: Lsn) -> Self {
        Self {
            seq: record.sequence_number,
            arrival_ms: record.arrival_ms,
            lsn,
            key_len: record.partition_key.len(),
            data_len: record.data.len(),
            encrypted: record.encrypted,
        }
    }

    /// Appends the entry in checkpoint form.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.arrival_ms.to_le_bytes());
        out.extend_from_slice(&self.lsn.to_le_bytes());
        out.extend_from_slice(&(self.key_len as u16).to_le_bytes());
        out.extend_from_slice(&(self.data_len as u32).to_le_bytes());
        out.push(u8::from(self.encrypted));
    }

    /// Reads an entry written by [`Entry::encode`].
    pub(crate) fn decode(bytes: &[u8; ENTRY_BYTES]) -> Self {
        let field = |range: std::ops::Range<usize>| &bytes[range];
        let u64_at =
            |at: usize| u64::from_le_bytes(field(at..at + 8).try_into().unwrap_or_default());
        Self {
            seq: u128::from_le_bytes(field(0..16).try_into().unwrap_or_default()),
            arrival_ms: u64_at(16) as i64,
            lsn: u64_at(24),
            key_len: usize::from(u16::from_le_bytes([bytes[32], bytes[33]])),
            data_len: u32::from_le_bytes([bytes[34], bytes[35], bytes[36], bytes[37]]) as usize,
            encrypted: bytes[38] != 0,
        }
    }
}

/// One record's header, decoded.
#[derive(Clone, Copy, Debug)]
struct View {
    seq: u128,
    arrival_ms: i64,
    lsn: Lsn,
    start: usize,
    end: usize,
    key_len: usize,
    encrypted: bool,
}

impl Block {
    fn view(&self, i: usize) -> View {
        let m = self.metas[i];
        View {
            seq: self.first_seq + (u128::from(m.dt) << TIME_SHIFT) + u128::from(m.dc),
            arrival_ms: self.first_arrival + i64::from(m.arrival),
            lsn: self.base_lsn + Lsn::from(m.lsn),
            start: i.checked_sub(1).map_or(0, |p| self.metas[p].end as usize),
            end: m.end as usize,
            key_len: usize::from(m.key_len),
            encrypted: m.encrypted,
        }
    }

    fn last(&self) -> View {
        self.view(self.metas.len() - 1)
    }

    fn body_len(&self) -> usize {
        self.metas.last().map_or(0, |m| m.end as usize)
    }

    /// The header of `record` in this block, if it fits: a block with its body takes records
    /// with bodies, one without (`indexed`, restored from a checkpoint) only headers.
    fn meta_for(&self, record: &Entry, indexed: bool) -> Option<Meta> {
        let size = record.key_len + record.data_len;
        let body_len = self.body_len();
        let fits = self.metas.is_empty()
            || (self.metas.len() < BLOCK_RECORDS && body_len + size <= BLOCK_BYTES);
        let open = matches!(*self.body.state.lock(), BodyState::Open(_));
        if !fits || open == indexed {
            return None;
        }
        let base = SequenceNumber::from_u128(self.first_seq)?;
        let this = SequenceNumber::from_u128(record.seq)?;
        let dt = u32::try_from(this.time_ms.checked_sub(base.time_ms)?).ok()?;
        let dc = u32::try_from(this.counter.checked_sub(base.counter)?).ok()?;
        let exact = self.first_seq + (u128::from(dt) << TIME_SHIFT) + u128::from(dc);
        (exact == record.seq).then_some(())?;
        Some(Meta {
            dt,
            dc,
            arrival: i32::try_from(record.arrival_ms.checked_sub(self.first_arrival)?).ok()?,
            lsn: u32::try_from(record.lsn.checked_sub(self.base_lsn)?).ok()?,
            end: u32::try_from(body_len + size).ok()?,
            key_len: u16::try_from(record.key_len).ok()?,
            encrypted: record.encrypted,
        })
    }

    /// Shrinks the buffers to their content (the body only if `compact`) and makes the body
    /// shareable.
    fn seal(&mut self, compact: bool) {
        let before = self.metas.capacity();
        self.metas.shrink_to_fit();
        Usage::add(
            &self.body.usage.index,
            before * META_BYTES,
            self.metas.capacity() * META_BYTES,
        );
        let mut state = self.body.state.lock();
        if let BodyState::Open(buf) = &mut *state {
            let before = buf.capacity();
            let mut buf = std::mem::take(buf);
            if compact {
                buf.shrink_to_fit();
            }
            let held = buf.capacity();
            Usage::add(&self.body.usage.bodies, before, held);
            *state = BodyState::Sealed(Bytes::from(buf), held);
        }
    }
}

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

    /// The record at `at` as a [`StoredRecord`]; `None` if its body is gone from memory and the
    /// log no longer holds it (released by retention). `memo` keeps the last batch read back,
    /// so a read meets each batch once.
    fn record(
        &self,
        at: Cursor,
        v: &View,
        memo: &mut Option<ReadBack>,
    ) -> Result<Option<StoredRecord>, StorageError> {
        let block = &self.blocks[at.block];
        let make = |key: &[u8], data: Bytes| StoredRecord {
            sequence_number: v.seq,
            arrival_ms: v.arrival_ms,
            partition_key: String::from_utf8_lossy(key).into_owned(),
            data,
            encrypted: v.encrypted,
        };
        match &*block.body.state.lock() {
            BodyState::Open(buf) => {
                let key = &buf[v.start..v.start + v.key_len];
                let data = Bytes::copy_from_slice(&buf[v.start + v.key_len..v.end]);
                return Ok(Some(make(key, data)));
            }
            BodyState::Sealed(buf, _) => {
                let key = &buf[v.start..v.start + v.key_len];
                return Ok(Some(make(key, buf.slice(v.start + v.key_len..v.end))));
            }
            BodyState::Evicted => {}
        }
        if memo.as_ref().is_none_or(|m| m.lsn != v.lsn) {
            *memo = Some(ReadBack {
                lsn: v.lsn,
                records: self.backing.load(v.lsn)?,
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
            .find(|&i| memo.records[i].record.sequence_number == v.seq);
        Ok(found.map(|i| {
            memo.next = i + 1;
            StoredRecord {
                encrypted: v.encrypted,
                ..memo.records[i].record.clone()
            }
        }))
    }

    /// Reads records at or after `position`; `closed` says whether the shard is closed.
    pub(crate) fn read(
        &self,
        position: u128,
        limits: ReadLimits,
        now_ms: i64,
        closed: bool,
    ) -> ReadBatch {
        let mut at = self.seek(|v| v.seq < position);
        if at.block == 0 && at.record < self.skip {
            at = self.first();
        }
        let mut batch = ReadBatch {
            next_position: position,
            ..ReadBatch::default()
        };
        let mut bytes = 0usize;
        let mut next_unread = None;
        let mut memo = None;
        let mut failed = false;
        while let Some(v) = self.view(at) {
            if v.lsn > limits.durable_lsn {
                break;
            }
            let size = v.end - v.start;
            let full = batch.records.len() >= limits.max_records
                || (!batch.records.is_empty() && bytes + size > limits.max_bytes);
            if full {
                next_unread = Some(v);
                break;
            }
            match self.record(at, &v, &mut memo) {
                Ok(Some(record)) => {
                    bytes += size;
                    batch.records.push(record);
                }
                // Released with its segment: past retention, so no reader may have it.
                Ok(None) => {}
                Err(error) => {
                    // The reader gets what was read and tries again from here.
                    tracing::error!(%error, lsn = v.lsn, "reading records back from the log failed");
                    failed = true;
                    break;
                }
            }
            batch.next_position = v.seq + 1;
            at = self.next(at);
        }
        batch.millis_behind = next_unread.map_or(0, |v| (now_ms - v.arrival_ms).max(0));
        batch.at_shard_end = closed && !failed && next_unread.is_none() && self.view(at).is_none();
        batch
    }
}

#[cfg(test)]
mod tests;

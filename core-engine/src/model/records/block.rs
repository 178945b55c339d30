//! A block of consecutive records of one shard: compact headers over one buffer of bodies,
//! and the full index entry a header stands for.

use std::sync::Arc;

use bytes::Bytes;

use crate::storage::{Lsn, StoredRecord};

use super::super::sequence::SequenceNumber;
use super::backing::{Body, BodyState, Usage};

/// Bytes of record bodies after which a block takes no more records.
pub(crate) const BLOCK_BYTES: usize = 64 * 1024;
/// Records after which a block takes no more.
pub(super) const BLOCK_RECORDS: usize = 4096;
/// Capacity of a new block's body buffer (it grows by doubling up to [`BLOCK_BYTES`]).
pub(super) const FIRST_BODY_BYTES: usize = 1024;
/// The bit where a sequence number's time field starts (see `model::sequence`).
pub(super) const TIME_SHIFT: u32 = 80;
/// Bytes of one record header.
pub(crate) const META_BYTES: usize = std::mem::size_of::<Meta>();

/// A record's header within its block.
#[derive(Clone, Copy, Debug)]
pub(super) struct Meta {
    /// Sequence number time, ms after the block's first record's.
    pub(super) dt: u32,
    /// Sequence number counter after the block's first record's.
    pub(super) dc: u32,
    /// Arrival time relative to the block's first record's.
    pub(super) arrival: i32,
    /// LSN after the block's first record's.
    pub(super) lsn: u32,
    /// Offset just past the record's body in the block's buffer.
    pub(super) end: u32,
    pub(super) key_len: u16,
    pub(super) encrypted: bool,
}

/// A block of consecutive records of one shard.
#[derive(Debug)]
pub(super) struct Block {
    pub(super) first_seq: u128,
    pub(super) first_arrival: i64,
    pub(super) base_lsn: Lsn,
    pub(super) metas: Vec<Meta>,
    pub(super) body: Arc<Body>,
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
    pub(super) fn of(record: &StoredRecord, lsn: Lsn) -> Self {
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
pub(super) struct View {
    pub(super) seq: u128,
    pub(super) arrival_ms: i64,
    pub(super) lsn: Lsn,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) key_len: usize,
    pub(super) encrypted: bool,
}

impl Block {
    pub(super) fn view(&self, i: usize) -> View {
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

    pub(super) fn last(&self) -> View {
        self.view(self.metas.len() - 1)
    }

    pub(super) fn body_len(&self) -> usize {
        self.metas.last().map_or(0, |m| m.end as usize)
    }

    /// The header of `record` in this block, if it fits: a block with its body takes records
    /// with bodies, one without (`indexed`, restored from a checkpoint) only headers.
    pub(super) fn meta_for(&self, record: &Entry, indexed: bool) -> Option<Meta> {
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
    pub(super) fn seal(&mut self, compact: bool) {
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

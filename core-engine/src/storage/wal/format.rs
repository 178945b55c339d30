//! Byte layouts of the log (segment header, frame, metadata file); pure functions, no I/O.
//!
//! The layouts are documented byte by byte in the [parent module](super). Every integer is
//! little-endian, written with `to_le_bytes` and read with `from_le_bytes`. Decoding checks every
//! length against the bytes actually present before touching them, so no input can make it panic
//! or allocate more than the input's own size.

use std::ops::Range;

use bytes::Bytes;

use super::super::crypto::{DataKey, TAG_LEN};
#[cfg(doc)]
use super::super::framed;
use super::super::{Lsn, RecoveredBatch, SealedBatch, ShardRecord, StoredRecord, StreamId};

/// Version of the segment and metadata layouts; bumped on any incompatible change.
pub(super) const FORMAT_VERSION: u32 = 1;
/// First bytes of every segment file.
pub(super) const SEGMENT_MAGIC: [u8; 8] = *b"SHRDLWAL";
/// Magic (8) + version (4) + first LSN (8).
pub(super) const SEGMENT_HEADER_LEN: usize = 20;
pub(super) use super::super::framed::{FRAME_HEADER_LEN, FrameError, MAX_PAYLOAD_LEN};
/// First bytes of the metadata file.
pub(super) const METADATA_MAGIC: [u8; 8] = *b"SHRDLMET";
/// Magic (8) + version (4) + snapshot length (8) + CRC32 (4).
pub(super) const METADATA_HEADER_LEN: usize = 24;

/// Stream id (8) + record count (4).
const PAYLOAD_FIXED_LEN: usize = 12;
/// Shard (4) + sequence (16) + arrival (8) + key length (4) + data length (4).
const RECORD_FIXED_LEN: usize = 36;
/// Set in the stream id field of a sealed batch's payload (stream ids never come near it).
pub(super) const SEALED_FLAG: u64 = 1 << 63;
/// Bytes of a nonce.
const NONCE_LEN: usize = 12;
/// What sealing adds to a payload: the newest arrival time, the nonce and the tag.
const SEALED_EXTRA_LEN: usize = 8 + NONCE_LEN + TAG_LEN;
/// The clear part of a sealed payload that is authenticated: flagged stream id, newest arrival.
const SEALED_AAD_LEN: usize = 16;

/// The header of a segment whose first frame has `first_lsn`.
pub(super) fn segment_header(first_lsn: Lsn) -> [u8; SEGMENT_HEADER_LEN] {
    let mut out = [0u8; SEGMENT_HEADER_LEN];
    let (magic, rest) = out.split_at_mut(8);
    let (version, lsn) = rest.split_at_mut(4);
    magic.copy_from_slice(&SEGMENT_MAGIC);
    version.copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    lsn.copy_from_slice(&first_lsn.to_le_bytes());
    out
}

/// Checks a segment header at the start of `buf` and returns the first LSN it names.
pub(super) fn check_segment_header(buf: &[u8]) -> Result<Lsn, String> {
    let mut r = Reader::new(buf);
    let short = |_| format!("segment header needs {SEGMENT_HEADER_LEN} bytes");
    let magic: [u8; 8] = r.array().map_err(short)?;
    let version = r.u32().map_err(short)?;
    let first_lsn = r.u64().map_err(short)?;
    if magic != SEGMENT_MAGIC {
        return Err(format!("bad segment magic {magic:02x?}"));
    }
    if version != FORMAT_VERSION {
        return Err(format!("unsupported segment format version {version}"));
    }
    Ok(first_lsn)
}

/// Payload length of a batch, or `None` if it exceeds [`MAX_PAYLOAD_LEN`].
fn payload_len(records: &[ShardRecord]) -> Option<usize> {
    records.iter().try_fold(PAYLOAD_FIXED_LEN, |acc, r| {
        let rec = RECORD_FIXED_LEN
            .checked_add(r.record.partition_key.len())?
            .checked_add(r.record.data.len())?;
        acc.checked_add(rec).filter(|&n| n <= MAX_PAYLOAD_LEN)
    })
}

/// Appends the frame of one batch to `out`, sealed under `key` if given. Fails with the
/// payload size if it exceeds [`MAX_PAYLOAD_LEN`] (the decoder would reject it, so it must never
/// be written).
pub(super) fn encode_frame(
    stream: StreamId,
    records: &[ShardRecord],
    key: Option<&DataKey>,
    out: &mut Vec<u8>,
) -> Result<(), usize> {
    let extra = if key.is_some() { SEALED_EXTRA_LEN } else { 0 };
    let len = payload_len(records)
        .and_then(|len| len.checked_add(extra))
        .filter(|&len| len <= MAX_PAYLOAD_LEN);
    let Some(len) = len else {
        let total = records.iter().fold(PAYLOAD_FIXED_LEN, |acc, r| {
            acc.saturating_add(RECORD_FIXED_LEN)
                .saturating_add(r.record.partition_key.len())
                .saturating_add(r.record.data.len())
        });
        return Err(total.saturating_add(extra));
    };
    out.reserve(FRAME_HEADER_LEN + len);
    match key {
        None => super::super::framed::push_frame(out, |out| encode_payload(stream, records, out)),
        Some(key) => super::super::framed::push_frame(out, |out| {
            let start = out.len();
            // In the clear, so that recovery can tell when retention frees the segment.
            let newest = records.iter().map(|r| r.record.arrival_ms).max();
            out.extend_from_slice(&(stream | SEALED_FLAG).to_le_bytes());
            out.extend_from_slice(&newest.unwrap_or(i64::MIN).to_le_bytes());
            out.extend_from_slice(&[0; NONCE_LEN]); // patched below
            let body = out.len();
            encode_records(records, out);
            let mut aad = [0; SEALED_AAD_LEN];
            aad.copy_from_slice(&out[start..start + SEALED_AAD_LEN]);
            let nonce = key.seal(&aad, out, body);
            out[start + SEALED_AAD_LEN..body].copy_from_slice(&nonce);
        }),
    }
}

/// Writes the payload of a batch whose size [`payload_len`] accepted, so the `as u32` casts of
/// lengths below are exact.
fn encode_payload(stream: StreamId, records: &[ShardRecord], out: &mut Vec<u8>) {
    out.extend_from_slice(&stream.to_le_bytes());
    encode_records(records, out);
}

/// The record count and the records: the part of a payload after the stream id, which is what
/// a sealed batch encrypts.
fn encode_records(records: &[ShardRecord], out: &mut Vec<u8>) {
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        let rec = &r.record;
        out.extend_from_slice(&r.shard_index.to_le_bytes());
        out.extend_from_slice(&rec.sequence_number.to_le_bytes());
        out.extend_from_slice(&rec.arrival_ms.to_le_bytes());
        out.extend_from_slice(&(rec.partition_key.len() as u32).to_le_bytes());
        out.extend_from_slice(rec.partition_key.as_bytes());
        out.extend_from_slice(&(rec.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&rec.data);
    }
}

/// Decodes the frame at the start of `buf`; returns the batch and the frame's total length.
/// Record data are zero-copy slices of `buf`. (Recovery reads frames with [`framed::scan`].)
#[cfg(test)]
pub(super) fn decode_frame(buf: &Bytes) -> Result<(RecoveredBatch, usize), FrameError> {
    let (payload, len) = super::super::framed::read_frame(buf)?;
    Ok((decode_payload(&buf.slice(payload))?, len))
}

/// Decodes a frame's payload (see the [parent module](super) for its layout). A sealed batch
/// comes back as [`RecoveredBatch::sealed`], for the engine to open with the stream's key.
pub(super) fn decode_payload(payload: &Bytes) -> Result<RecoveredBatch, FrameError> {
    let mut r = Reader::new(payload);
    let stream_id = r.u64()?;
    if stream_id & SEALED_FLAG != 0 {
        let newest = r.array()?;
        let mut aad = [0; SEALED_AAD_LEN];
        aad[..8].copy_from_slice(&stream_id.to_le_bytes());
        aad[8..].copy_from_slice(&newest);
        let nonce = r.array()?;
        if r.remaining() < TAG_LEN + 4 {
            return Err(FrameError::Payload("sealed batch shorter than its tag"));
        }
        let sealed = payload.slice(r.take(r.remaining())?);
        return Ok(RecoveredBatch {
            stream_id: stream_id & !SEALED_FLAG,
            records: Vec::new(),
            sealed: Some(SealedBatch {
                aad,
                newest_arrival_ms: Some(i64::from_le_bytes(newest)).filter(|&ms| ms != i64::MIN),
                nonce,
                sealed,
            }),
        });
    }
    let records = decode_records(payload, r, false)?;
    Ok(RecoveredBatch {
        stream_id,
        records,
        sealed: None,
    })
}

impl SealedBatch {
    /// Decrypts the batch with its stream's data key and decodes its records.
    ///
    /// # Errors
    /// The batch does not authenticate under `key` (another key, or altered bytes), or its
    /// plaintext is malformed.
    pub fn open(self, key: &DataKey) -> Result<Vec<ShardRecord>, String> {
        let mut buf = self.sealed.to_vec();
        let len = key.open(self.nonce, &self.aad, &mut buf).ok_or(
            "an encrypted batch does not decrypt with its stream's data key (altered bytes?)",
        )?;
        buf.truncate(len);
        let plain = Bytes::from(buf);
        decode_records(&plain, Reader::new(&plain), true).map_err(|e| e.to_string())
    }
}

/// Decodes the record count and the records from `r` to the end of `payload`.
fn decode_records(
    payload: &Bytes,
    mut r: Reader<'_>,
    encrypted: bool,
) -> Result<Vec<ShardRecord>, FrameError> {
    let count = r.u32()? as usize;
    // Bounds the allocation below by the input size.
    if count > r.remaining() / RECORD_FIXED_LEN {
        return Err(FrameError::Payload("record count exceeds payload"));
    }
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let shard_index = r.u32()?;
        let sequence_number = u128::from_le_bytes(r.array()?);
        let arrival_ms = i64::from_le_bytes(r.array()?);
        let key_len = r.u32()? as usize;
        let key = r.take(key_len)?;
        let partition_key = std::str::from_utf8(payload.get(key).unwrap_or_default())
            .map_err(|_| FrameError::Payload("partition key is not UTF-8"))?
            .to_owned();
        let data_len = r.u32()? as usize;
        let data = payload.slice(r.take(data_len)?);
        records.push(ShardRecord {
            shard_index,
            record: StoredRecord {
                sequence_number,
                arrival_ms,
                partition_key,
                data,
                encrypted,
            },
        });
    }
    if r.remaining() != 0 {
        return Err(FrameError::Payload("trailing bytes after the last record"));
    }
    Ok(records)
}

/// The metadata file holding `snapshot`.
pub(super) fn encode_metadata(snapshot: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(METADATA_HEADER_LEN + snapshot.len());
    out.extend_from_slice(&METADATA_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(snapshot.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(snapshot).to_le_bytes());
    out.extend_from_slice(snapshot);
    out
}

/// Checks a whole metadata file and returns the snapshot it holds.
pub(super) fn decode_metadata(buf: &[u8]) -> Result<Vec<u8>, String> {
    let mut r = Reader::new(buf);
    let short = |_| format!("metadata header needs {METADATA_HEADER_LEN} bytes");
    let magic: [u8; 8] = r.array().map_err(short)?;
    let version = r.u32().map_err(short)?;
    let len = r.u64().map_err(short)?;
    let stored = r.u32().map_err(short)?;
    if magic != METADATA_MAGIC {
        return Err(format!("bad metadata magic {magic:02x?}"));
    }
    if version != FORMAT_VERSION {
        return Err(format!("unsupported metadata format version {version}"));
    }
    if len != r.remaining() as u64 {
        return Err(format!(
            "metadata length {len} but {} bytes follow the header",
            r.remaining()
        ));
    }
    let snapshot = buf.get(METADATA_HEADER_LEN..).unwrap_or_default();
    let computed = crc32fast::hash(snapshot);
    if computed != stored {
        return Err(format!(
            "metadata crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    Ok(snapshot.to_vec())
}

/// A bounds-checked cursor: every read returns `Truncated` instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Consumes `n` bytes and returns their range in the buffer.
    fn take(&mut self, n: usize) -> Result<Range<usize>, FrameError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let range = self.pos..end;
                self.pos = end;
                Ok(range)
            }
            _ => Err(FrameError::Truncated {
                needed: self.pos.saturating_add(n),
                available: self.buf.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let range = self.take(N)?;
        let bytes = self.buf.get(range).unwrap_or_default();
        bytes
            .try_into()
            .map_err(|_| FrameError::Payload("internal length mismatch"))
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        self.array().map(u64::from_le_bytes)
    }
}

//! The CRC-framed log format shared by the write-ahead log segments and the DynamoDB table log,
//! and the one policy for reading it back after a crash.
//!
//! # Frame
//! Every integer is little-endian; CRC32 is the IEEE polynomial (`crc32fast`, as in zlib).
//! ```text
//! offset  size  field
//!      0     4  payload length n, u32, 1 ..= 64 MiB
//!      4     4  CRC32 of the n payload bytes, u32
//!      8     n  payload (its layout belongs to the log that uses the frame)
//! ```
//! Frames follow each other back to back after the file's own header.
//!
//! # Writing
//! [`push_frame`] refuses a payload that is empty or longer than [`MAX_PAYLOAD_LEN`], so a frame
//! that [`scan`] would refuse is never written. Callers that can produce large payloads
//! (DynamoDB compaction) split their data by bytes, well under the limit.
//!
//! # Reading: the torn-tail policy
//! A crash can interrupt only the last append, so only the last frame can be damaged by it.
//! [`scan`] reads frames until the first one that does not read back, and classifies it:
//! - **torn** if it is incomplete: its header or payload runs past the end of the file, or
//!   every byte from it to the end of the file is zero (a file extended by a crash before its
//!   data reached the disk). The log's owner cuts the file there, and reports the cut.
//! - **corrupt** otherwise: a complete frame whose CRC does not match, an empty or over-long
//!   length, a payload that does not decode, or anything at all after it. The owner refuses to
//!   open the log and names the file and offset; nothing is cut, because dropping a frame from
//!   the middle of a log would silently lose acknowledged data.

use std::fmt;
use std::ops::Range;

/// Payload length (4) + CRC32 (4).
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// Largest payload a frame may carry; a larger length field is corruption, never an allocation.
pub(crate) const MAX_PAYLOAD_LEN: usize = 64 * 1024 * 1024;

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The buffer ends before the frame does.
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The length field exceeds [`MAX_PAYLOAD_LEN`].
    TooLong(u32),
    /// The length field is zero; no log writes empty payloads.
    Empty,
    /// The payload does not match its checksum.
    Crc {
        /// Checksum stored in the frame.
        stored: u32,
        /// Checksum of the payload as read.
        computed: u32,
    },
    /// The checksum matches but the payload is malformed.
    Payload(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(
                    f,
                    "truncated frame: needs {needed} bytes, {available} present"
                )
            }
            Self::TooLong(len) => write!(f, "frame length {len} exceeds {MAX_PAYLOAD_LEN}"),
            Self::Empty => write!(f, "frame length is zero"),
            Self::Crc { stored, computed } => {
                write!(
                    f,
                    "crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            Self::Payload(what) => write!(f, "malformed payload: {what}"),
        }
    }
}

/// Appends one frame to `out`, its payload written by `write_payload`. A payload that is empty
/// or over [`MAX_PAYLOAD_LEN`] is refused with its length, and `out` is left as it was.
pub(crate) fn push_frame(
    out: &mut Vec<u8>,
    write_payload: impl FnOnce(&mut Vec<u8>),
) -> Result<(), usize> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]); // patched below
    let payload_start = out.len();
    write_payload(out);
    let len = out.len() - payload_start;
    if len == 0 || len > MAX_PAYLOAD_LEN {
        out.truncate(start);
        return Err(len);
    }
    let crc = crc32fast::hash(&out[payload_start..]);
    // `len <= MAX_PAYLOAD_LEN`, so the cast is exact.
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..payload_start].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Reads the frame at the start of `buf`: the payload's range in `buf` and the frame's length.
pub(crate) fn read_frame(buf: &[u8]) -> Result<(Range<usize>, usize), FrameError> {
    let header: [u8; FRAME_HEADER_LEN] = buf
        .get(..FRAME_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(FrameError::Truncated {
            needed: FRAME_HEADER_LEN,
            available: buf.len(),
        })?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let stored = u32::from_le_bytes([c0, c1, c2, c3]);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len as usize > MAX_PAYLOAD_LEN {
        return Err(FrameError::TooLong(len));
    }
    let end = FRAME_HEADER_LEN + len as usize;
    let payload = buf
        .get(FRAME_HEADER_LEN..end)
        .ok_or(FrameError::Truncated {
            needed: end,
            available: buf.len(),
        })?;
    let computed = crc32fast::hash(payload);
    if computed != stored {
        return Err(FrameError::Crc { stored, computed });
    }
    Ok((FRAME_HEADER_LEN..end, end))
}

/// The first frame of a scan that did not read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadFrame {
    /// Its offset in the scanned buffer.
    pub offset: usize,
    /// What is wrong with it.
    pub error: FrameError,
    /// Whether it is a torn tail (see the [module docs](self)); if not, the log is corrupt.
    pub torn: bool,
}

/// What [`scan`] read.
#[derive(Debug)]
pub(crate) struct Scan<T> {
    /// The decoded payloads of the intact frames, in order.
    pub items: Vec<T>,
    /// Offset just past the last intact frame.
    pub good_len: usize,
    /// The first frame that did not read back, if any.
    pub bad: Option<BadFrame>,
}

/// Reads the frames of `buf` from `start`, decoding each payload (given as its range in `buf`)
/// with `decode`, until the end or the first bad frame. A payload `decode` refuses is corrupt,
/// never torn: its CRC matched, so the bytes are the ones that were written.
pub(crate) fn scan<T>(
    buf: &[u8],
    start: usize,
    mut decode: impl FnMut(Range<usize>) -> Result<T, FrameError>,
) -> Scan<T> {
    let mut items = Vec::new();
    let mut offset = start;
    let mut bad = None;
    while offset < buf.len() {
        let rest = buf.get(offset..).unwrap_or_default();
        let read = read_frame(rest).map_err(|error| {
            let torn =
                matches!(error, FrameError::Truncated { .. }) || rest.iter().all(|&b| b == 0);
            (error, torn)
        });
        let decoded = read.and_then(|(payload, len)| {
            let range = offset + payload.start..offset + payload.end;
            decode(range)
                .map(|item| (item, len))
                .map_err(|e| (e, false))
        });
        match decoded {
            Ok((item, len)) => {
                items.push(item);
                offset += len;
            }
            Err((error, torn)) => {
                bad = Some(BadFrame {
                    offset,
                    error,
                    torn,
                });
                break;
            }
        }
    }
    Scan {
        items,
        good_len: offset,
        bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_frame(&mut out, |o| o.extend_from_slice(payload)).expect("frame");
        out
    }

    fn raw(buf: &[u8]) -> Scan<Vec<u8>> {
        scan(buf, 0, |r| Ok(buf[r].to_vec()))
    }

    #[test]
    fn frame_vector() {
        // CRC32("abc") = 0x352441c2, as zlib.crc32(b"abc") gives.
        assert_eq!(
            frame(b"abc"),
            [3, 0, 0, 0, 0xc2, 0x41, 0x24, 0x35, b'a', b'b', b'c']
        );
        let mut out = vec![9];
        assert_eq!(push_frame(&mut out, |_| {}), Err(0));
        assert_eq!(
            push_frame(&mut out, |o| o.resize(o.len() + MAX_PAYLOAD_LEN + 1, 1)),
            Err(MAX_PAYLOAD_LEN + 1)
        );
        assert_eq!(out, [9], "a refused frame leaves nothing behind");
    }

    #[test]
    fn an_incomplete_last_frame_is_torn() {
        let mut log = frame(b"first");
        let second = frame(b"second");
        for cut in 1..second.len() {
            let mut buf = log.clone();
            buf.extend_from_slice(&second[..cut]);
            let scan = raw(&buf);
            assert_eq!(scan.items, [b"first".to_vec()]);
            assert_eq!(scan.good_len, log.len());
            assert!(scan.bad.expect("bad").torn, "cut at {cut}");
        }
        // Zeros after the last frame: the file grew, the data never arrived.
        log.extend_from_slice(&[0; 40]);
        let scan = raw(&log);
        assert_eq!(scan.items.len(), 1);
        assert!(scan.bad.expect("bad").torn);
    }

    #[test]
    fn damage_before_the_end_is_corrupt() {
        let mut log = frame(b"first");
        log.extend(frame(b"second"));
        log.extend(frame(b"third"));
        // A flipped payload bit in the middle, or in the complete last frame.
        for at in [22, log.len() - 1] {
            let mut buf = log.clone();
            buf[at] ^= 1;
            let bad = raw(&buf).bad.expect("bad");
            assert!(!bad.torn, "flip at {at}");
            assert!(matches!(bad.error, FrameError::Crc { .. }));
        }
        // An over-long or zero length with data after it.
        let mut buf = log.clone();
        buf[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            raw(&buf).bad.map(|b| (b.error, b.torn)),
            Some((FrameError::TooLong(u32::MAX), false))
        );
        let mut buf = log.clone();
        buf[13..17].copy_from_slice(&[0; 4]);
        assert_eq!(
            raw(&buf).bad.map(|b| (b.error, b.torn)),
            Some((FrameError::Empty, false))
        );
        // A payload its owner cannot decode.
        let scan = scan(&log, 0, |r| match &log[r] {
            b"second" => Err(FrameError::Payload("no")),
            other => Ok(other.to_vec()),
        });
        assert_eq!(scan.items, [b"first".to_vec()]);
        assert_eq!(scan.bad.map(|b| (b.offset, b.torn)), Some((13, false)));
    }
}

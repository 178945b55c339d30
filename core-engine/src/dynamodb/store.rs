//! Persistence for DynamoDB tables: nothing (in memory), or an append-only log of changes in
//! `<data_dir>/dynamodb/`.
//!
//! # File layout
//! `<data_dir>/dynamodb/tables.log` (the data directory's `LOCK` keeps other engines out):
//! ```text
//! offset  size  field
//!      0     8  magic "SHRDLDDB"
//!      8     4  format version, u32 little-endian = 1
//!     12        frames, back to back, in the shared CRC-framed format
//!               (crate::storage::framed: u32 length 1..=64 MiB, u32 CRC32, payload);
//!               each payload is a JSON array of log entries
//! ```
//! One frame holds every change of one request (one item, or all items of a transaction or
//! batch), so a request is applied whole or not at all. The frame is written and, in
//! [`SyncMode::Fsync`], synced before the change is applied in memory and acknowledged. A request
//! whose frame would exceed the frame limit is refused before anything is written.
//!
//! # Recovery
//! Opening replays every frame in order, with the torn-tail policy of the framed format: an
//! incomplete last frame (a crash mid-append) is cut and the file synced; any other frame that
//! does not read back (a CRC mismatch, a bad length, a payload that is not a list of entries)
//! stops the engine with [`StorageError::Corrupt`] naming the offset, and the file is left as
//! it is.
//!
//! # Compaction
//! When the log has grown past both 8 MiB and four times the size of the last snapshot, a
//! background thread (never a request) rewrites it as a snapshot: every table and item as
//! entries, in frames of at most [`SNAPSHOT_FRAME_BYTES`] (an entry larger than that gets a frame
//! of its own, still under the limit). The snapshot is taken with every table locked, at a log
//! position; it is written to `tables.log.tmp` and synced without any lock; then, with appends
//! held back, the frames appended since that position are copied after it, the file is synced,
//! renamed over `tables.log`, and the directory synced, so a crash leaves one log or the other.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::table::TableMeta;
use super::value::Item;
use crate::storage::StorageError;
use crate::storage::framed::{self, FrameError, MAX_PAYLOAD_LEN};
use crate::storage::wal::SyncMode;

const MAGIC: &[u8; 8] = b"SHRDLDDB";
const VERSION: u32 = 1;
const HEADER_BYTES: u64 = 12;
const COMPACT_MIN_BYTES: u64 = 8 << 20;
/// Compaction closes a frame once its payload reaches this size.
pub(crate) const SNAPSHOT_FRAME_BYTES: usize = 4 << 20;

/// One change, as logged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum LogEntry {
    /// A table was created (or, in a snapshot, exists).
    CreateTable(TableMeta),
    /// A table's definition changed (indexes added or removed, billing).
    UpdateTable(TableMeta),
    /// A table was deleted with all its items.
    DeleteTable(String),
    /// An item was written whole.
    Put {
        /// Table name.
        table: String,
        /// The whole new item.
        item: Item,
    },
    /// An item was deleted.
    Delete {
        /// Table name.
        table: String,
        /// Its key attributes.
        key: Item,
    },
}

/// Where table changes go.
pub(crate) trait Store: Send + Sync + fmt::Debug {
    /// Makes `entries` durable as one unit; returns once they are.
    fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError>;
    /// Whether the log has grown enough to be worth rewriting as a snapshot.
    fn wants_compaction(&self) -> bool;
    /// The log's current end; a snapshot taken with no append in flight reflects every frame
    /// before it.
    fn position(&self) -> u64;
    /// Atomically replaces the log with `snapshot` (encoded by [`encode_snapshot`]), which
    /// reflects the log up to `position`, followed by the frames appended since.
    fn rewrite(&self, snapshot: &[u8], position: u64) -> Result<(), StorageError>;
    /// Flushes and stops accepting writes.
    fn close(&self) -> Result<(), StorageError>;
}

/// Keeps nothing: everything lives in memory only.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore;

impl Store for MemoryStore {
    fn append(&self, _: &[LogEntry]) -> Result<(), StorageError> {
        Ok(())
    }
    fn wants_compaction(&self) -> bool {
        false
    }
    fn position(&self) -> u64 {
        0
    }
    fn rewrite(&self, _: &[u8], _: u64) -> Result<(), StorageError> {
        Ok(())
    }
    fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The log file; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct FileStore {
    dir: PathBuf,
    sync: SyncMode,
    state: Mutex<FileState>,
}

#[derive(Debug)]
struct FileState {
    file: Option<File>,
    len: u64,
    snapshot_len: u64,
}

/// What opening the log found.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) store: FileStore,
    /// Every change in the log, in order; each inner list is one frame.
    pub(crate) frames: Vec<Vec<LogEntry>>,
    /// Bytes cut off a torn tail.
    pub(crate) truncated_bytes: u64,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

fn header() -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    out
}

/// The error for a request or snapshot entry too large for one frame.
fn too_large(path: &Path, len: usize) -> StorageError {
    let message =
        format!("a log frame of {len} bytes would exceed the {MAX_PAYLOAD_LEN} byte limit");
    io_error(path)(io::Error::new(io::ErrorKind::InvalidInput, message))
}

/// Appends to `out` the frame of one request's entries; fails with the payload size if it is
/// over the frame limit (nothing is appended then).
pub(crate) fn encode_frame(entries: &[LogEntry], out: &mut Vec<u8>) -> Result<(), usize> {
    framed::push_frame(out, |payload| {
        // Serialising plain data into a vector cannot fail.
        let _ = serde_json::to_writer(payload, entries);
    })
}

/// Encodes a snapshot's entries as frames whose payloads stop growing once they reach
/// [`SNAPSHOT_FRAME_BYTES`]; the payloads are the JSON arrays [`encode_frame`] writes.
pub(crate) fn encode_snapshot(
    entries: impl IntoIterator<Item = LogEntry>,
    out: &mut Vec<u8>,
) -> Result<(), usize> {
    let mut payload = Vec::new();
    let flush = |payload: &mut Vec<u8>, out: &mut Vec<u8>| {
        if payload.is_empty() {
            return Ok(());
        }
        payload.push(b']');
        let result = framed::push_frame(out, |o| o.extend_from_slice(payload));
        payload.clear();
        result
    };
    for entry in entries {
        let encoded = serde_json::to_vec(&entry).unwrap_or_default();
        if !payload.is_empty() && payload.len() + encoded.len() + 2 > SNAPSHOT_FRAME_BYTES {
            flush(&mut payload, out)?;
        }
        payload.push(if payload.is_empty() { b'[' } else { b',' });
        payload.extend_from_slice(&encoded);
    }
    flush(&mut payload, out)
}

/// Reads the frames of a log from `start` (past the header): every frame that decodes, and the
/// first one that does not, classified as torn or corrupt.
pub(crate) fn decode_frames(bytes: &[u8], start: usize) -> framed::Scan<Vec<LogEntry>> {
    framed::scan(bytes, start, |payload| {
        serde_json::from_slice(&bytes[payload])
            .map_err(|_| FrameError::Payload("not a JSON array of log entries"))
    })
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

impl FileStore {
    fn log_path(&self) -> PathBuf {
        self.dir.join("tables.log")
    }

    /// Opens (or creates) the log in `dir`, replays it and cuts a torn tail.
    pub(crate) fn open(dir: &Path, sync: SyncMode) -> Result<Opened, StorageError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let path = dir.join("tables.log");
        let _ = std::fs::remove_file(dir.join("tables.log.tmp"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error(&path))?;
        if bytes.is_empty() {
            file.write_all(&header()).map_err(io_error(&path))?;
            file.sync_all().map_err(io_error(&path))?;
            sync_dir(dir)?;
            bytes = header();
        }
        if bytes.len() < HEADER_BYTES as usize || bytes[..12] != header()[..] {
            return Err(StorageError::Corrupt {
                path,
                reason: "not a DynamoDB table log (bad header)".into(),
            });
        }
        let scan = decode_frames(&bytes, HEADER_BYTES as usize);
        if let Some(bad) = scan.bad.as_ref().filter(|bad| !bad.torn) {
            return Err(StorageError::Corrupt {
                path,
                reason: format!(
                    "bad frame at offset {}: {}; only an incomplete last frame can be left by \
                     a crash, so the log was left as it is rather than cut there",
                    bad.offset, bad.error
                ),
            });
        }
        let frames = scan.items;
        let len = scan.good_len as u64;
        let truncated_bytes = bytes.len() as u64 - len;
        if truncated_bytes > 0 {
            file.set_len(len).map_err(io_error(&path))?;
            file.sync_all().map_err(io_error(&path))?;
        }
        file.seek(SeekFrom::Start(len)).map_err(io_error(&path))?;
        let store = FileStore {
            dir: dir.to_owned(),
            sync,
            state: Mutex::new(FileState {
                file: Some(file),
                len,
                snapshot_len: len,
            }),
        };
        Ok(Opened {
            store,
            frames,
            truncated_bytes,
        })
    }
}

impl Store for FileStore {
    fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError> {
        let path = self.log_path();
        let mut frame = Vec::new();
        encode_frame(entries, &mut frame).map_err(|len| too_large(&path, len))?;
        let mut state = self.state.lock();
        let len = state.len;
        let Some(file) = state.file.as_mut() else {
            return Err(StorageError::Unavailable(
                "the DynamoDB log is closed".into(),
            ));
        };
        let written = file.write_all(&frame).and_then(|()| match self.sync {
            SyncMode::Fsync => file.sync_data(),
            SyncMode::OsBuffered => Ok(()),
        });
        if let Err(source) = written {
            // Cut a partial frame so that later frames are not appended after garbage; if
            // even that fails, refuse further writes rather than risk a corrupt middle.
            let repaired = file
                .set_len(len)
                .and_then(|()| file.seek(SeekFrom::Start(len)).map(|_| ()));
            if repaired.is_err() {
                state.file = None;
            }
            return Err(StorageError::Io { path, source });
        }
        state.len += frame.len() as u64;
        Ok(())
    }

    fn wants_compaction(&self) -> bool {
        let state = self.state.lock();
        state.len > COMPACT_MIN_BYTES && state.len > state.snapshot_len.saturating_mul(4)
    }

    fn position(&self) -> u64 {
        self.state.lock().len
    }

    fn rewrite(&self, snapshot: &[u8], position: u64) -> Result<(), StorageError> {
        let path = self.log_path();
        let tmp = self.dir.join("tables.log.tmp");
        // The snapshot is written without holding back appends.
        let mut out = File::create(&tmp).map_err(io_error(&tmp))?;
        out.write_all(&header())
            .and_then(|()| out.write_all(snapshot))
            .map_err(io_error(&tmp))?;
        let mut state = self.state.lock();
        if state.file.is_none() {
            return Err(StorageError::Unavailable(
                "the DynamoDB log is closed".into(),
            ));
        }
        // The frames appended since the snapshot was taken follow it.
        let mut tail = Vec::new();
        let mut log = File::open(&path).map_err(io_error(&path))?;
        log.seek(SeekFrom::Start(position))
            .and_then(|_| {
                log.take(state.len.saturating_sub(position))
                    .read_to_end(&mut tail)
            })
            .map_err(io_error(&path))?;
        out.write_all(&tail)
            .and_then(|()| out.sync_all())
            .map_err(io_error(&tmp))?;
        drop(out);
        std::fs::rename(&tmp, &path).map_err(io_error(&path))?;
        // From here the old file is gone: without the new one, no write may be accepted.
        state.file = None;
        sync_dir(&self.dir)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        state.file = Some(file);
        state.snapshot_len = HEADER_BYTES + snapshot.len() as u64;
        state.len = state.snapshot_len + tail.len() as u64;
        Ok(())
    }

    fn close(&self) -> Result<(), StorageError> {
        let path = self.log_path();
        let mut state = self.state.lock();
        if let Some(file) = state.file.take() {
            file.sync_all().map_err(io_error(&path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(n: u32) -> LogEntry {
        let item: Item =
            serde_json::from_str(&format!(r#"{{"k":{{"S":"item-{n}"}},"n":{{"N":"{n}"}}}}"#))
                .unwrap();
        LogEntry::Put {
            table: "t".into(),
            item,
        }
    }

    fn frame(entries: &[LogEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(entries, &mut out).expect("encodes");
        out
    }

    fn big(n: u32, bytes: usize) -> LogEntry {
        let item: Item = serde_json::from_value(serde_json::json!({
            "k": {"S": format!("item-{n}")},
            "v": {"S": "x".repeat(bytes)},
        }))
        .unwrap();
        LogEntry::Put {
            table: "t".into(),
            item,
        }
    }

    #[test]
    fn frames_have_the_documented_bytes() {
        let frame = frame(&[LogEntry::DeleteTable("t".into())]);
        let payload = br#"[{"DeleteTable":"t"}]"#;
        // CRC32 of the payload, as zlib.crc32 gives it.
        let mut expected = vec![21, 0, 0, 0, 0x72, 0x92, 0xb2, 0x79];
        expected.extend_from_slice(payload);
        assert_eq!(frame, expected);
        assert_eq!(header(), b"SHRDLDDB\x01\x00\x00\x00");
    }

    #[test]
    fn a_snapshot_is_split_into_frames_by_bytes() {
        let entries: Vec<_> = (0..40).map(|n| big(n, 300 << 10)).collect();
        let mut out = Vec::new();
        encode_snapshot(entries.clone(), &mut out).unwrap();
        let scan = decode_frames(&out, 0);
        assert!(scan.bad.is_none());
        assert!(scan.items.len() >= 3, "{} frames", scan.items.len());
        assert_eq!(scan.items.concat(), entries);
        // The payloads are what a request's frame holds: one frame of the same entries reads
        // back the same.
        let mut single = Vec::new();
        encode_snapshot(entries[..2].to_vec(), &mut single).unwrap();
        assert_eq!(single, frame(&entries[..2]));
        // A request too large for a frame is refused, never written.
        let huge: Vec<_> = (0..180).map(|n| big(n, 390 << 10)).collect();
        let mut out = Vec::new();
        assert!(encode_frame(&huge, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_corrupt_frame_is_an_error() {
        let mut bytes = frame(&[put(1)]);
        bytes.extend(frame(&[put(2), put(3)]));
        let whole = bytes.len();
        let scan = decode_frames(&bytes, 0);
        assert_eq!((scan.items.len(), scan.good_len), (2, whole));
        let scan = decode_frames(&bytes[..whole - 1], 0);
        assert_eq!(scan.items.len(), 1);
        assert!(scan.bad.unwrap().torn);
        let mut flipped = bytes.clone();
        flipped[whole - 2] ^= 1;
        let scan = decode_frames(&flipped, 0);
        assert_eq!(scan.items.len(), 1);
        assert!(
            !scan.bad.unwrap().torn,
            "a complete frame with a bad CRC is not torn"
        );
    }

    #[test]
    fn reopen_replays_cuts_the_tail_compacts_and_refuses_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let opened = FileStore::open(dir.path(), SyncMode::Fsync).unwrap();
        assert!(opened.frames.is_empty());
        opened.store.append(&[put(1)]).unwrap();
        opened.store.append(&[put(2), put(3)]).unwrap();
        opened.store.close().unwrap();
        assert!(opened.store.append(&[put(4)]).is_err());
        let log = dir.path().join("tables.log");
        let mut file = OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(file);
        let opened = FileStore::open(dir.path(), SyncMode::Fsync).unwrap();
        assert_eq!(opened.frames, vec![vec![put(1)], vec![put(2), put(3)]]);
        assert_eq!(opened.truncated_bytes, 6);
        // A snapshot taken at a position, with a frame appended after it: both survive.
        let position = opened.store.position();
        opened.store.append(&[put(5)]).unwrap();
        let mut snapshot = Vec::new();
        encode_snapshot([put(3)], &mut snapshot).unwrap();
        opened.store.rewrite(&snapshot, position).unwrap();
        opened.store.append(&[put(6)]).unwrap();
        drop(opened);
        let opened = FileStore::open(dir.path(), SyncMode::Fsync).unwrap();
        assert_eq!(
            opened.frames,
            vec![vec![put(3)], vec![put(5)], vec![put(6)]]
        );
        assert_eq!(opened.truncated_bytes, 0);
        drop(opened);
        // A flipped byte in the middle frame: an error, and the file is left alone.
        let mut bytes = std::fs::read(&log).unwrap();
        let middle = HEADER_BYTES as usize + frame(&[put(3)]).len() + 12;
        bytes[middle] ^= 0x20;
        std::fs::write(&log, &bytes).unwrap();
        match FileStore::open(dir.path(), SyncMode::Fsync) {
            Err(StorageError::Corrupt { reason, .. }) => {
                assert!(reason.contains("bad frame at offset"), "{reason}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert_eq!(std::fs::read(&log).unwrap(), bytes);
        std::fs::write(&log, b"garbage!garbage!").unwrap();
        assert!(matches!(
            FileStore::open(dir.path(), SyncMode::Fsync),
            Err(StorageError::Corrupt { .. })
        ));
    }
}

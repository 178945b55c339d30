//! Persistence for DynamoDB tables: nothing (in memory), or an append-only log of changes in
//! `<data_dir>/dynamodb/`.
//!
//! # File layout
//! `<data_dir>/dynamodb/tables.log` (the data directory's `LOCK` keeps other engines out):
//! ```text
//! offset  size  field
//!      0     8  magic "SHRDLDDB"
//!      8     4  format version, u32 little-endian = 1
//!     12        frames, back to back:
//!                 +0  4  payload length n, u32 LE, at most 64 MiB
//!                 +4  4  CRC32 (IEEE) of the payload, u32 LE
//!                 +8  n  payload: a JSON array of log entries
//! ```
//! One frame holds every change of one request (one item, or all items of a transaction or
//! batch), so a request is applied whole or not at all. The frame is written and, in
//! [`SyncMode::Fsync`], synced before the change is applied in memory and acknowledged.
//!
//! # Recovery and compaction
//! Opening replays every frame in order. The first frame that is short or fails its CRC starts a
//! torn tail, written by a crash mid-append: the file is cut there and synced. The log is
//! rewritten as a snapshot (every table and item as entries) when it has grown past both
//! 8 MiB and four times the size of the last snapshot: written to `tables.log.tmp`, synced,
//! renamed over `tables.log`, and the directory synced, so a crash leaves one or the other.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::table::TableMeta;
use super::value::Item;
use crate::storage::StorageError;
use crate::storage::wal::SyncMode;

const MAGIC: &[u8; 8] = b"SHRDLDDB";
const VERSION: u32 = 1;
const HEADER_BYTES: u64 = 12;
const MAX_FRAME: usize = 64 << 20;
const COMPACT_MIN_BYTES: u64 = 8 << 20;

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
    /// Atomically replaces the log with `snapshot`.
    fn rewrite(&self, snapshot: &[LogEntry]) -> Result<(), StorageError>;
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
    fn rewrite(&self, _: &[LogEntry]) -> Result<(), StorageError> {
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

/// Encodes one frame.
pub(crate) fn encode_frame(entries: &[LogEntry]) -> Vec<u8> {
    let payload = serde_json::to_vec(entries).unwrap_or_default();
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes the frames of a log body (after the header): the frames that decode, and the byte
/// offset where the first one that does not starts.
pub(crate) fn decode_frames(bytes: &[u8]) -> (Vec<Vec<LogEntry>>, usize) {
    let mut frames = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        if len > MAX_FRAME || bytes.len() - at - 8 < len {
            break;
        }
        let payload = &bytes[at + 8..at + 8 + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(entries) = serde_json::from_slice::<Vec<LogEntry>>(payload) else {
            break;
        };
        frames.push(entries);
        at += 8 + len;
    }
    (frames, at)
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
        let (frames, good) = decode_frames(&bytes[12..]);
        let len = HEADER_BYTES + good as u64;
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
        let frame = encode_frame(entries);
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

    fn rewrite(&self, snapshot: &[LogEntry]) -> Result<(), StorageError> {
        let path = self.log_path();
        let tmp = self.dir.join("tables.log.tmp");
        let mut state = self.state.lock();
        if state.file.is_none() {
            return Err(StorageError::Unavailable(
                "the DynamoDB log is closed".into(),
            ));
        }
        let mut bytes = header();
        // Chunks keep frames well under the frame limit.
        for chunk in snapshot.chunks(1000) {
            bytes.extend_from_slice(&encode_frame(chunk));
        }
        let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
        file.write_all(&bytes).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_error(&path))?;
        sync_dir(&self.dir)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        file.seek(SeekFrom::End(0)).map_err(io_error(&path))?;
        state.file = Some(file);
        state.len = bytes.len() as u64;
        state.snapshot_len = state.len;
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

    #[test]
    fn frames_have_the_documented_bytes() {
        let frame = encode_frame(&[LogEntry::DeleteTable("t".into())]);
        let payload = br#"[{"DeleteTable":"t"}]"#;
        assert_eq!(&frame[..4], &(payload.len() as u32).to_le_bytes());
        assert_eq!(&frame[4..8], &crc32fast::hash(payload).to_le_bytes());
        assert_eq!(&frame[8..], payload);
        assert_eq!(header(), b"SHRDLDDB\x01\x00\x00\x00");
    }

    #[test]
    fn decoding_stops_at_a_torn_or_corrupt_frame() {
        let mut bytes = encode_frame(&[put(1)]);
        bytes.extend(encode_frame(&[put(2), put(3)]));
        let whole = bytes.len();
        let (frames, good) = decode_frames(&bytes);
        assert_eq!((frames.len(), good), (2, whole));
        let (frames, good) = decode_frames(&bytes[..whole - 1]);
        assert_eq!(frames.len(), 1);
        assert!(good < whole);
        let mut flipped = bytes.clone();
        flipped[whole - 2] ^= 1;
        assert_eq!(decode_frames(&flipped).0.len(), 1);
        // A huge length is not trusted.
        let mut huge = bytes.clone();
        huge.extend([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(decode_frames(&huge).0.len(), 2);
    }

    #[test]
    fn reopen_replays_cuts_the_tail_and_compacts() {
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
        opened.store.rewrite(&[put(3)]).unwrap();
        opened.store.append(&[put(5)]).unwrap();
        drop(opened);
        let opened = FileStore::open(dir.path(), SyncMode::Fsync).unwrap();
        assert_eq!(opened.frames, vec![vec![put(3)], vec![put(5)]]);
        assert_eq!(opened.truncated_bytes, 0);
        std::fs::write(&log, b"garbage!garbage!").unwrap();
        assert!(matches!(
            FileStore::open(dir.path(), SyncMode::Fsync),
            Err(StorageError::Corrupt { .. })
        ));
    }
}

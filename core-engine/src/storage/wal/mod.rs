//! Durable storage: a segmented write-ahead log with group commit and CRC-checked frames.
//!
//! # Directory layout
//! ```text
//! <dir>/LOCK                          locked exclusively while an engine has the directory open
//! <dir>/metadata                      the last metadata snapshot (see below)
//! <dir>/metadata.tmp                  a snapshot being written; ignored by recovery
//! <dir>/master.key                    the master key for encryption at rest, when the engine
//!                                     made it (32 raw bytes, mode 0600; see `storage::crypto`)
//! <dir>/wal/00000000000000000001.wal  segment whose first frame has LSN 1
//! <dir>/wal/00000000000000000734.wal  segment whose first frame has LSN 734
//! <dir>/wal/<20 digits>.wal.tmp       a segment being created; removed by recovery
//! <dir>/index                         the last index checkpoint (see below)
//! <dir>/index.tmp                     a checkpoint being written; ignored by recovery
//! ```
//! A segment is named by the LSN of its first frame, as 20 zero-padded decimal digits. Only the
//! newest segment is written to; it rolls over to a new one before a write once it holds at least
//! `segment_bytes` (and at least one frame), so a segment can exceed that size by one group.
//!
//! # Byte layouts
//! Every integer is little-endian. CRC32 is the IEEE polynomial (`crc32fast`, as in zlib).
//!
//! Segment header, 20 bytes, at offset 0 of every segment:
//! ```text
//! offset  size  field
//!      0     8  magic "SHRDLWAL" (53 48 52 44 4c 57 41 4c)
//!      8     4  format version, u32 = 1
//!     12     8  first LSN, u64; must equal the file name
//! ```
//! Frames follow back to back from offset 20, one per appended batch, in the CRC-framed format
//! shared with the DynamoDB log (`storage::framed`: payload length 1 ..= 64 MiB, CRC32,
//! payload); the k-th frame (from 0) of a segment has LSN `first LSN + k`:
//! ```text
//! offset  size  field
//!      0     4  payload length n, u32, 1 ..= 64 MiB
//!      4     4  CRC32 of the n payload bytes, u32
//!      8     n  payload:
//!                 0   8  stream id, u64
//!                 8   4  record count, u32
//!                12      records, back to back, each:
//!                          +0   4  shard index, u32
//!                          +4  16  sequence number, u128
//!                         +20   8  arrival time in epoch ms, i64
//!                         +28   4  partition key length k, u32
//!                         +32   k  partition key, UTF-8
//!                      +32+k   4  data length d, u32
//!                      +36+k   d  data
//! ```
//! The payload must end exactly after the last record. Stream ids are below 2^63 (they are
//! handed out from 1 upwards): the top bit of the first field marks a sealed payload instead.
//!
//! Sealed payload: the batch of a stream encrypted at rest (appended with
//! [`Storage::append_sealed`]), AES-256-GCM under the stream's data key:
//! ```text
//! offset  size  field
//!      0     8  stream id with bit 63 set, u64
//!      8     8  newest arrival time of the batch's records in epoch ms, i64, in the clear so
//!               that retention can release segments without the key
//!     16    12  nonce, random for each frame
//!     28     m  ciphertext of the record count and the records, laid out as in a plain payload
//!               from its offset 8 on
//!   28+m    16  GCM tag; bytes 0..16 are the associated data, so they are authenticated too
//! ```
//! So a sealed frame shows the stream, the batch's size and its newest arrival time, never a
//! partition key, sequence number or byte of data. Frames of unencrypted streams are written
//! exactly as before encryption existed, and old data directories load unchanged.
//!
//! The data key lives in the metadata snapshot, in the stream's entry, wrapped by the master key
//! (`"encryption": {"key_id": "...", "data_key": "<base64 of nonce, encrypted key, tag>"}`,
//! absent for a stream never encrypted). Recovery hands sealed batches back unopened
//! ([`RecoveredBatch::sealed`](super::RecoveredBatch)); the engine opens them once it has
//! unwrapped the keys, and a master key that does not unwrap them stops it with
//! [`StorageError::Key`] before any record is read.
//!
//! Metadata file, `<dir>/metadata`:
//! ```text
//! offset  size  field
//!      0     8  magic "SHRDLMET" (53 48 52 44 4c 4d 45 54)
//!      8     4  format version, u32 = 1
//!     12     8  snapshot length n, u64; the file is exactly 24 + n bytes
//!     20     4  CRC32 of the snapshot, u32
//!     24     n  the snapshot (opaque to the storage)
//! ```
//! It is replaced atomically: written to `metadata.tmp`, synced, renamed over `metadata`, and the
//! directory synced. A file that fails any check is [`StorageError::Corrupt`], never half-read.
//!
//! Index checkpoint file, `<dir>/index`, written by [`Storage::save_checkpoint`]:
//! ```text
//! offset  size  field
//!      0     8  magic "SHRDLIDX" (53 48 52 44 4c 49 44 58)
//!      8     4  format version, u32 = 1
//!     12     8  covered LSN, u64: the checkpoint summarises every batch up to it
//!     20     8  body length n, u64; the file is exactly 32 + n bytes
//!     28     4  CRC32 of the body, u32
//!     32     n  body:
//!                 segment count, u32; per segment closed when the checkpoint was taken and
//!                 holding only frames up to the covered LSN:
//!                   first LSN u64, length in bytes u64,
//!                   frame count f u32, then f frame offsets u64 (the frame of LSN first + k
//!                   starts at offset k),
//!                   stream count s u32, then s pairs (stream id u64, newest arrival ms i64)
//!                 index length m, u64, then m bytes: the engine's record index (opaque here;
//!                 see `Registry::encode_index`: per stream and shard, 39 bytes a record:
//!                 sequence number u128, arrival ms i64, LSN u64, key length u16, data length
//!                 u32, encrypted flag u8)
//! ```
//! It is replaced atomically like the metadata (`index.tmp`, sync, rename, directory sync). A
//! checkpoint only summarises the log, which stays complete, so one that fails a check is
//! ignored with a warning and the whole log is replayed; one whose covered LSN is beyond the end
//! of the log (OsBuffered, then a power loss took the tail) is removed before anything is
//! appended, so it never meets reused LSNs. The engine saves one when the log has grown by
//! 256 MiB, and by four times the last checkpoint's size, since the last one (checked with
//! retention), and when it stops cleanly.
//!
//! # Reading records back
//! For every live segment the storage keeps the offset of each frame (8 bytes a batch; rebuilt
//! by recovery, or taken from the checkpoint). [`Storage::read_batch`] finds the frame of an
//! LSN, reads it with one positioned read, checks its CRC and decodes it (a sealed batch comes
//! back sealed, for the engine to open). A frame of a released segment reads as `None`.
//!
//! # Group commit
//! [`Storage::append`] encodes the frame, then under one mutex assigns the next LSN and appends
//! the frame to a pending buffer (so buffer order is LSN order), wakes the writer thread and
//! returns the LSN. The writer (a plain thread doing blocking I/O) takes everything pending,
//! writes it with a single `write_all`, syncs once for the whole group (in [`SyncMode::Fsync`]),
//! then publishes the group's last LSN as [`Durability::durable_lsn`]. Appends arriving meanwhile
//! form the next group, so one sync covers as many batches as arrived during the previous one.
//! A failed write or sync sets [`Durability::failure`] and stops the writer: no later append is
//! accepted and nothing after the failure is ever reported durable (a failed `fsync` is not
//! retried, since a retry can succeed without the data having reached the disk).
//!
//! New segments are created atomically (header written and synced under a `.tmp` name, renamed,
//! directory synced) after syncing the segment they replace, in both sync modes, so only the last
//! segment can end in a torn write.
//!
//! # Sync modes
//! - [`SyncMode::Fsync`]: a batch is durable once `fdatasync` returned for its group. Survives
//!   power loss.
//! - [`SyncMode::OsBuffered`]: a batch is durable once `write` returned for its group. Survives a
//!   crash of the process (the kernel still holds the data), not of the machine. Segments are
//!   still synced at rollover, on close, and at recovery.
//!
//! # Ordering rule: metadata first
//! The log holds records; the metadata holds the streams and shards they belong to. A change of
//! topology (CreateStream, DeleteStream, SplitShard, MergeShards, UpdateShardCount, on-demand
//! scale-out) is saved in the metadata — synced and renamed into place — before it takes effect
//! in memory; while it is being saved, puts to the stream wait, and a new stream is not in the
//! registry yet. So every record in the log was routed by a topology the metadata on disk
//! already describes, and a crash at any point leaves either the old or the new metadata, both
//! consistent with the log. Stream ids come from a high-water mark saved with the stream that
//! uses one, and recovery also continues above every id in the log, so an id is never reused. A
//! metadata save that fails at or after its rename leaves unknown which snapshot a restart
//! finds, so it fails the storage like a failed `fsync` (see `Kinesis::reshape` and the
//! crash-point tests in `crash_tests.rs`).
//!
//! The same rule covers encryption: StartStreamEncryption saves the metadata holding the
//! stream's wrapped data key before the key is used, so every sealed frame in the log has its
//! key on disk, whatever point a crash hits (`start_and_stop_encryption_at_every_crash_point`).
//!
//! # Recovery
//! [`Storage::recover_each`] (or [`Storage::recover`]) must run once, after [`FileStorage::open`]
//! and before the first append (appends before it fail with [`StorageError::Unavailable`], since
//! the log position is not known yet). It hands over the metadata, then the index checkpoint if
//! there is one, then the batches after the checkpoint's LSN one at a time (a segment is in
//! memory only while it is read). Segments the checkpoint lists as closed are not read at all:
//! their frame table comes from it; the others are read in LSN order, with the torn-tail policy of
//! `storage::framed`: in the last segment an incomplete last frame (running past the end
//! of the file, or followed only by zeros) is cut there and synced, and the cut size is reported
//! as [`Recovery::truncated_bytes`]. Any other frame that does not read back (a CRC mismatch of
//! a complete frame, a bad length, a malformed payload, a bad frame in any earlier segment), a
//! bad segment header, or segments whose LSNs overlap are [`StorageError::Corrupt`] naming the
//! file and offset, and nothing is changed: dropping acknowledged data is never silent.
//! Gaps between segments are legal: [`Storage::release`] may delete any closed segment. The next
//! append gets the LSN after the last intact frame.
//!
//! # File operations
//! Every file operation goes through `fs::FileSystem`, so the crash-point tests can run this
//! code on a simulated disk that fails or crashes at any write, sync, rename or directory sync.
//!
//! # Release
//! For every segment the storage keeps (and rebuilds at recovery) the newest arrival time of each
//! stream with records in it. A closed segment is deleted when
//! [`RetentionView::still_needed`] is false for all of them; the segment being written never is.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::crypto::DataKey;
use super::{
    Durability, Lsn, RecoveredBatch, Recovery, RecoverySink, RetentionView, ShardRecord, Storage,
    StorageError, StreamId,
};

mod checkpoint;
mod format;
pub(crate) mod fs;
mod metadata;
mod recovery;
mod segment;
mod writer;

#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod read_tests;
#[cfg(test)]
pub(crate) mod sim_fs;
#[cfg(test)]
mod tests;

use writer::{Phase, Queue, Shared};

/// When an append counts as durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// `fdatasync` before acknowledging (group commit keeps it fast). Survives power loss.
    #[default]
    Fsync,
    /// `write` before acknowledging, no sync. Survives a crash of the process, not of the machine.
    OsBuffered,
}

/// Options for [`FileStorage`].
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// When an append counts as durable.
    pub sync: SyncMode,
    /// Size at which the log rolls over to a new segment file.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            sync: SyncMode::Fsync,
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Storage in a data directory: a segmented write-ahead log plus a metadata file; see the
/// [module docs](self) for the format and rules. Call [`Storage::recover`] once before appending.
pub struct FileStorage {
    dir: PathBuf,
    shared: Arc<Shared>,
    /// The writer thread, once recovery started it. Also serialises `recover` and `close`.
    control: Mutex<Option<JoinHandle<()>>>,
    /// Serialises metadata saves (they share `metadata.tmp`).
    metadata_lock: Mutex<()>,
    /// Serialises releases.
    release_lock: Mutex<()>,
    /// Serialises checkpoints (they share `index.tmp`).
    checkpoint_lock: Mutex<()>,
    /// An exclusive lock on `<dir>/LOCK`, held until close, so that two engines never share a
    /// data directory.
    dir_lock: Mutex<Option<Box<dyn Send + Sync>>>,
}

impl fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStorage")
            .field("dir", &self.dir)
            .field("sync", &self.shared.sync)
            .field("segment_bytes", &self.shared.segment_bytes)
            .finish_non_exhaustive()
    }
}

impl FileStorage {
    /// Opens (creating if needed) the data directory. Reads nothing yet: see [`Storage::recover`].
    ///
    /// # Errors
    /// [`StorageError::Io`] if the directory or its `wal/` subdirectory cannot be created or synced.
    pub fn open(dir: &Path, options: WalOptions) -> Result<Self, StorageError> {
        Self::open_in(Arc::new(fs::OsFs), dir, options)
    }

    /// [`FileStorage::open`] on the file system `fs`.
    pub(crate) fn open_in(
        fs: Arc<dyn fs::FileSystem>,
        dir: &Path,
        options: WalOptions,
    ) -> Result<Self, StorageError> {
        let wal_dir = dir.join("wal");
        fs.create_dir_all(&wal_dir).map_err(io_error(&wal_dir))?;
        let lock_path = dir.join("LOCK");
        let lock = fs.lock(&lock_path).map_err(|err| match err.kind() {
            io::ErrorKind::WouldBlock => StorageError::Unavailable(
                format!(
                    "data directory {} is in use by another engine",
                    dir.display()
                )
                .into(),
            ),
            _ => io_error(&lock_path)(err),
        })?;
        // Makes the creation of `wal/` itself durable.
        sync_dir(&*fs, dir)?;
        let (durability, _) = watch::channel(Durability::default());
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                batches: Vec::new(),
                next_lsn: 1,
                phase: Phase::Unrecovered,
                failure: None,
            }),
            wake: Condvar::new(),
            durability,
            segments: Mutex::new(Vec::new()),
            sync: options.sync,
            segment_bytes: options.segment_bytes,
            wal_dir,
            fs,
            group_syncs: AtomicU64::new(0),
            appended: AtomicU64::new(0),
            #[cfg(test)]
            hooks: writer::TestHooks::default(),
        });
        Ok(Self {
            dir: dir.to_owned(),
            shared,
            control: Mutex::new(None),
            metadata_lock: Mutex::new(()),
            release_lock: Mutex::new(()),
            checkpoint_lock: Mutex::new(()),
            dir_lock: Mutex::new(Some(lock)),
        })
    }

    /// Group syncs done so far.
    #[cfg(test)]
    fn group_syncs(&self) -> u64 {
        self.shared
            .group_syncs
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Encodes one batch (sealed under `key` if given) and queues it for the writer.
    fn append_frame(
        &self,
        stream: StreamId,
        records: &[ShardRecord],
        key: Option<&DataKey>,
    ) -> Result<Lsn, StorageError> {
        let mut frame = Vec::new();
        format::encode_frame(stream, records, key, &mut frame).map_err(|len| {
            let msg = format!(
                "batch payload of {len} bytes exceeds the {} byte frame limit",
                format::MAX_PAYLOAD_LEN
            );
            io_error(&self.shared.wal_dir)(io::Error::new(io::ErrorKind::InvalidInput, msg))
        })?;
        let newest = records.iter().map(|r| r.record.arrival_ms).max();
        self.shared.push(&frame, stream, newest)
    }

    /// Closed segments (all but the one being written), each with what release needs.
    fn closed_segments(&self) -> Vec<segment::SegmentInfo> {
        let segments = self.shared.segments.lock();
        let closed = segments.len().saturating_sub(1);
        segments.iter().take(closed).cloned().collect()
    }
}

impl Storage for FileStorage {
    fn append(&self, stream: StreamId, records: &[ShardRecord]) -> Result<Lsn, StorageError> {
        self.append_frame(stream, records, None)
    }

    fn append_sealed(
        &self,
        stream: StreamId,
        records: &[ShardRecord],
        key: &DataKey,
    ) -> Result<Lsn, StorageError> {
        self.append_frame(stream, records, Some(key))
    }

    fn durability(&self) -> watch::Receiver<Durability> {
        self.shared.durability.subscribe()
    }

    fn save_metadata(&self, snapshot: &[u8]) -> Result<(), StorageError> {
        let _guard = self.metadata_lock.lock();
        if let Some(failure) = &self.shared.queue.lock().failure {
            return Err(StorageError::Unavailable(failure.clone()));
        }
        let fs = &*self.shared.fs;
        metadata::write_tmp(fs, &self.dir, snapshot)?;
        // Once the rename is under way, a failure leaves it unknown which snapshot a restart
        // finds, so the engine must not acknowledge anything more (as after a failed fsync).
        metadata::install(fs, &self.dir).inspect_err(|err| self.shared.fail(err))
    }

    fn recover_each(&self, sink: &mut RecoverySink<'_>) -> Result<Recovery, StorageError> {
        let mut control = self.control.lock();
        match self.shared.queue.lock().phase {
            Phase::Unrecovered => {}
            Phase::Open => {
                return Err(StorageError::Unavailable("recover() already ran".into()));
            }
            Phase::Closed => return Err(StorageError::Unavailable("storage is closed".into())),
        }
        let found = recovery::run(&*self.shared.fs, &self.dir, &self.shared.wal_dir, sink)?;
        *self.shared.segments.lock() = found.segments;
        // Everything recovered is on disk (recovery synced the last segment).
        self.shared.durability.send_replace(Durability {
            durable_lsn: found.next_lsn - 1,
            failure: None,
        });
        *control = Some(writer::spawn(self.shared.clone(), found.active)?);
        let mut queue = self.shared.queue.lock();
        queue.next_lsn = found.next_lsn;
        queue.phase = Phase::Open;
        Ok(found.recovery)
    }

    fn read_batch(&self, lsn: Lsn) -> Result<Option<RecoveredBatch>, StorageError> {
        let found = {
            let segments = self.shared.segments.lock();
            let at = segments.partition_point(|seg| seg.first_lsn <= lsn);
            at.checked_sub(1)
                .and_then(|i| segments.get(i))
                .and_then(|seg| Some((seg.path.clone(), seg.frame(lsn)?)))
        };
        let Some((path, (offset, len))) = found else {
            return Ok(None);
        };
        let buf = match self.shared.fs.read_at(&path, offset, len) {
            Ok(buf) => bytes::Bytes::from(buf),
            // Released meanwhile: retention no longer needs it.
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_error(&path)(err)),
        };
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.clone(),
            reason: format!("frame of LSN {lsn} at offset {offset}: {reason}"),
        };
        let (payload, _) = super::framed::read_frame(&buf).map_err(|e| corrupt(e.to_string()))?;
        format::decode_payload(&buf.slice(payload))
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }

    fn save_checkpoint(&self, covered: Lsn, index: &[u8]) -> Result<(), StorageError> {
        let _guard = self.checkpoint_lock.lock();
        // Segments closed later hold frames past `covered`: recovery scans those.
        let closed: Vec<_> = self
            .closed_segments()
            .into_iter()
            .filter(|seg| seg.first_lsn + seg.frames.len() as u64 <= covered + 1)
            .collect();
        checkpoint::write(&*self.shared.fs, &self.dir, covered, &closed, index)
    }

    fn appended_bytes(&self) -> u64 {
        self.shared
            .appended
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn release(&self, view: &dyn RetentionView) -> Result<u64, StorageError> {
        let _guard = self.release_lock.lock();
        // The view is consulted without holding the segment list, which the writer also locks.
        let victims: Vec<_> = self
            .closed_segments()
            .into_iter()
            .filter(|seg| {
                seg.newest
                    .iter()
                    .all(|(&stream, &ms)| !view.still_needed(stream, ms))
            })
            .collect();
        if victims.is_empty() {
            return Ok(0);
        }
        // Closed segments never change and only release removes them, so the snapshot holds.
        self.shared
            .segments
            .lock()
            .retain(|seg| !victims.iter().any(|v| v.first_lsn == seg.first_lsn));
        let mut freed = 0;
        for seg in &victims {
            self.shared
                .fs
                .remove(&seg.path)
                .map_err(io_error(&seg.path))?;
            freed += seg.bytes;
        }
        sync_dir(&*self.shared.fs, &self.shared.wal_dir)?;
        Ok(freed)
    }

    fn close(&self) -> Result<(), StorageError> {
        let mut control = self.control.lock();
        self.shared.queue.lock().phase = Phase::Closed;
        self.shared.wake.notify_all();
        if let Some(handle) = control.take() {
            handle
                .join()
                .map_err(|_| StorageError::Unavailable("the log writer thread panicked".into()))?;
        }
        self.dir_lock.lock().take();
        match &self.shared.queue.lock().failure {
            Some(failure) => Err(StorageError::Unavailable(failure.clone())),
            None => Ok(()),
        }
    }
}

impl Drop for FileStorage {
    fn drop(&mut self) {
        if let Err(err) = self.close() {
            tracing::warn!(error = %err, "closing the write-ahead log on drop failed");
        }
    }
}

/// Maps an I/O error on `path` to a [`StorageError::Io`].
fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes entry changes in `dir` (creations, renames, deletions) durable.
fn sync_dir(fs: &dyn fs::FileSystem, dir: &Path) -> Result<(), StorageError> {
    fs.sync_dir(dir).map_err(io_error(dir))
}

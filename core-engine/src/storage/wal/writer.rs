//! Group commit: appenders queue encoded frames, one writer thread writes and syncs them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::super::{Durability, Lsn, StorageError, StreamId};
use super::format::SEGMENT_HEADER_LEN;
use super::fs::{FileSystem, WritableFile};
use super::segment::{self, SegmentInfo};
use super::{SyncMode, io_error};

/// Where the storage is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Opened; `recover` has not run, so the log position is unknown and appends are refused.
    Unrecovered,
    /// Accepting appends.
    Open,
    /// Closed: no more appends; the writer drains what is queued and stops.
    Closed,
}

/// What appenders and the writer share under one mutex.
#[derive(Debug)]
pub(super) struct Queue {
    /// Encoded frames not yet handed to the writer, in LSN order.
    pub pending: Vec<u8>,
    /// One entry per queued frame: its stream, newest arrival time (none if empty) and length.
    pub batches: Vec<(StreamId, Option<i64>, usize)>,
    /// The LSN the next append gets.
    pub next_lsn: Lsn,
    /// Life cycle.
    pub phase: Phase,
    /// Set once a write or sync failed; appends are refused from then on.
    pub failure: Option<Arc<str>>,
}

/// State shared by [`FileStorage`](super::FileStorage) and its writer thread.
#[derive(Debug)]
pub(super) struct Shared {
    /// The append queue.
    pub queue: Mutex<Queue>,
    /// Wakes the writer when frames are queued or the storage closes.
    pub wake: Condvar,
    /// The durability watermark.
    pub durability: watch::Sender<Durability>,
    /// Every live segment, oldest first; the last one is being written.
    pub segments: Mutex<Vec<SegmentInfo>>,
    /// When a group counts as durable.
    pub sync: SyncMode,
    /// Rollover threshold.
    pub segment_bytes: u64,
    /// The `wal/` directory.
    pub wal_dir: PathBuf,
    /// Where the files are.
    pub fs: std::sync::Arc<dyn FileSystem>,
    /// Group syncs done so far (not counting rollover or close syncs).
    pub group_syncs: AtomicU64,
    /// Bytes of frames appended since the storage opened.
    pub appended: AtomicU64,
    /// Fault injection and timing for tests.
    #[cfg(test)]
    pub hooks: TestHooks,
}

/// Test-only knobs of the writer.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct TestHooks {
    /// Extra milliseconds each group sync takes, to make grouping deterministic.
    pub sync_delay_ms: AtomicU64,
    /// Makes the next group sync fail.
    pub fail_sync: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Queues one encoded frame and returns its LSN.
    pub fn push(
        &self,
        frame: &[u8],
        stream: StreamId,
        newest_arrival_ms: Option<i64>,
    ) -> Result<Lsn, StorageError> {
        let mut q = self.queue.lock();
        if let Some(failure) = &q.failure {
            return Err(StorageError::Unavailable(failure.clone()));
        }
        match q.phase {
            Phase::Open => {}
            Phase::Unrecovered => {
                return Err(StorageError::Unavailable(
                    "recover() must run before the first append".into(),
                ));
            }
            Phase::Closed => return Err(StorageError::Unavailable("storage is closed".into())),
        }
        let lsn = q.next_lsn;
        q.next_lsn += 1;
        q.pending.extend_from_slice(frame);
        q.batches.push((stream, newest_arrival_ms, frame.len()));
        self.appended
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        drop(q);
        self.wake.notify_one();
        Ok(lsn)
    }

    /// Marks the log failed so that nothing more is acknowledged.
    pub fn fail(&self, err: &StorageError) {
        tracing::error!(error = %err, "write-ahead log failed; refusing further appends");
        let failure: Arc<str> = format!("write-ahead log failed: {err}").into();
        self.queue.lock().failure = Some(failure.clone());
        self.durability.send_modify(|d| d.failure = Some(failure));
    }
}

/// The segment being written.
#[derive(Debug)]
pub(super) struct Active {
    /// Open for appending.
    pub file: Box<dyn WritableFile>,
    /// Its path.
    pub path: PathBuf,
    /// Its current length.
    pub len: u64,
}

/// Starts the writer thread on `active`, the last entry of `shared.segments`.
pub(super) fn spawn(shared: Arc<Shared>, active: Active) -> Result<JoinHandle<()>, StorageError> {
    let dir = shared.wal_dir.clone();
    std::thread::Builder::new()
        .name("wal-writer".into())
        .spawn(move || Writer { shared, active }.run())
        .map_err(io_error(&dir))
}

/// Capacity the writer keeps in its group buffer between groups.
const KEPT_BUFFER_BYTES: usize = 4 * 1024 * 1024;

struct Writer {
    shared: Arc<Shared>,
    active: Active,
}

impl Writer {
    fn run(mut self) {
        let mut buf = Vec::new();
        let mut batches = Vec::new();
        loop {
            let last_lsn = {
                let mut q = self.shared.queue.lock();
                while q.batches.is_empty() && q.phase != Phase::Closed {
                    self.shared.wake.wait(&mut q);
                }
                if q.batches.is_empty() {
                    break; // closed and drained
                }
                // Swapping keeps both buffers' capacity for the next rounds.
                std::mem::swap(&mut q.pending, &mut buf);
                std::mem::swap(&mut q.batches, &mut batches);
                q.next_lsn - 1
            };
            let first_lsn = last_lsn + 1 - batches.len() as u64;
            if let Err(err) = self.commit(&buf, &batches, first_lsn, last_lsn) {
                self.shared.fail(&err);
                return;
            }
            buf.clear();
            batches.clear();
            // One burst must not pin a huge buffer for the life of the process.
            buf.shrink_to(KEPT_BUFFER_BYTES);
        }
        let path = &self.active.path;
        if let Err(err) = self.active.file.sync().map_err(io_error(path)) {
            self.shared.fail(&err);
        }
    }

    /// Writes one group, syncs it if required, then publishes it as durable.
    fn commit(
        &mut self,
        buf: &[u8],
        batches: &[(StreamId, Option<i64>, usize)],
        first_lsn: Lsn,
        last_lsn: Lsn,
    ) -> Result<(), StorageError> {
        let header_only = self.active.len <= SEGMENT_HEADER_LEN as u64;
        if self.active.len >= self.shared.segment_bytes && !header_only {
            self.roll(first_lsn)?;
        }
        let path = &self.active.path;
        let start = self.active.len;
        self.active.file.write_all(buf).map_err(io_error(path))?;
        self.active.len += buf.len() as u64;
        if self.shared.sync == SyncMode::Fsync {
            self.sync_group()?;
        }
        if let Some(seg) = self.shared.segments.lock().last_mut() {
            seg.bytes = self.active.len;
            let mut offset = start;
            for &(stream, newest, len) in batches {
                seg.note(stream, newest);
                seg.frames.push(offset);
                offset += len as u64;
            }
        }
        self.shared
            .durability
            .send_modify(|d| d.durable_lsn = d.durable_lsn.max(last_lsn));
        Ok(())
    }

    fn sync_group(&mut self) -> Result<(), StorageError> {
        let path = &self.active.path;
        #[cfg(test)]
        {
            let delay = self.shared.hooks.sync_delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                std::thread::sleep(std::time::Duration::from_millis(delay));
            }
            if self.shared.hooks.fail_sync.swap(false, Ordering::Relaxed) {
                return Err(io_error(path)(std::io::Error::other(
                    "injected sync failure",
                )));
            }
        }
        self.active.file.sync().map_err(io_error(path))?;
        self.shared.group_syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Closes the current segment and starts a new one whose first frame is `first_lsn`.
    fn roll(&mut self, first_lsn: Lsn) -> Result<(), StorageError> {
        // Also in OsBuffered mode: one sync per segment is cheap, and it means only the last
        // segment can ever have a torn tail.
        let path = &self.active.path;
        self.active.file.sync().map_err(io_error(path))?;
        let (file, path) = segment::create(&*self.shared.fs, &self.shared.wal_dir, first_lsn)?;
        self.shared
            .segments
            .lock()
            .push(SegmentInfo::new(first_lsn, path.clone()));
        self.active = Active {
            file,
            path,
            len: SEGMENT_HEADER_LEN as u64,
        };
        Ok(())
    }
}

//! Reading the log back at startup and cutting a torn tail.

use std::path::Path;

use super::super::{Lsn, Recovery, RecoveryEvent, RecoverySink, StorageError};
use super::format::SEGMENT_HEADER_LEN;
use super::fs::FileSystem;
use super::segment::{self, SegmentInfo};
use super::writer::Active;
use super::{checkpoint, io_error, metadata};

/// Everything [`run`] found, plus what the writer needs to continue the log.
#[derive(Debug)]
pub(super) struct Recovered {
    /// What `Storage::recover_each` returns.
    pub recovery: Recovery,
    /// Every segment, oldest first; the last one is `active`.
    pub segments: Vec<SegmentInfo>,
    /// The segment to keep appending to.
    pub active: Active,
    /// The LSN of the next append: one past the last intact frame.
    pub next_lsn: Lsn,
}

/// Reads the metadata and every segment of the data directory `dir` in LSN order, handing
/// them to `sink` (one segment is in memory at a time).
///
/// A torn last frame of the last segment (see [`framed`](super::super::framed)) is cut there and
/// the file synced. Any other bad frame would mean losing acknowledged data, so it is
/// [`StorageError::Corrupt`] and nothing is changed. LSNs must increase from segment to segment;
/// gaps are fine (retention releases whole segments, not only the oldest).
pub(super) fn run(
    fs: &dyn FileSystem,
    dir: &Path,
    wal_dir: &Path,
    sink: &mut RecoverySink<'_>,
) -> Result<Recovered, StorageError> {
    sink(RecoveryEvent::Metadata(metadata::load(fs, dir)?))?;
    let files = segment::list(fs, wal_dir)?;
    let count = files.len();
    let mut recovery = Recovery::default();
    // The last segment is always read. A checkpoint beyond the end of the log describes batches
    // a crash took back (OsBuffered, then power loss): it is removed before the log is
    // written again, so that it never meets reused LSNs.
    let mut last_scan = match files.last() {
        Some((first_lsn, path)) => Some(segment::scan(fs, path, *first_lsn)?),
        None => None,
    };
    let log_end = last_scan.as_ref().map_or(0, |s| {
        (s.info.first_lsn + s.batches.len() as u64).saturating_sub(1)
    });
    let mut checkpoint = checkpoint::load(fs, dir, wal_dir)?;
    if checkpoint.as_ref().is_some_and(|c| c.covered > log_end) {
        tracing::warn!(
            log_end,
            "the index checkpoint is ahead of the log; replaying the whole log"
        );
        checkpoint::remove(fs, dir)?;
        checkpoint = None;
    }
    let (covered, mut closed) = match checkpoint {
        Some(c) => {
            sink(RecoveryEvent::Checkpoint {
                covered: c.covered,
                index: c.index,
            })?;
            (c.covered, c.closed)
        }
        None => (0, Default::default()),
    };
    let mut segments = Vec::with_capacity(count.max(1));
    let mut next_lsn: Lsn = 1;
    for (i, (first_lsn, path)) in files.into_iter().enumerate() {
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.clone(),
            reason,
        };
        if first_lsn < next_lsn {
            return Err(corrupt(format!(
                "segment starts at LSN {first_lsn}, but the log before it reaches LSN {}",
                next_lsn - 1
            )));
        }
        if i + 1 < count {
            // A segment the checkpoint covers whole: its table stands in for a scan.
            if let Some(mut info) = closed.remove(&first_lsn) {
                info.path = path.clone();
                next_lsn = first_lsn
                    .checked_add(info.frames.len() as u64)
                    .ok_or_else(|| corrupt("LSN overflow".into()))?;
                segments.push(info);
                continue;
            }
        }
        let scan = match last_scan.take() {
            Some(scan) if i + 1 == count => scan,
            _ => segment::scan(fs, &path, first_lsn)?,
        };
        if let Some(bad) = &scan.bad {
            let offset = bad.offset;
            let err = &bad.error;
            if i + 1 != count || !bad.torn {
                return Err(corrupt(format!(
                    "bad frame at offset {offset}: {err}; only an incomplete last frame can be \
                     left by a crash, so the log was left as it is rather than cut there"
                )));
            }
            tracing::warn!(
                path = %path.display(),
                offset,
                cut_bytes = scan.file_len - scan.good_len,
                error = %err,
                "cutting a torn tail off the write-ahead log"
            );
            recovery.truncated_bytes = scan.file_len - scan.good_len;
        }
        next_lsn = first_lsn
            .checked_add(scan.batches.len() as u64)
            .ok_or_else(|| corrupt("LSN overflow".into()))?;
        for (lsn, batch) in (first_lsn..).zip(scan.batches) {
            if lsn > covered {
                sink(RecoveryEvent::Batch(lsn, batch))?;
            }
        }
        segments.push(scan.info);
    }
    let active = match segments.last() {
        Some(last) => {
            let path = &last.path;
            let mut file = fs.open_append(path).map_err(io_error(path))?;
            // Cuts the tail if there is one, and makes data that an OsBuffered run left in the
            // page cache durable before it is reported durable again.
            if recovery.truncated_bytes > 0 {
                file.truncate(last.bytes).map_err(io_error(path))?;
            }
            file.sync().map_err(io_error(path))?;
            Active {
                file,
                path: path.clone(),
                len: last.bytes,
            }
        }
        None => {
            let (file, path) = segment::create(fs, wal_dir, next_lsn)?;
            segments.push(SegmentInfo::new(next_lsn, path.clone()));
            Active {
                file,
                path,
                len: SEGMENT_HEADER_LEN as u64,
            }
        }
    };
    Ok(Recovered {
        recovery,
        segments,
        active,
        next_lsn,
    })
}

//! Reading the log back at startup and cutting a torn tail.

use std::path::Path;

use super::super::{Lsn, Recovery, RecoveryEvent, RecoverySink, StorageError};
use super::format::SEGMENT_HEADER_LEN;
use super::fs::FileSystem;
use super::segment::{self, SegmentInfo};
use super::writer::Active;
use super::{io_error, metadata};

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
        let scan = segment::scan(fs, &path, first_lsn)?;
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
            sink(RecoveryEvent::Batch(lsn, batch))?;
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

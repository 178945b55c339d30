//! Segment files: naming, listing, creation and scanning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::super::framed::{self, BadFrame};
use super::super::{Lsn, RecoveredBatch, StorageError, StreamId};
use super::format::{self, SEGMENT_HEADER_LEN};
use super::fs::{FileSystem, WritableFile};
use super::{io_error, sync_dir};

const SEGMENT_SUFFIX: &str = ".wal";
const TMP_SUFFIX: &str = ".wal.tmp";

/// What the storage remembers about one segment, for [`Storage::release`](super::Storage).
#[derive(Debug, Clone)]
pub(super) struct SegmentInfo {
    /// LSN of the segment's first frame (its file name).
    pub first_lsn: Lsn,
    /// The segment file.
    pub path: PathBuf,
    /// File size, header included.
    pub bytes: u64,
    /// For every stream with records in the segment, the newest arrival time among them.
    pub newest: HashMap<StreamId, i64>,
    /// The file offset of each frame, by LSN from `first_lsn`: the per-batch index that
    /// lets records evicted from memory be read back ([`Storage::read_batch`](super::Storage)).
    pub frames: Vec<u64>,
}

impl SegmentInfo {
    /// An empty segment (header only).
    pub fn new(first_lsn: Lsn, path: PathBuf) -> Self {
        Self {
            first_lsn,
            path,
            bytes: SEGMENT_HEADER_LEN as u64,
            newest: HashMap::new(),
            frames: Vec::new(),
        }
    }

    /// Offset and length of the frame with `lsn`, if this segment holds it.
    pub fn frame(&self, lsn: Lsn) -> Option<(u64, usize)> {
        let k = usize::try_from(lsn.checked_sub(self.first_lsn)?).ok()?;
        let start = *self.frames.get(k)?;
        let end = self.frames.get(k + 1).copied().unwrap_or(self.bytes);
        Some((start, usize::try_from(end.checked_sub(start)?).ok()?))
    }

    /// Records that the segment holds records of `stream` up to `newest_arrival_ms`.
    pub fn note(&mut self, stream: StreamId, newest_arrival_ms: Option<i64>) {
        if let Some(ms) = newest_arrival_ms {
            let slot = self.newest.entry(stream).or_insert(ms);
            *slot = (*slot).max(ms);
        }
    }
}

/// File name of the segment starting at `first_lsn`: 20 zero-padded decimal digits, so that
/// lexical and numeric order agree.
pub(super) fn file_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}{SEGMENT_SUFFIX}")
}

fn parse_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment files in `wal_dir` sorted by first LSN. Removes leftovers of interrupted segment
/// creation (`*.wal.tmp`, never renamed, so never acknowledged data) and ignores foreign files.
pub(super) fn list(
    fs: &dyn FileSystem,
    wal_dir: &Path,
) -> Result<Vec<(Lsn, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for path in fs.list(wal_dir).map_err(io_error(wal_dir))? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            tracing::warn!(path = %path.display(), "ignoring file with a non-UTF-8 name in the log");
            continue;
        };
        if name.ends_with(TMP_SUFFIX) {
            fs.remove(&path).map_err(io_error(&path))?;
        } else if let Some(lsn) = parse_file_name(&name) {
            out.push((lsn, path));
        } else {
            tracing::warn!(path = %path.display(), "ignoring unknown file in the log directory");
        }
    }
    out.sort_unstable_by_key(|(lsn, _)| *lsn);
    Ok(out)
}

/// Creates the segment starting at `first_lsn` and returns it open for appending.
///
/// The header is written and synced under a temporary name that is then renamed, and the
/// directory is synced, so a segment file either does not exist or has a complete header.
pub(super) fn create(
    fs: &dyn FileSystem,
    wal_dir: &Path,
    first_lsn: Lsn,
) -> Result<(Box<dyn WritableFile>, PathBuf), StorageError> {
    let path = wal_dir.join(file_name(first_lsn));
    let tmp = wal_dir.join(format!("{first_lsn:020}{TMP_SUFFIX}"));
    let mut file = fs.create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(&format::segment_header(first_lsn))
        .and_then(|()| file.sync())
        .map_err(io_error(&tmp))?;
    fs.rename(&tmp, &path).map_err(io_error(&path))?;
    sync_dir(fs, wal_dir)?;
    Ok((file, path))
}

/// A segment as read back from disk.
#[derive(Debug)]
pub(super) struct Scan {
    /// The intact frames, in order.
    pub batches: Vec<RecoveredBatch>,
    /// What the segment holds, per stream.
    pub info: SegmentInfo,
    /// File length as found.
    pub file_len: u64,
    /// Offset just past the last intact frame.
    pub good_len: u64,
    /// The first frame that did not read back (see [`framed`] for torn versus corrupt).
    pub bad: Option<BadFrame>,
}

/// Reads a whole segment, stopping at the first frame that does not decode.
///
/// A bad header is [`StorageError::Corrupt`] wherever the segment is: segments are created
/// atomically (see [`create`]), so a crash cannot tear one.
pub(super) fn scan(fs: &dyn FileSystem, path: &Path, first_lsn: Lsn) -> Result<Scan, StorageError> {
    let corrupt = |reason: String| StorageError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let buf = Bytes::from(fs.read(path).map_err(io_error(path))?);
    let named = format::check_segment_header(&buf).map_err(corrupt)?;
    if named != first_lsn {
        return Err(corrupt(format!(
            "header names first LSN {named}, file name says {first_lsn}"
        )));
    }
    let mut info = SegmentInfo::new(first_lsn, path.to_owned());
    let scan = framed::scan(&buf, SEGMENT_HEADER_LEN, |payload| {
        info.frames
            .push((payload.start - format::FRAME_HEADER_LEN) as u64);
        format::decode_payload(&buf.slice(payload))
    });
    // A frame whose payload did not decode is not part of the segment.
    info.frames.truncate(scan.items.len());
    for batch in &scan.items {
        let newest = match &batch.sealed {
            Some(sealed) => sealed.newest_arrival_ms,
            None => batch.records.iter().map(|r| r.record.arrival_ms).max(),
        };
        info.note(batch.stream_id, newest);
    }
    info.bytes = scan.good_len as u64;
    Ok(Scan {
        batches: scan.items,
        info,
        file_len: buf.len() as u64,
        good_len: scan.good_len as u64,
        bad: scan.bad,
    })
}

//! Index checkpoints: the engine's record index and the table of closed segments as of an LSN,
//! so that recovery replays only the log after it (see the [parent module](super)).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;

use super::super::{Lsn, StorageError};
use super::fs::FileSystem;
use super::segment::SegmentInfo;
use super::{io_error, sync_dir};

const FILE: &str = "index";
const TMP_FILE: &str = "index.tmp";
const MAGIC: [u8; 8] = *b"SHRDLIDX";
const VERSION: u32 = 1;
/// Magic (8) + version (4) + covered LSN (8) + body length (8) + CRC32 (4).
const HEADER_LEN: usize = 32;

/// A checkpoint as read back.
#[derive(Debug)]
pub(super) struct Checkpoint {
    /// Every batch up to this LSN is summarised by it.
    pub covered: Lsn,
    /// Segments closed when it was taken (all their frames are at or below `covered`), by
    /// first LSN.
    pub closed: HashMap<Lsn, SegmentInfo>,
    /// The engine's record index (opaque here).
    pub index: Vec<u8>,
}

/// Writes a checkpoint of `closed` segments and `index` covering `covered` atomically: to
/// `index.tmp`, synced, renamed over `index`, directory synced.
pub(super) fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    covered: Lsn,
    closed: &[SegmentInfo],
    index: &[u8],
) -> Result<(), StorageError> {
    let mut body = Vec::with_capacity(index.len() + 64 * closed.len() + 16);
    body.extend_from_slice(&(closed.len() as u32).to_le_bytes());
    for seg in closed {
        body.extend_from_slice(&seg.first_lsn.to_le_bytes());
        body.extend_from_slice(&seg.bytes.to_le_bytes());
        body.extend_from_slice(&(seg.frames.len() as u32).to_le_bytes());
        for offset in &seg.frames {
            body.extend_from_slice(&offset.to_le_bytes());
        }
        body.extend_from_slice(&(seg.newest.len() as u32).to_le_bytes());
        for (stream, ms) in &seg.newest {
            body.extend_from_slice(&stream.to_le_bytes());
            body.extend_from_slice(&ms.to_le_bytes());
        }
    }
    body.extend_from_slice(&(index.len() as u64).to_le_bytes());
    body.extend_from_slice(index);
    let mut file_bytes = Vec::with_capacity(HEADER_LEN + body.len());
    file_bytes.extend_from_slice(&MAGIC);
    file_bytes.extend_from_slice(&VERSION.to_le_bytes());
    file_bytes.extend_from_slice(&covered.to_le_bytes());
    file_bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file_bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    file_bytes.extend_from_slice(&body);
    let tmp = dir.join(TMP_FILE);
    let mut file = fs.create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(&file_bytes)
        .and_then(|()| file.sync())
        .map_err(io_error(&tmp))?;
    let path = dir.join(FILE);
    fs.rename(&tmp, &path).map_err(io_error(&path))?;
    sync_dir(fs, dir)
}

/// Removes the checkpoint (one the log does not reach), so that it is never used later.
pub(super) fn remove(fs: &dyn FileSystem, dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(FILE);
    match fs.remove(&path) {
        Ok(()) => sync_dir(fs, dir),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io_error(&path)(err)),
    }
}

/// Reads the checkpoint in `dir`, if any. One that fails a check is ignored with a warning:
/// a checkpoint only summarises the log, so a full replay gives the same result.
pub(super) fn load(
    fs: &dyn FileSystem,
    dir: &Path,
    wal_dir: &Path,
) -> Result<Option<Checkpoint>, StorageError> {
    let path = dir.join(FILE);
    let buf = match fs.read(&path) {
        Ok(buf) => buf,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(&path)(err)),
    };
    match decode(&buf, wal_dir) {
        Some(checkpoint) => Ok(Some(checkpoint)),
        None => {
            tracing::warn!(path = %path.display(), "ignoring an unreadable index checkpoint; replaying the whole log");
            Ok(None)
        }
    }
}

fn decode(buf: &[u8], wal_dir: &Path) -> Option<Checkpoint> {
    let mut r = Cursor(buf);
    if r.take(8)? != MAGIC || r.u32()? != VERSION {
        return None;
    }
    let covered = r.u64()?;
    let len = usize::try_from(r.u64()?).ok()?;
    let crc = r.u32()?;
    let body = r.take(len)?;
    if !r.0.is_empty() || crc32fast::hash(body) != crc {
        return None;
    }
    let mut r = Cursor(body);
    let mut closed = HashMap::new();
    for _ in 0..r.u32()? {
        let first_lsn = r.u64()?;
        let mut info = SegmentInfo::new(
            first_lsn,
            wal_dir.join(super::segment::file_name(first_lsn)),
        );
        info.bytes = r.u64()?;
        let frames = r.u32()? as usize;
        if frames > r.0.len() / 8 {
            return None;
        }
        info.frames = (0..frames).map(|_| r.u64()).collect::<Option<_>>()?;
        for _ in 0..r.u32()? {
            let stream = r.u64()?;
            let ms = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
            info.newest.insert(stream, ms);
        }
        closed.insert(first_lsn, info);
    }
    let index_len = usize::try_from(r.u64()?).ok()?;
    let index = r.take(index_len)?.to_vec();
    r.0.is_empty().then_some(Checkpoint {
        covered,
        closed,
        index,
    })
}

/// A bounds-checked reader.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

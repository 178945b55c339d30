//! The metadata snapshot file: atomic replace via a synced temporary file and a rename.

use std::io::ErrorKind;
use std::path::Path;

use super::super::StorageError;
use super::fs::FileSystem;
use super::{format, io_error, sync_dir};

const FILE: &str = "metadata";
const TMP_FILE: &str = "metadata.tmp";

/// Writes `snapshot` to the temporary file in `dir` and syncs it; [`install`] makes it the
/// snapshot. A failure here leaves the current snapshot as it was.
pub(super) fn write_tmp(
    fs: &dyn FileSystem,
    dir: &Path,
    snapshot: &[u8],
) -> Result<(), StorageError> {
    let tmp = dir.join(TMP_FILE);
    let mut file = fs.create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(&format::encode_metadata(snapshot))
        .and_then(|()| file.sync())
        .map_err(io_error(&tmp))
}

/// Renames the temporary file over the snapshot and syncs the directory; durable when this
/// returns.
pub(super) fn install(fs: &dyn FileSystem, dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(FILE);
    fs.rename(&dir.join(TMP_FILE), &path)
        .map_err(io_error(&path))?;
    sync_dir(fs, dir)
}

/// Reads the snapshot in `dir`, if one was ever saved. A leftover `metadata.tmp` is an
/// interrupted save that never took effect, so it is ignored (the next save overwrites it).
pub(super) fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    let path = dir.join(FILE);
    let buf = match fs.read(&path) {
        Ok(buf) => buf,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(&path)(err)),
    };
    format::decode_metadata(&buf)
        .map(Some)
        .map_err(|reason| StorageError::Corrupt { path, reason })
}

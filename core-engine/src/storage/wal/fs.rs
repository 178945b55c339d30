//! The file operations [`FileStorage`](super::FileStorage) uses, behind a trait, so that tests
//! can run the real storage code on a simulated disk that crashes at a chosen operation
//! (see `crash_tests`).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A directory tree with the durability rules of a POSIX file system: file data survives a power
/// loss once [`WritableFile::sync`] returned, a creation, rename or removal once
/// [`FileSystem::sync_dir`] of its directory returned.
pub(crate) trait FileSystem: Send + Sync + fmt::Debug + 'static {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The paths of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// The whole content of a file; `NotFound` if it does not exist.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// `len` bytes of a file from `offset` (a positioned read, so concurrent readers and the
    /// appending writer do not disturb each other); `UnexpectedEof` if the file is shorter.
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Creates `path` empty (truncating it if it exists), open for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Renames `from` over `to`, atomically.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Locks `path` (created if needed) exclusively until the returned guard is dropped; fails
    /// with [`io::ErrorKind::WouldBlock`] if another holder has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>>;
}

/// A file open for appending.
pub(crate) trait WritableFile: Send + fmt::Debug {
    /// Appends `buf` at the end of the file.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes; later writes go to its new end.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// The operating system's file system.
#[derive(Debug, Default)]
pub(crate) struct OsFs;

impl FileSystem for OsFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let file = File::open(path)?;
        let mut buf = vec![0; len];
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, offset)?;
        #[cfg(not(unix))]
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = file;
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(&mut buf)?;
        }
        Ok(buf)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        Ok(Box::new(OsFile(file)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(OsFile(
            OpenOptions::new().append(true).open(path)?,
        )))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        // Elsewhere directories cannot be opened as files; renames are durable by other means.
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        file.try_lock().map_err(|err| match err {
            fs::TryLockError::WouldBlock => io::ErrorKind::WouldBlock.into(),
            fs::TryLockError::Error(source) => source,
        })?;
        Ok(Box::new(file))
    }
}

/// A file of [`OsFs`].
#[derive(Debug)]
struct OsFile(File);

impl WritableFile for OsFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        // Files are opened in append mode (or written from 0 after creation), so writes follow
        // the new end without a seek.
        self.0.set_len(len)
    }
}

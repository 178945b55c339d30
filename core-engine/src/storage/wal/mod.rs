//! Durable storage: a segmented write-ahead log. (Being implemented.)

use std::path::Path;

use tokio::sync::watch;

use super::{
    Durability, Lsn, Recovery, RetentionView, ShardRecord, Storage, StorageError, StreamId,
};

// Used by `FileStorage` once it is built.
#[allow(dead_code)]
mod format;
#[cfg(test)]
mod format_tests;

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

/// Storage in a data directory.
#[derive(Debug)]
pub struct FileStorage {
    durability: watch::Sender<Durability>,
}

impl FileStorage {
    /// Opens (creating if needed) the data directory.
    pub fn open(_dir: &Path, _options: WalOptions) -> Result<Self, StorageError> {
        Err(StorageError::Unavailable(
            "durable storage is not built yet".into(),
        ))
    }
}

impl Storage for FileStorage {
    fn append(&self, _stream: StreamId, _records: &[ShardRecord]) -> Result<Lsn, StorageError> {
        Err(StorageError::Unavailable(
            "durable storage is not built yet".into(),
        ))
    }
    fn durability(&self) -> watch::Receiver<Durability> {
        self.durability.subscribe()
    }
    fn save_metadata(&self, _snapshot: &[u8]) -> Result<(), StorageError> {
        Ok(())
    }
    fn recover(&self) -> Result<Recovery, StorageError> {
        Ok(Recovery::default())
    }
    fn release(&self, _view: &dyn RetentionView) -> Result<u64, StorageError> {
        Ok(0)
    }
    fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

//! Storage that keeps nothing beyond the engine's own memory.

use tokio::sync::watch;

use super::{
    Durability, Lsn, Recovery, RecoveryEvent, RecoverySink, RetentionView, ShardRecord, Storage,
    StorageError, StreamId,
};

/// In-memory storage: appends are durable at once and a restart starts empty.
#[derive(Debug)]
pub struct MemoryStorage {
    durability: watch::Sender<Durability>,
}

impl MemoryStorage {
    /// Creates the storage.
    pub fn new() -> Self {
        let (durability, _) = watch::channel(Durability {
            durable_lsn: Lsn::MAX,
            failure: None,
        });
        Self { durability }
    }
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl Storage for MemoryStorage {
    fn append(&self, _stream: StreamId, _records: &[ShardRecord]) -> Result<Lsn, StorageError> {
        Ok(0)
    }

    /// Nothing is written, so there is nothing to encrypt.
    fn append_sealed(
        &self,
        _stream: StreamId,
        _records: &[ShardRecord],
        _key: &super::crypto::DataKey,
    ) -> Result<Lsn, StorageError> {
        Ok(0)
    }

    fn durability(&self) -> watch::Receiver<Durability> {
        self.durability.subscribe()
    }

    fn save_metadata(&self, _snapshot: &[u8]) -> Result<(), StorageError> {
        Ok(())
    }

    fn recover_each(&self, sink: &mut RecoverySink<'_>) -> Result<Recovery, StorageError> {
        sink(RecoveryEvent::Metadata(None))?;
        Ok(Recovery::default())
    }

    fn release(&self, _view: &dyn RetentionView) -> Result<u64, StorageError> {
        Ok(0)
    }

    fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

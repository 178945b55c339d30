//! Where acknowledged data lives.
//!
//! The engine indexes every stream's records per shard (`model::records`) and uses a [`Storage`]
//! to make them durable. Storage is deliberately small: it appends batches of records to a log,
//! reports how far that log is durable, stores an opaque metadata snapshot (streams, shards, tags)
//! and an opaque index checkpoint, hands everything back on recovery (one batch at a time, only
//! the log after the checkpoint), reads single batches back for records no longer cached in
//! memory ([`Storage::read_batch`]), and releases log space once retention no longer needs it.
//!
//! # Memory
//! In memory, a record costs its key and data plus a 24-byte header, packed in blocks per
//! shard; an optional cap (`EngineBuilder::max_memory_bytes`) refuses puts beyond it with
//! LimitExceededException. Durable, the headers are the shard's index into the log (a record's
//! LSN names its frame, and the log keeps each frame's offset) and the record bodies are only a
//! cache of the newest blocks, bounded by `EngineBuilder::cache_bytes`; older records are read
//! back from their segment (opened with the stream's data key if sealed).
//!
//! Two implementations exist:
//! - [`MemoryStorage`]: nothing is written anywhere; every append is durable at once.
//! - [`wal::FileStorage`]: a segmented write-ahead log with group commit and CRC-checked frames;
//!   see the [`wal`] module for the on-disk format and the ordering of metadata and records.
//!
//! Both durable logs of the engine, the write-ahead log and the DynamoDB table log, use one
//! CRC-framed format and one rule for reading it back (`framed`): an incomplete last frame is a
//! torn write and is cut; anything else unreadable stops the engine with an error.
//!
//! The records of an encrypted stream are appended with [`Storage::append_sealed`]: the log
//! holds them encrypted under the stream's data key (see [`crypto`] and the frame layout in
//! [`wal`]), and recovery hands them back as a [`SealedBatch`] for the engine to open.
//!
//! # Visibility
//! A record is readable only once its batch is durable, so a consumer never sees a record that
//! a crash could take back. Every append returns a log sequence number ([`Lsn`]); the engine tags
//! records with it and readers stop at the first record whose LSN is above
//! [`Durability::durable_lsn`].

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

pub mod crypto;
pub(crate) mod framed;
mod memory;
pub mod wal;

pub use memory::MemoryStorage;

/// Log sequence number: the position of an appended batch in the storage's log, starting at 1.
pub type Lsn = u64;

/// Identifies one incarnation of a stream: a stream deleted and created again gets a new id, so
/// records of the old one found in the log are never attached to the new one.
pub type StreamId = u64;

/// One record as the engine stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's sequence number (see `model::sequence`).
    pub sequence_number: u128,
    /// When the engine accepted the record, in epoch milliseconds.
    pub arrival_ms: i64,
    /// The partition key the producer gave.
    pub partition_key: String,
    /// The payload.
    pub data: Bytes,
    /// Whether the record was put while its stream was encrypted (its `EncryptionType` is
    /// `KMS`); the log holds such records only encrypted.
    pub encrypted: bool,
}

impl fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRecord")
            .field("sequence_number", &self.sequence_number)
            .field("arrival_ms", &self.arrival_ms)
            .field("partition_key", &self.partition_key)
            .field("data_len", &self.data.len())
            .field("encrypted", &self.encrypted)
            .finish()
    }
}

/// A record together with the index of the shard it belongs to, as appended to and recovered from
/// the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardRecord {
    /// Index of the shard within its stream (`shardId-000000000007` has index 7).
    pub shard_index: u32,
    /// The record.
    pub record: StoredRecord,
}

/// One appended batch, as recovery hands it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredBatch {
    /// The stream incarnation the records belong to.
    pub stream_id: StreamId,
    /// The records in the order they were appended; empty while `sealed`.
    pub records: Vec<ShardRecord>,
    /// The batch as the log holds it when it was appended with [`Storage::append_sealed`]:
    /// [`SealedBatch::open`] it with the stream's data key to get the records.
    pub sealed: Option<SealedBatch>,
}

/// An encrypted batch read back from the log, not yet decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBatch {
    /// The clear fields of the frame as written (stream id with its sealed flag, newest
    /// arrival time), authenticated by the seal.
    pub(crate) aad: [u8; 16],
    /// The newest arrival time of the batch's records, kept in the clear so that retention
    /// can free log space without the key.
    pub(crate) newest_arrival_ms: Option<i64>,
    pub(crate) nonce: [u8; 12],
    /// Ciphertext followed by the GCM tag.
    pub(crate) sealed: Bytes,
}

impl fmt::Debug for SealedBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedBatch")
            .field("sealed_len", &self.sealed.len())
            .finish_non_exhaustive()
    }
}

/// What [`Storage::recover`] found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// The last metadata snapshot saved, if any.
    pub metadata: Option<Vec<u8>>,
    /// The index checkpoint found (its LSN and content); `batches` hold only the log after it.
    pub checkpoint: Option<(Lsn, Vec<u8>)>,
    /// Every batch still in the log (after the checkpoint, if any), oldest first.
    pub batches: Vec<RecoveredBatch>,
    /// Bytes cut from a torn or corrupt log tail.
    pub truncated_bytes: u64,
}

/// What [`Storage::recover_each`] hands its sink.
#[derive(Debug)]
pub enum RecoveryEvent {
    /// The last metadata snapshot saved, if any; always the first event.
    Metadata(Option<Vec<u8>>),
    /// The last index checkpoint saved ([`Storage::save_checkpoint`]), if any; right after
    /// the metadata. Only batches after its LSN follow.
    Checkpoint {
        /// The LSN it covers.
        covered: Lsn,
        /// The engine's index as saved.
        index: Vec<u8>,
    },
    /// One batch still in the log and its LSN, oldest first.
    Batch(Lsn, RecoveredBatch),
}

/// Receives what recovery reads (see [`Storage::recover_each`]).
pub type RecoverySink<'a> = dyn FnMut(RecoveryEvent) -> Result<(), StorageError> + 'a;

/// How far the log is durable, published by the storage after each group commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durability {
    /// Every batch with an LSN up to this one is durable.
    pub durable_lsn: Lsn,
    /// Set once the log failed to write or sync; no later append can become durable.
    pub failure: Option<Arc<str>>,
}

/// Tells [`Storage::release`] which records are still needed.
pub trait RetentionView {
    /// Whether records of `stream` that arrived at or before `newest_arrival_ms` must be kept.
    /// Returns false once the stream is deleted or they are all past its retention period.
    fn still_needed(&self, stream: StreamId, newest_arrival_ms: i64) -> bool;
}

/// How the engine persists records and metadata; see the [module docs](self).
pub trait Storage: Send + Sync + fmt::Debug + 'static {
    /// Appends one batch of records of `stream` to the log and returns its LSN. The batch is
    /// durable once [`Storage::durability`] reports an LSN at or beyond it. Called with the
    /// stream's write lock held, so batches of one stream reach the log in sequence order.
    fn append(&self, stream: StreamId, records: &[ShardRecord]) -> Result<Lsn, StorageError>;

    /// [`Storage::append`] for a stream encrypted at rest: the batch is stored encrypted under
    /// `key`, the stream's data key, which must already be in the saved metadata (wrapped), so
    /// that recovery can open it. A storage that keeps nothing ignores `key`.
    fn append_sealed(
        &self,
        stream: StreamId,
        records: &[ShardRecord],
        key: &crypto::DataKey,
    ) -> Result<Lsn, StorageError>;

    /// A receiver of the durability watermark.
    fn durability(&self) -> watch::Receiver<Durability>;

    /// Atomically replaces the metadata snapshot; durable when this returns.
    fn save_metadata(&self, snapshot: &[u8]) -> Result<(), StorageError>;

    /// Reads back the metadata snapshot and every batch in the log, cutting a torn tail, and
    /// hands them to `sink` one at a time (the metadata first, then the batches oldest first,
    /// each with its LSN), so that a large log is never held in memory whole. The returned
    /// [`Recovery`] holds only [`Recovery::truncated_bytes`]. A sink error stops recovery.
    fn recover_each(&self, sink: &mut RecoverySink<'_>) -> Result<Recovery, StorageError>;

    /// [`Storage::recover_each`] collecting everything into one [`Recovery`].
    fn recover(&self) -> Result<Recovery, StorageError> {
        let mut metadata = None;
        let mut checkpoint = None;
        let mut batches = Vec::new();
        let found = self.recover_each(&mut |event| {
            match event {
                RecoveryEvent::Metadata(m) => metadata = m,
                RecoveryEvent::Checkpoint { covered, index } => checkpoint = Some((covered, index)),
                RecoveryEvent::Batch(_, batch) => batches.push(batch),
            }
            Ok(())
        })?;
        Ok(Recovery {
            metadata,
            checkpoint,
            batches,
            truncated_bytes: found.truncated_bytes,
        })
    }

    /// Reads back the batch with this LSN from the log, for records no longer cached in
    /// memory; `None` if the log does not hold it (released, or a storage that keeps nothing).
    /// A sealed batch comes back unopened, as in recovery.
    fn read_batch(&self, lsn: Lsn) -> Result<Option<RecoveredBatch>, StorageError> {
        let _ = lsn;
        Ok(None)
    }

    /// Saves an index checkpoint: `index`, the engine's summary of every batch up to `covered`
    /// (which must be durable), replacing the previous one. Recovery then hands it over instead
    /// of those batches. A storage that keeps nothing ignores it.
    fn save_checkpoint(&self, covered: Lsn, index: &[u8]) -> Result<(), StorageError> {
        let _ = (covered, index);
        Ok(())
    }

    /// Bytes appended to the log since it was opened, to pace checkpoints.
    fn appended_bytes(&self) -> u64 {
        0
    }

    /// Frees log space that holds only records no longer needed; returns how many bytes it freed.
    fn release(&self, view: &dyn RetentionView) -> Result<u64, StorageError>;

    /// Flushes and stops background work. Appends after this fail.
    fn close(&self) -> Result<(), StorageError>;
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O operation on the data directory failed.
    #[error("storage i/o error at {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory holds something this version cannot read.
    #[error("corrupt data in {path}: {reason}")]
    Corrupt {
        /// The file involved.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A master key is missing, malformed, or not the one that wrapped the data keys in the
    /// metadata (so encrypted records cannot be read).
    #[error("encryption key error: {0}")]
    Key(String),
    /// The log failed earlier or was closed, so it accepts no more writes.
    #[error("storage is unavailable: {0}")]
    Unavailable(Arc<str>),
}

/// Waits until the batch with `lsn` is durable, or the storage fails.
pub(crate) async fn wait_durable(
    rx: &mut watch::Receiver<Durability>,
    lsn: Lsn,
) -> Result<(), StorageError> {
    let state = rx
        .wait_for(|d| d.durable_lsn >= lsn || d.failure.is_some())
        .await
        .map_err(|_| StorageError::Unavailable("storage stopped".into()))?;
    match (&state.failure, state.durable_lsn >= lsn) {
        (_, true) => Ok(()),
        (Some(failure), false) => Err(StorageError::Unavailable(failure.clone())),
        (None, false) => unreachable!("wait_for returned before its condition held"),
    }
}

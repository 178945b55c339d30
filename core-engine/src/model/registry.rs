//! All streams of the engine, and their snapshot for the metadata file.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::storage::crypto::{DataKey, MasterKey};
use crate::storage::{Lsn, RecoveredBatch, RetentionView, StorageError, StreamId};

use super::records::{ENTRY_BYTES, Entry, RecordBacking};

use super::settings::AccountSettings;
use super::stream::{EncryptionMeta, Stream, StreamKey, StreamMeta, StreamState};

const SNAPSHOT_VERSION: u32 = 1;

/// The streams, by name (sorted, as ListStreams returns them).
#[derive(Debug)]
pub(crate) struct Registry {
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    next_id: AtomicU64,
    /// The account's settings, saved with the streams.
    pub(crate) account: Mutex<AccountSettings>,
    /// What the records of every stream share (memory accounting, the durable cache).
    pub(crate) backing: Arc<RecordBacking>,
}

/// A change about to take effect, included in a snapshot before it does (see
/// [`Kinesis::reshape`](crate::kinesis::Kinesis::reshape)).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pending<'a> {
    /// Nothing: the snapshot describes the streams as they are.
    None,
    /// A stream not yet in the registry.
    Create(&'a Stream),
    /// A stream about to be removed.
    Delete(StreamId),
    /// A stream whose shards are about to become those of the draft.
    Reshape(StreamId, &'a StreamState),
    /// A stream whose settings, tags and consumers are about to become those of the
    /// description (see [`Kinesis::keep`](crate::kinesis::Kinesis::keep)).
    Kept(StreamId, &'a StreamMeta),
    /// Account settings about to take effect.
    Account(&'a AccountSettings),
    /// A stream whose encryption setting or data key is about to change.
    Encryption(StreamId, &'a EncryptionMeta),
}

/// The metadata file's content.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    next_stream_id: StreamId,
    streams: Vec<StreamMeta>,
    #[serde(default)]
    account: AccountSettings,
}

impl Registry {
    /// An empty registry whose streams keep their records in `backing`.
    pub(crate) fn new(backing: Arc<RecordBacking>) -> Self {
        Self {
            streams: RwLock::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            account: Mutex::new(AccountSettings::default()),
            backing,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.read().get(name).cloned()
    }

    /// A fresh stream incarnation id.
    pub(crate) fn allocate_id(&self) -> StreamId {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Adds `stream`; fails with its name if the name is taken.
    pub(crate) fn insert(&self, mut stream: Stream) -> Result<Arc<Stream>, String> {
        stream.state.get_mut().attach(&self.backing);
        let mut streams = self.streams.write();
        if streams.contains_key(&stream.name) {
            return Err(stream.name);
        }
        let stream = Arc::new(stream);
        streams.insert(stream.name.clone(), stream.clone());
        Ok(stream)
    }

    pub(crate) fn remove(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.write().remove(name)
    }

    /// Streams in name order.
    pub(crate) fn list(&self) -> Vec<Arc<Stream>> {
        self.streams.read().values().cloned().collect()
    }

    /// Serialises every stream's metadata, with `pending` applied.
    pub(crate) fn snapshot(&self, pending: Pending<'_>) -> Vec<u8> {
        let mut streams: Vec<StreamMeta> = Vec::new();
        for stream in self.list() {
            let mut meta = stream.state.lock().to_meta(&stream);
            match pending {
                Pending::Delete(id) if id == stream.id => continue,
                Pending::Reshape(id, draft) if id == stream.id => meta.shards = draft.shard_metas(),
                Pending::Kept(id, kept) if id == stream.id => {
                    meta.settings = kept.settings.clone();
                    meta.tags = kept.tags.clone();
                    meta.retention_hours = kept.retention_hours;
                    meta.consumers = kept.consumers.clone();
                }
                Pending::Encryption(id, encryption) if id == stream.id => {
                    meta.encryption = Some(encryption.clone());
                }
                _ => {}
            }
            streams.push(meta);
        }
        if let Pending::Create(stream) = pending {
            streams.push(stream.state.lock().to_meta(stream));
        }
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            next_stream_id: self.next_id.load(Ordering::SeqCst),
            streams,
            account: match pending {
                Pending::Account(account) => account.clone(),
                _ => self.account.lock().clone(),
            },
        };
        serde_json::to_vec(&snapshot).expect("metadata always serialises")
    }

    /// Starts rebuilding a registry from what the log recovers (see [`Restore`]).
    pub(crate) fn restore(
        backing: Arc<RecordBacking>,
        now_ms: i64,
        metadata_path: &std::path::Path,
    ) -> Restore {
        Restore {
            registry: Self::new(backing),
            by_id: HashMap::new(),
            next_stream_id: None,
            now_ms,
            metadata_path: metadata_path.to_owned(),
        }
    }

    /// The record index of every stream, records up to LSN `upto`, for an index checkpoint:
    /// stream count (u32); per stream its id (u64) and shard count (u32); per shard its index
    /// (u32), record count (u64) and entries (see [`Entry::encode`]).
    pub(crate) fn encode_index(&self, upto: Lsn) -> Vec<u8> {
        let streams = self.list();
        let mut out = Vec::new();
        out.extend_from_slice(&(streams.len() as u32).to_le_bytes());
        for stream in streams {
            let state = stream.state.lock();
            out.extend_from_slice(&stream.id.to_le_bytes());
            out.extend_from_slice(&(state.shards.len() as u32).to_le_bytes());
            for shard in &state.shards {
                out.extend_from_slice(&shard.index.to_le_bytes());
                shard.records.encode_index(upto, &mut out);
            }
        }
        out
    }

    /// What retention still needs at `now_ms`, for releasing log space.
    pub(crate) fn retention_view(&self, now_ms: i64) -> RetentionCutoffs {
        RetentionCutoffs(
            self.list()
                .iter()
                .map(|s| (s.id, now_ms - s.state.lock().retention_ms()))
                .collect(),
        )
    }
}

/// Rebuilds the registry from a snapshot and the recovered log, batch by batch, dropping records
/// of deleted streams and records already past retention. Stream ids continue above every id the
/// snapshot or the log knows, so records left by a deleted stream never join a new one.
/// Encrypted streams' data keys are unwrapped with the master key, and their sealed batches
/// opened; a missing or wrong master key fails with [`StorageError::Key`] before any record is
/// read, other problems with [`StorageError::Corrupt`] naming the metadata file.
#[derive(Debug)]
pub(crate) struct Restore {
    registry: Registry,
    by_id: HashMap<StreamId, Arc<Stream>>,
    /// The snapshot's id high-water mark; `None` without a snapshot (no stream survives).
    next_stream_id: Option<StreamId>,
    now_ms: i64,
    metadata_path: std::path::PathBuf,
}

impl Restore {
    fn corrupt(&self, reason: String) -> StorageError {
        StorageError::Corrupt {
            path: self.metadata_path.clone(),
            reason,
        }
    }

    /// Takes the metadata snapshot (recovery hands it over before any batch).
    pub(crate) fn metadata(
        &mut self,
        snapshot: Option<&[u8]>,
        arn_of: impl Fn(&str) -> String,
        master: Option<&MasterKey>,
    ) -> Result<(), StorageError> {
        let Some(bytes) = snapshot else {
            return Ok(());
        };
        let snapshot: Snapshot = serde_json::from_slice(bytes)
            .map_err(|e| self.corrupt(format!("unreadable metadata: {e}")))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(self.corrupt(format!(
                "metadata version {} is not supported",
                snapshot.version
            )));
        }
        let registry = &self.registry;
        registry
            .next_id
            .fetch_max(snapshot.next_stream_id, Ordering::SeqCst);
        *registry.account.lock() = snapshot.account;
        self.next_stream_id = Some(snapshot.next_stream_id);
        let corrupt = |reason: String| StorageError::Corrupt {
            path: self.metadata_path.clone(),
            reason,
        };
        for meta in snapshot.streams {
            let arn = arn_of(&meta.name);
            let data_key = open_data_key(&meta, master, corrupt)?;
            if let Some(key) = &data_key {
                registry.backing.remember_key(meta.id, key.key.clone());
            }
            let stream = meta.into_stream(arn, data_key).map_err(corrupt)?;
            let stream = registry
                .insert(stream)
                .map_err(|name| corrupt(format!("stream {name} appears twice in metadata")))?;
            self.by_id.insert(stream.id, stream);
        }
        Ok(())
    }

    /// Takes an index checkpoint written by [`Registry::encode_index`] (recovery hands it over
    /// after the metadata, and then only the batches after it): the records' headers come back,
    /// their bodies stay in the log until read.
    pub(crate) fn checkpoint(&mut self, index: &[u8]) -> Result<(), StorageError> {
        let short = || self.corrupt("the index checkpoint is truncated".into());
        let mut rest = index;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or_default());
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        let streams = u32_of(take(4).ok_or_else(short)?);
        for _ in 0..streams {
            let id = u64_of(take(8).ok_or_else(short)?);
            self.registry.next_id.fetch_max(id + 1, Ordering::SeqCst);
            let stream = self.by_id.get(&id).cloned();
            let mut state = stream.as_ref().map(|s| s.state.lock());
            let cutoff = state
                .as_ref()
                .map_or(i64::MAX, |st| self.now_ms - st.retention_ms());
            let shards = u32_of(take(4).ok_or_else(short)?);
            for _ in 0..shards {
                let shard_index = u32_of(take(4).ok_or_else(short)?);
                let count = u64_of(take(8).ok_or_else(short)?);
                let mut shard = state.as_mut().and_then(|st| st.shard_mut(shard_index));
                for _ in 0..count {
                    let bytes = take(ENTRY_BYTES).ok_or_else(short)?;
                    let Some(shard) = shard.as_mut() else {
                        continue; // a stream deleted since
                    };
                    let entry = Entry::decode(bytes.try_into().unwrap_or(&[0; ENTRY_BYTES]));
                    let is_new = shard.records.last_seq().is_none_or(|last| last < entry.seq);
                    shard.last_seq = shard.last_seq.max(entry.seq);
                    if is_new && entry.arrival_ms >= cutoff {
                        shard.records.push_indexed(&entry);
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes one batch of the log, the one with `lsn`.
    pub(crate) fn batch(
        &mut self,
        lsn: Lsn,
        mut batch: RecoveredBatch,
    ) -> Result<(), StorageError> {
        self.registry
            .next_id
            .fetch_max(batch.stream_id + 1, Ordering::SeqCst);
        let Some(next_stream_id) = self.next_stream_id else {
            return Ok(());
        };
        let Some(stream) = self.by_id.get(&batch.stream_id) else {
            if batch.stream_id >= next_stream_id {
                // Left by a creation the metadata never recorded (older versions saved
                // the metadata after the stream took puts): ids continue above it.
                tracing::warn!(
                    stream_id = batch.stream_id,
                    "ignoring records of a stream the metadata does not know"
                );
            }
            return Ok(()); // deleted since
        };
        if let Some(sealed) = batch.sealed.take() {
            let key = stream.state.lock().encryption.data_key.clone();
            let Some(key) = key else {
                return Err(self.corrupt(format!(
                    "the log holds encrypted records of stream {}, which has no data key",
                    stream.name
                )));
            };
            batch.records = sealed
                .open(&key.key)
                .map_err(|reason| self.corrupt(format!("stream {}: {reason}", stream.name)))?;
        }
        let mut state = stream.state.lock();
        let cutoff = self.now_ms - state.retention_ms();
        for item in batch.records {
            let Some(shard) = state.shard_mut(item.shard_index) else {
                return Err(self.corrupt(format!(
                    "log holds a record for missing shard {} of stream {}",
                    item.shard_index, stream.name
                )));
            };
            let is_new = shard
                .records
                .last_seq()
                .is_none_or(|last| last < item.record.sequence_number);
            if is_new && item.record.arrival_ms >= cutoff {
                shard.push(item.record, lsn);
            } else {
                shard.last_seq = shard.last_seq.max(item.record.sequence_number);
            }
        }
        Ok(())
    }

    /// The rebuilt registry.
    pub(crate) fn finish(self) -> Registry {
        self.registry
    }
}

/// Unwraps the data key saved with `meta`, if it has one.
fn open_data_key(
    meta: &StreamMeta,
    master: Option<&MasterKey>,
    corrupt: impl Fn(String) -> StorageError,
) -> Result<Option<StreamKey>, StorageError> {
    use base64::Engine as _;
    let Some(text) = meta.encryption.as_ref().and_then(|e| e.data_key.as_ref()) else {
        return Ok(None);
    };
    let wrapped = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| corrupt(format!("stream {}: data key is not base64", meta.name)))?;
    let Some(master) = master else {
        return Err(StorageError::Key(format!(
            "stream {} is encrypted at rest but no master key was given and the data \
             directory has no master.key; give the key it was written with \
             (--master-key-file)",
            meta.name
        )));
    };
    let Some(raw) = master.unwrap(meta.id, &wrapped) else {
        return Err(StorageError::Key(format!(
            "the master key does not open the data key of stream {}: the data directory was \
             encrypted with another master key (or its metadata was altered); give the key it \
             was written with (--master-key-file)",
            meta.name
        )));
    };
    Ok(Some(StreamKey {
        wrapped,
        key: std::sync::Arc::new(DataKey::new(&raw)),
    }))
}

/// For each live stream, the arrival time before which its records are expired.
#[derive(Debug)]
pub(crate) struct RetentionCutoffs(HashMap<StreamId, i64>);

impl RetentionView for RetentionCutoffs {
    fn still_needed(&self, stream: StreamId, newest_arrival_ms: i64) -> bool {
        self.0
            .get(&stream)
            .is_some_and(|&cutoff| newest_arrival_ms >= cutoff)
    }
}

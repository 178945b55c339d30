//! All streams of the engine, and their snapshot for the metadata file.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::storage::{RecoveredBatch, RetentionView, StreamId};

use super::settings::AccountSettings;
use super::stream::{Stream, StreamMeta, StreamState};

const SNAPSHOT_VERSION: u32 = 1;

/// The streams, by name (sorted, as ListStreams returns them).
#[derive(Debug)]
pub(crate) struct Registry {
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    next_id: AtomicU64,
    /// The account's settings, saved with the streams.
    pub(crate) account: Mutex<AccountSettings>,
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
    pub(crate) fn new() -> Self {
        Self {
            streams: RwLock::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            account: Mutex::new(AccountSettings::default()),
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
    pub(crate) fn insert(&self, stream: Stream) -> Result<Arc<Stream>, String> {
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
                    meta.consumers = kept.consumers.clone();
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

    /// Rebuilds the registry from a snapshot and the recovered log, dropping records of deleted
    /// streams and records already past retention at `now_ms`. Stream ids continue above every
    /// id the snapshot or the log knows, so records left by a deleted stream never join a new one.
    pub(crate) fn restore(
        snapshot: Option<&[u8]>,
        batches: Vec<RecoveredBatch>,
        arn_of: impl Fn(&str) -> String,
        now_ms: i64,
    ) -> Result<Self, String> {
        let registry = Self::new();
        let highest_logged = batches.iter().map(|b| b.stream_id).max().unwrap_or(0);
        registry.next_id.store(highest_logged + 1, Ordering::SeqCst);
        let Some(bytes) = snapshot else {
            return Ok(registry);
        };
        let snapshot: Snapshot =
            serde_json::from_slice(bytes).map_err(|e| format!("unreadable metadata: {e}"))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "metadata version {} is not supported",
                snapshot.version
            ));
        }
        registry
            .next_id
            .fetch_max(snapshot.next_stream_id, Ordering::SeqCst);
        *registry.account.lock() = snapshot.account;
        let mut by_id = HashMap::new();
        for meta in snapshot.streams {
            let arn = arn_of(&meta.name);
            let stream = meta.into_stream(arn)?;
            let stream = registry
                .insert(stream)
                .map_err(|name| format!("stream {name} appears twice in metadata"))?;
            by_id.insert(stream.id, stream);
        }
        for batch in batches {
            let Some(stream) = by_id.get(&batch.stream_id) else {
                if batch.stream_id >= snapshot.next_stream_id {
                    // Left by a creation the metadata never recorded (older versions saved
                    // the metadata after the stream took puts): ids continue above it.
                    tracing::warn!(
                        stream_id = batch.stream_id,
                        "ignoring records of a stream the metadata does not know"
                    );
                }
                continue; // deleted since
            };
            let mut state = stream.state.lock();
            let cutoff = now_ms - state.retention_ms();
            for item in batch.records {
                let Some(shard) = state.shard_mut(item.shard_index) else {
                    return Err(format!(
                        "log holds a record for missing shard {} of stream {}",
                        item.shard_index, stream.name
                    ));
                };
                let is_new = shard
                    .records
                    .back()
                    .is_none_or(|e| e.record.sequence_number < item.record.sequence_number);
                if is_new && item.record.arrival_ms >= cutoff {
                    shard.push(item.record, 0);
                } else {
                    shard.last_seq = shard.last_seq.max(item.record.sequence_number);
                }
            }
        }
        Ok(registry)
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

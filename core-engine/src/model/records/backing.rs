//! The memory all shards' records share: what they hold, the in-memory cap, and in durable
//! mode the cache of block bodies and reading dropped ones back from the log.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::storage::crypto::DataKey;
use crate::storage::{Lsn, ShardRecord, Storage, StorageError, StreamId};

/// Bytes the records of an engine hold.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Record bodies (keys and data) held in memory.
    pub(super) bodies: AtomicU64,
    /// Record headers (the index).
    pub(super) index: AtomicU64,
}

impl Usage {
    pub(super) fn add(counter: &AtomicU64, before: usize, after: usize) {
        if after >= before {
            counter.fetch_add((after - before) as u64, Ordering::Relaxed);
        } else {
            counter.fetch_sub((before - after) as u64, Ordering::Relaxed);
        }
    }
}

/// A block's buffer of record bodies.
#[derive(Debug)]
pub(super) struct Body {
    pub(super) state: Mutex<BodyState>,
    pub(super) usage: Arc<Usage>,
}

#[derive(Debug)]
pub(super) enum BodyState {
    /// Still taking records.
    Open(Vec<u8>),
    /// Full; reads share it without copying. With the bytes it holds (its capacity).
    Sealed(Bytes, usize),
    /// Dropped from the cache (durable mode) or with its block.
    Evicted,
}

impl BodyState {
    pub(super) fn held(&self) -> usize {
        match self {
            Self::Open(v) => v.capacity(),
            Self::Sealed(_, held) => *held,
            Self::Evicted => 0,
        }
    }
}

impl Body {
    /// Drops the buffer; returns the bytes freed.
    pub(super) fn evict(&self) -> usize {
        let mut state = self.state.lock();
        let held = state.held();
        *state = BodyState::Evicted;
        Usage::add(&self.usage.bodies, held, 0);
        held
    }
}

/// What the records of every shard of an engine share; see the [records module docs](super).
pub(crate) struct RecordBacking {
    pub(super) usage: Arc<Usage>,
    /// In memory: the most bytes of records held before puts are refused.
    pub(super) max_memory_bytes: Option<u64>,
    /// Durable: where dropped bodies are read back from.
    pub(super) durable: Option<DurableCache>,
}

pub(super) struct DurableCache {
    pub(super) storage: Arc<dyn Storage>,
    pub(super) cache_bytes: u64,
    /// Every block body still cached, oldest first.
    pub(super) fifo: Mutex<VecDeque<Arc<Body>>>,
    /// The data keys of encrypted streams, to open sealed batches read back.
    pub(super) keys: RwLock<HashMap<StreamId, Arc<DataKey>>>,
}

impl fmt::Debug for RecordBacking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordBacking")
            .field("usage", &self.usage)
            .field("max_memory_bytes", &self.max_memory_bytes)
            .field("cache_bytes", &self.durable.as_ref().map(|d| d.cache_bytes))
            .finish()
    }
}

/// The backing of shards not yet in a registry (their records are empty).
pub(super) static UNATTACHED: LazyLock<Arc<RecordBacking>> =
    LazyLock::new(|| Arc::new(RecordBacking::memory(None)));

impl RecordBacking {
    /// In-memory records, refused beyond `max_memory_bytes` if given.
    pub(crate) fn memory(max_memory_bytes: Option<u64>) -> Self {
        Self {
            usage: Arc::default(),
            max_memory_bytes,
            durable: None,
        }
    }

    /// Records whose bodies are a cache of at most about `cache_bytes` over `storage`'s log.
    pub(crate) fn durable(storage: Arc<dyn Storage>, cache_bytes: u64) -> Self {
        Self {
            usage: Arc::default(),
            max_memory_bytes: None,
            durable: Some(DurableCache {
                storage,
                cache_bytes,
                fifo: Mutex::default(),
                keys: RwLock::default(),
            }),
        }
    }

    /// Bytes of record bodies held in memory.
    pub(crate) fn body_bytes(&self) -> u64 {
        self.usage.bodies.load(Ordering::Relaxed)
    }

    /// Bytes of record headers (the per-record index).
    pub(crate) fn index_bytes(&self) -> u64 {
        self.usage.index.load(Ordering::Relaxed)
    }

    /// Fails with a message naming the cap if the records held exceed it.
    pub(crate) fn check_cap(&self) -> Result<(), String> {
        let Some(cap) = self.max_memory_bytes else {
            return Ok(());
        };
        let held = self.body_bytes() + self.index_bytes();
        if held < cap {
            return Ok(());
        }
        Err(format!(
            "The engine holds {held} bytes of records, at or above its memory cap of {cap} bytes \
             (--max-memory-bytes, EngineBuilder::max_memory_bytes); no record is accepted until \
             retention expires records, streams are deleted, or the engine restarts with a \
             larger cap"
        ))
    }

    /// Remembers the data key of an encrypted stream, to read its sealed batches back.
    pub(crate) fn remember_key(&self, stream: StreamId, key: Arc<DataKey>) {
        if let Some(durable) = &self.durable {
            durable.keys.write().insert(stream, key);
        }
    }

    /// Makes a new block body, entering it into the cache.
    pub(super) fn new_body(&self, capacity: usize) -> Arc<Body> {
        let body = Arc::new(Body {
            state: Mutex::new(BodyState::Open(Vec::with_capacity(capacity))),
            usage: self.usage.clone(),
        });
        Usage::add(&self.usage.bodies, 0, capacity);
        if let Some(durable) = &self.durable {
            durable.fifo.lock().push_back(body.clone());
        }
        body
    }

    /// Drops the oldest cached bodies while the cache is over its size.
    pub(super) fn enforce_cache(&self) {
        let Some(durable) = &self.durable else {
            return;
        };
        if self.body_bytes() <= durable.cache_bytes {
            return;
        }
        let mut fifo = durable.fifo.lock();
        while self.body_bytes() > durable.cache_bytes {
            let Some(oldest) = fifo.pop_front() else {
                break;
            };
            oldest.evict();
        }
    }

    /// The records of the batch with `lsn`, read back from the log (opened if sealed).
    pub(super) fn load(&self, lsn: Lsn) -> Result<Vec<ShardRecord>, StorageError> {
        let Some(durable) = &self.durable else {
            return Ok(Vec::new());
        };
        let Some(mut batch) = durable.storage.read_batch(lsn)? else {
            return Ok(Vec::new());
        };
        if let Some(sealed) = batch.sealed.take() {
            let key = durable.keys.read().get(&batch.stream_id).cloned();
            let key = key.ok_or_else(|| {
                StorageError::Key(format!(
                    "no data key is known for stream id {} to read its records back",
                    batch.stream_id
                ))
            })?;
            batch.records = sealed.open(&key).map_err(StorageError::Key)?;
        }
        Ok(batch.records)
    }
}

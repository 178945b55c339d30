//! A stream: its settings, shards and the routing of new records to open shards.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::storage::crypto::DataKey;
use crate::storage::{ShardRecord, StoredRecord, StreamId};

use super::consumer::{Consumer, ConsumerMeta};
use super::hash::{HashRange, even_ranges};
use super::settings::StreamSettings;
use super::shard::Shard;

/// Retention of a new stream, and the bounds AWS allows.
pub(crate) const DEFAULT_RETENTION_HOURS: u32 = 24;
pub(crate) const MIN_RETENTION_HOURS: u32 = 24;
pub(crate) const MAX_RETENTION_HOURS: u32 = 8760;
/// Largest record (data plus partition key) a new stream accepts, and the most it may allow.
pub(crate) const DEFAULT_MAX_RECORD_KIB: u32 = 1024;
pub(crate) const LARGEST_MAX_RECORD_KIB: u32 = 10240;

/// Capacity mode of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Provisioned => "PROVISIONED",
            Self::OnDemand => "ON_DEMAND",
        }
    }
}

/// A stream. Its name, id and creation time never change; everything else sits behind one lock,
/// held briefly by each write and read, so a stream's appends are ordered.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) id: StreamId,
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) created_ms: i64,
    pub(crate) state: Mutex<StreamState>,
    /// Per-shard counters for `/metrics`, bumped without taking `state`.
    pub(crate) counters: crate::observe::StreamCounters,
}

/// The mutable part of a stream.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub(crate) mode: StreamMode,
    pub(crate) retention_hours: u32,
    pub(crate) tags: BTreeMap<String, String>,
    /// Every shard not yet expired, by index (shard `i` is at position `i`).
    pub(crate) shards: Vec<Shard>,
    /// Open shards as (first hash key, shard index), sorted, for routing.
    routing: Vec<(u128, u32)>,
    /// When UpdateShardCount last ran, for its limit of ten calls per rolling 24 hours.
    pub(crate) scalings_ms: Vec<i64>,
    /// Enhanced fan-out consumers by name.
    pub(crate) consumers: BTreeMap<String, Consumer>,
    /// Largest record the stream accepts, in KiB.
    pub(crate) max_record_size_kib: u32,
    /// True while a topology change is being saved: puts wait (see
    /// [`Kinesis::reshape`](crate::kinesis::Kinesis::reshape)).
    pub(crate) paused: watch::Sender<bool>,
    /// Set once the stream is deleted: puts that held on to it are refused.
    pub(crate) deleted: bool,
    /// Monitoring, policy, warm throughput and distribution settings.
    pub(crate) settings: StreamSettings,
    /// Server-side encryption (StartStreamEncryption, StopStreamEncryption).
    pub(crate) encryption: Encryption,
    /// Until when the stream shows UPDATING after a resharding request (kept in memory only).
    pub(crate) reshard_until_ms: i64,
}

/// A stream's server-side encryption setting, and its data key once it has one.
#[derive(Debug, Default)]
pub(crate) struct Encryption {
    /// The KMS key id StartStreamEncryption gave, while encryption is on (as requested: the
    /// stream may still be UPDATING towards it).
    pub(crate) key_id: Option<String>,
    /// Until this time the stream is UPDATING, and records put meanwhile keep the setting in
    /// force before the change (`was_on`), as AWS starts encrypting once the stream is ACTIVE.
    /// Not saved: after a restart the requested setting is in force.
    pub(crate) effective_ms: i64,
    /// Whether records were encrypted before the last change.
    pub(crate) was_on: bool,
    /// The data key sealing the stream's records in the log: made at the first
    /// StartStreamEncryption of a durable engine, and kept for the life of the stream (the
    /// log may hold records it sealed even after StopStreamEncryption).
    pub(crate) data_key: Option<StreamKey>,
    /// When encryption was started and stopped lately, for AWS's limit of 25 of each per
    /// rolling 24 hours. Not saved.
    pub(crate) starts_ms: Vec<i64>,
    pub(crate) stops_ms: Vec<i64>,
}

/// A stream's data key: as the metadata keeps it (wrapped by the master key) and ready to use.
#[derive(Clone, Debug)]
pub(crate) struct StreamKey {
    pub(crate) wrapped: Vec<u8>,
    pub(crate) key: Arc<DataKey>,
}

/// How the records of a put are stored.
#[derive(Clone, Debug)]
pub(crate) enum Sealing {
    /// Not encrypted.
    Plain,
    /// Encrypted (`EncryptionType` KMS) in an engine that stores nothing.
    Flag,
    /// Encrypted, sealed in the log under the stream's data key.
    Key(Arc<DataKey>),
}

impl Encryption {
    /// Whether the stream is UPDATING towards a new setting at `now_ms`.
    pub(crate) fn is_updating(&self, now_ms: i64) -> bool {
        now_ms < self.effective_ms
    }

    /// Whether records put at `now_ms` are encrypted.
    pub(crate) fn encrypts_at(&self, now_ms: i64) -> bool {
        if self.is_updating(now_ms) {
            self.was_on
        } else {
            self.key_id.is_some()
        }
    }

    /// How records put at `now_ms` are stored.
    pub(crate) fn sealing_at(&self, now_ms: i64) -> Sealing {
        match (self.encrypts_at(now_ms), &self.data_key) {
            (false, _) => Sealing::Plain,
            (true, None) => Sealing::Flag,
            (true, Some(key)) => Sealing::Key(key.key.clone()),
        }
    }

    /// The saved form; `None` for a stream never encrypted, so its metadata stays as before.
    pub(crate) fn to_meta(&self) -> Option<EncryptionMeta> {
        use base64::Engine as _;
        if self.key_id.is_none() && self.data_key.is_none() {
            return None;
        }
        Some(EncryptionMeta {
            key_id: self.key_id.clone(),
            data_key: self
                .data_key
                .as_ref()
                .map(|k| base64::engine::general_purpose::STANDARD.encode(&k.wrapped)),
        })
    }
}

/// The saved form of [`Encryption`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct EncryptionMeta {
    /// The KMS key id while encryption is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_id: Option<String>,
    /// The stream's data key wrapped by the master key, base64 (see `storage::crypto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) data_key: Option<String>,
}

impl Stream {
    /// A new stream with `shard_count` shards over even hash ranges.
    pub(crate) fn new(
        id: StreamId,
        name: String,
        arn: String,
        mode: StreamMode,
        shard_count: u32,
        created_ms: i64,
    ) -> Self {
        let shards = even_ranges(shard_count)
            .into_iter()
            .zip(0..)
            .map(|(range, index)| Shard::new(index, range, created_ms))
            .collect();
        let state = StreamState::new(mode, DEFAULT_RETENTION_HOURS, BTreeMap::new(), shards);
        Self {
            id,
            name,
            arn,
            created_ms,
            state: Mutex::new(state),
            counters: Default::default(),
        }
    }
}

impl StreamState {
    pub(crate) fn new(
        mode: StreamMode,
        retention_hours: u32,
        tags: BTreeMap<String, String>,
        shards: Vec<Shard>,
    ) -> Self {
        let mut state = Self {
            mode,
            retention_hours,
            tags,
            shards,
            routing: Vec::new(),
            scalings_ms: Vec::new(),
            consumers: BTreeMap::new(),
            max_record_size_kib: DEFAULT_MAX_RECORD_KIB,
            paused: watch::channel(false).0,
            deleted: false,
            settings: StreamSettings::default(),
            encryption: Encryption::default(),
            reshard_until_ms: 0,
        };
        state.rebuild_routing();
        state
    }

    /// A copy of the stream's topology (shards without their records, and the scaling
    /// history), to plan a change on while the stream is paused.
    pub(crate) fn draft(&self) -> StreamState {
        let shards = self
            .shards
            .iter()
            .map(|s| Shard {
                index: s.index,
                hash_range: s.hash_range,
                parent: s.parent,
                adjacent_parent: s.adjacent_parent,
                starting_seq: s.starting_seq,
                ending_seq: s.ending_seq,
                last_seq: s.last_seq,
                records: Default::default(),
                throttle: Default::default(),
                appended: Default::default(),
            })
            .collect();
        let mut draft = StreamState::new(self.mode, self.retention_hours, BTreeMap::new(), shards);
        draft.scalings_ms = self.scalings_ms.clone();
        draft
    }

    /// Takes on the topology of `draft`, a [`StreamState::draft`] of this state changed by
    /// resharding: closes the shards it closed (waking their readers) and adds the shards it
    /// opened.
    pub(crate) fn adopt(&mut self, draft: StreamState) {
        for shape in draft.shards {
            match self.shards.get_mut(shape.index as usize) {
                Some(live) => {
                    if live.ending_seq.is_none() && shape.ending_seq.is_some() {
                        live.ending_seq = shape.ending_seq;
                        live.last_seq = live.last_seq.max(shape.last_seq);
                        live.appended.notify_waiters();
                    }
                }
                None => {
                    let mut shape = shape;
                    if let Some(backing) = self.shards.first().map(|s| s.records.backing().clone())
                    {
                        shape.records.attach(&backing);
                    }
                    self.shards.push(shape);
                }
            }
        }
        self.scalings_ms = draft.scalings_ms;
        self.rebuild_routing();
    }

    /// Makes the shards' records count against `backing` (see [`super::records`]).
    pub(crate) fn attach(&mut self, backing: &Arc<super::records::RecordBacking>) {
        for shard in &mut self.shards {
            shard.records.attach(backing);
        }
    }

    /// Recomputes the routing table; call after shards open or close.
    pub(crate) fn rebuild_routing(&mut self) {
        self.routing = self
            .shards
            .iter()
            .filter(|s| s.is_open())
            .map(|s| (s.hash_range.start, s.index))
            .collect();
        self.routing.sort_unstable();
    }

    /// The open shard that owns `hash`.
    pub(crate) fn route(&self, hash: u128) -> u32 {
        // Open shards tile the whole hash space, so the last range starting at or below `hash`
        // contains it.
        let at = self.routing.partition_point(|&(start, _)| start <= hash);
        self.routing[at.saturating_sub(1)].1
    }

    pub(crate) fn open_shard_count(&self) -> usize {
        self.routing.len()
    }

    pub(crate) fn shard(&self, index: u32) -> Option<&Shard> {
        self.shards.get(index as usize)
    }

    pub(crate) fn shard_mut(&mut self, index: u32) -> Option<&mut Shard> {
        self.shards.get_mut(index as usize)
    }

    pub(crate) fn max_record_bytes(&self) -> usize {
        self.max_record_size_kib as usize * 1024
    }

    pub(crate) fn retention_ms(&self) -> i64 {
        i64::from(self.retention_hours) * 3_600_000
    }

    /// Assigns shards and sequence numbers to new records, in order. Each item is
    /// `(hash key, partition key, data)`. With `limited`, a record over its shard's write
    /// throughput is refused and gives the index of that shard instead. Records are marked
    /// encrypted if the stream encrypts at `now_ms`.
    pub(crate) fn assign(
        &mut self,
        items: impl IntoIterator<Item = (u128, String, bytes::Bytes)>,
        now_ms: i64,
        limited: bool,
    ) -> Vec<Result<ShardRecord, u32>> {
        let encrypted = self.encryption.encrypts_at(now_ms);
        items
            .into_iter()
            .map(|(hash, partition_key, data)| {
                let size = partition_key.len() + data.len();
                let shard_index = if self.distributes_automatically() {
                    self.next_auto_shard(size, now_ms, limited)?
                } else {
                    let index = self.route(hash);
                    let shard = &mut self.shards[index as usize];
                    if limited && !shard.throttle.admit_write(size, now_ms) {
                        return Err(index);
                    }
                    index
                };
                let shard = &mut self.shards[shard_index as usize];
                let seq = shard.next_sequence(now_ms);
                Ok(ShardRecord {
                    shard_index,
                    record: StoredRecord {
                        sequence_number: seq.to_u128(),
                        arrival_ms: seq.time_ms,
                        partition_key,
                        data,
                        encrypted,
                    },
                })
            })
            .collect()
    }

    /// The open shard an AUTO-distributed record of `size` bytes goes to: the open shards take
    /// turns, and one over its write limit (with `limited`) is passed over, so records spread
    /// evenly over the capacity there is. Gives the shard whose turn it was if all are over.
    fn next_auto_shard(&mut self, size: usize, now_ms: i64, limited: bool) -> Result<u32, u32> {
        let open = self.routing.len();
        let start = self.settings.auto_cursor % open;
        for step in 0..open {
            let index = self.routing[(start + step) % open].1;
            if !limited
                || self.shards[index as usize]
                    .throttle
                    .admit_write(size, now_ms)
            {
                self.settings.auto_cursor = (start + step + 1) % open;
                return Ok(index);
            }
        }
        self.settings.auto_cursor = (start + 1) % open;
        Err(self.routing[start].1)
    }

    /// Drops records past retention at `now_ms`.
    pub(crate) fn trim(&mut self, now_ms: i64) -> usize {
        let cutoff = now_ms - self.retention_ms();
        self.shards.iter_mut().map(|s| s.trim(cutoff)).sum()
    }

    /// The metadata snapshot of the shards.
    pub(crate) fn shard_metas(&self) -> Vec<ShardMeta> {
        self.shards
            .iter()
            .map(|s| ShardMeta {
                index: s.index,
                hash_range: s.hash_range,
                parent: s.parent,
                adjacent_parent: s.adjacent_parent,
                starting_seq: s.starting_seq.to_string(),
                ending_seq: s.ending_seq.map(|n| n.to_string()),
                last_seq: s.last_seq.to_string(),
            })
            .collect()
    }

    /// The metadata snapshot of this stream.
    pub(crate) fn to_meta(&self, stream: &Stream) -> StreamMeta {
        StreamMeta {
            id: stream.id,
            name: stream.name.clone(),
            created_ms: stream.created_ms,
            mode: self.mode,
            retention_hours: self.retention_hours,
            tags: self.tags.clone(),
            shards: self.shard_metas(),
            max_record_size_kib: self.max_record_size_kib,
            consumers: self.consumers.values().map(Consumer::to_meta).collect(),
            settings: self.settings.clone(),
            encryption: self.encryption.to_meta(),
        }
    }
}

/// The persistent description of a stream, saved in the metadata snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StreamMeta {
    pub(crate) id: StreamId,
    pub(crate) name: String,
    pub(crate) created_ms: i64,
    pub(crate) mode: StreamMode,
    pub(crate) retention_hours: u32,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) shards: Vec<ShardMeta>,
    #[serde(default)]
    pub(crate) consumers: Vec<ConsumerMeta>,
    #[serde(default = "default_max_record_kib")]
    pub(crate) max_record_size_kib: u32,
    #[serde(default)]
    pub(crate) settings: StreamSettings,
    /// Absent for a stream never encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) encryption: Option<EncryptionMeta>,
}

fn default_max_record_kib() -> u32 {
    DEFAULT_MAX_RECORD_KIB
}

/// The persistent description of a shard. Sequence numbers are decimal strings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ShardMeta {
    pub(crate) index: u32,
    pub(crate) hash_range: HashRange,
    pub(crate) parent: Option<u32>,
    pub(crate) adjacent_parent: Option<u32>,
    pub(crate) starting_seq: String,
    pub(crate) ending_seq: Option<String>,
    /// Highest sequence number handed out when the snapshot was taken, so numbers never go
    /// back even after the log holding the records is released.
    pub(crate) last_seq: String,
}

impl StreamMeta {
    /// Rebuilds the stream, without records, from its snapshot; `data_key` is its data key,
    /// unwrapped by the caller (which holds the master key).
    pub(crate) fn into_stream(
        self,
        arn: String,
        data_key: Option<StreamKey>,
    ) -> Result<Stream, String> {
        // Only numbers this engine made are valid: the shard continues counting from them.
        let parse = |text: &str| -> Result<u128, String> {
            text.parse()
                .ok()
                .filter(|&n| super::sequence::SequenceNumber::from_u128(n).is_some())
                .ok_or_else(|| format!("bad sequence number {text:?} in stream {}", self.name))
        };
        let mut shards = Vec::with_capacity(self.shards.len());
        for meta in &self.shards {
            let starting_seq = parse(&meta.starting_seq)?;
            shards.push(Shard {
                index: meta.index,
                hash_range: meta.hash_range,
                parent: meta.parent,
                adjacent_parent: meta.adjacent_parent,
                starting_seq,
                ending_seq: meta.ending_seq.as_deref().map(parse).transpose()?,
                last_seq: parse(&meta.last_seq)?.max(starting_seq),
                records: Default::default(),
                throttle: Default::default(),
                appended: Default::default(),
            });
        }
        let mut state = StreamState::new(self.mode, self.retention_hours, self.tags, shards);
        state.consumers = self
            .consumers
            .into_iter()
            .map(|c| (c.name.clone(), Consumer::from_meta(c)))
            .collect();
        state.max_record_size_kib = self.max_record_size_kib;
        state.settings = self.settings;
        state.encryption.key_id = self.encryption.and_then(|e| e.key_id);
        state.encryption.data_key = data_key;
        Ok(Stream {
            id: self.id,
            name: self.name,
            arn,
            created_ms: self.created_ms,
            state: Mutex::new(state),
            counters: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hash::partition_key_hash;

    #[test]
    fn routes_every_hash_to_the_shard_that_owns_it() {
        let stream = Stream::new(1, "s".into(), "arn".into(), StreamMode::Provisioned, 5, 0);
        let state = stream.state.lock();
        for hash in [
            0,
            1,
            u128::MAX / 5,
            u128::MAX / 5 + 1,
            u128::MAX / 2,
            u128::MAX,
        ] {
            let index = state.route(hash);
            assert!(
                state.shards[index as usize].hash_range.contains(hash),
                "hash {hash}"
            );
        }
        let key_hash = partition_key_hash("user-42");
        assert!(
            state.shards[state.route(key_hash) as usize]
                .hash_range
                .contains(key_hash)
        );
    }

    #[test]
    fn assigned_sequence_numbers_increase_per_shard() {
        let stream = Stream::new(1, "s".into(), "arn".into(), StreamMode::Provisioned, 1, 0);
        let mut state = stream.state.lock();
        let items = (0..3).map(|i| (0u128, format!("k{i}"), bytes::Bytes::new()));
        let assigned: Vec<_> = state
            .assign(items, 10, true)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(
            assigned
                .windows(2)
                .all(|w| w[0].record.sequence_number < w[1].record.sequence_number)
        );
        assert!(
            assigned
                .iter()
                .all(|r| r.shard_index == 0 && r.record.arrival_ms == 10)
        );
    }

    #[test]
    fn snapshot_round_trips() {
        let stream = Stream::new(9, "s".into(), "arn".into(), StreamMode::OnDemand, 4, 123);
        let meta = stream.state.lock().to_meta(&stream);
        let json = serde_json::to_string(&meta).unwrap();
        let back: StreamMeta = serde_json::from_str(&json).unwrap();
        let rebuilt = back.into_stream("arn".into(), None).unwrap();
        let (a, b) = (stream.state.lock(), rebuilt.state.lock());
        assert_eq!(a.shards.len(), b.shards.len());
        assert_eq!(a.shards[3].hash_range, b.shards[3].hash_range);
        assert_eq!(a.shards[3].starting_seq, b.shards[3].starting_seq);
        assert_eq!(b.mode, StreamMode::OnDemand);
    }
}

//! Delivery of a channel's records to the directory standing in for S3.
//!
//! Layout under the channel directory:
//! - `<bucket>/<channel-name>/<batch>.jsonl`: one object per batch, `<batch>` its number from 1,
//!   20 digits (so names sort in delivery order). Each line is one record:
//!   `{"StreamARN", "ShardId", "SequenceNumber", "PartitionKey", "ApproximateArrivalTimestamp"
//!   (epoch seconds), "Data" (base64)}`, whatever the RecordFormatType (the engine does not parse
//!   record data). Records are in shard order, then sequence order.
//! - `.state/<channel-name>.json` (durable engine only): the definition and delivery progress.
//!
//! A channel starts at the stream's tip when created (shards that appear later, by resharding,
//! from their start). A batch is cut when its oldest record has waited `DataFreshnessInSeconds`
//! on the engine clock, or at once when [`BATCH_BYTES`] or [`BATCH_RECORDS`] are waiting.
//! Only records durable in the log are delivered.
//!
//! Guarantee (durable engine): each record put and acknowledged while the channel is ACTIVE is
//! delivered in exactly one batch, across restarts, as long as it is still within the stream's
//! retention when delivery reaches it and the objects are left in place. A batch is written to a
//! temporary name and renamed (the commit point); on start, batches beyond the saved progress
//! (written just before a crash) are read back to advance it, so none is written twice.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::kinesis::Kinesis;
use crate::model::shard::{ReadLimits, parse_shard_id, shard_id};
use crate::model::stream::{Stream, StreamState};
use crate::protocol::json::{Base64Out, Timestamp};
use crate::storage::{StorageError, StoredRecord};

use super::shapes::ChannelDef;

/// A batch is cut at once when this many bytes (data and partition keys) wait.
pub(crate) const BATCH_BYTES: usize = 5 << 20;
/// A batch is cut at once when this many records wait.
pub(crate) const BATCH_RECORDS: usize = 10_000;
const STATE_DIR: &str = ".state";

/// How far a channel has delivered.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Progress {
    /// Batches written so far (the number of the last one).
    batches: u64,
    /// Per shard index, the position (sequence number) to deliver from next.
    cursors: BTreeMap<u32, String>,
}

impl Progress {
    /// Progress that starts at the tip of every shard of the stream, numbering batches after
    /// `batches`.
    pub(crate) fn at_tip(state: &StreamState, batches: u64) -> Self {
        Self {
            batches,
            cursors: state
                .shards
                .iter()
                .map(|s| (s.index, s.latest_position().to_string()))
                .collect(),
        }
    }

    fn cursor(&self, shard: u32) -> u128 {
        self.cursors
            .get(&shard)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    fn advance(&mut self, shard: u32, sequence: u128) {
        if sequence + 1 > self.cursor(shard) {
            self.cursors.insert(shard, (sequence + 1).to_string());
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    definition: ChannelDef,
    progress: Progress,
}

/// The directory standing in for S3, and where a durable engine keeps channel state.
#[derive(Debug)]
pub(crate) struct ChannelDir {
    root: PathBuf,
    durable: bool,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, synced when `durable`.
fn write_atomically(path: &Path, bytes: &[u8], durable: bool) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    if durable {
        file.sync_all().map_err(io(&tmp))?;
    }
    drop(file);
    fs::rename(&tmp, path).map_err(io(path))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

impl ChannelDir {
    pub(crate) fn new(root: PathBuf, durable: bool) -> Result<Self, StorageError> {
        Ok(Self { root, durable })
    }

    /// The directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn state_path(&self, name: &str) -> PathBuf {
        self.root.join(STATE_DIR).join(format!("{name}.json"))
    }

    fn objects(&self, def: &ChannelDef) -> PathBuf {
        self.root.join(def.bucket()).join(&def.name)
    }

    /// Saves a channel's definition and progress (a durable engine only), before it is visible.
    pub(crate) fn save(&self, def: &ChannelDef, progress: &Progress) -> Result<(), StorageError> {
        if !self.durable {
            return Ok(());
        }
        let state = StateFile {
            definition: def.clone(),
            progress: progress.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&state).unwrap_or_default();
        write_atomically(&self.state_path(&def.name), &bytes, true)
    }

    /// Forgets a deleted channel's state; its delivered objects stay.
    pub(crate) fn forget(&self, name: &str) -> Result<(), StorageError> {
        if !self.durable {
            return Ok(());
        }
        let path = self.state_path(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().unwrap_or(&self.root)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The channels saved in the directory, each with its progress brought up to the batches
    /// found written.
    pub(crate) fn restore(&self) -> Result<Vec<(ChannelDef, Progress)>, StorageError> {
        let dir = self.root.join(STATE_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut channels = Vec::new();
        for entry in entries {
            let path = entry.map_err(io(&dir))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = fs::read(&path).map_err(io(&path))?;
            let state: StateFile =
                serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
                    path: path.clone(),
                    reason: format!("channel state: {e}"),
                })?;
            let mut progress = state.progress;
            if self.catch_up(&state.definition, &mut progress)? {
                self.save(&state.definition, &progress)?;
            }
            channels.push((state.definition, progress));
        }
        Ok(channels)
    }

    /// Advances `progress` past batches written after it was saved; whether any was found.
    fn catch_up(&self, def: &ChannelDef, progress: &mut Progress) -> Result<bool, StorageError> {
        let mut found = false;
        loop {
            let path = self.objects(def).join(batch_name(progress.batches + 1));
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
                Err(e) => return Err(io(&path)(e)),
            };
            for line in text.lines() {
                let record: LineIn =
                    serde_json::from_str(line).map_err(|e| StorageError::Corrupt {
                        path: path.clone(),
                        reason: format!("channel batch: {e}"),
                    })?;
                let shard = parse_shard_id(&record.shard_id);
                if let (Some(shard), Ok(seq)) = (shard, record.sequence_number.parse()) {
                    progress.advance(shard, seq);
                }
            }
            progress.batches += 1;
            found = true;
        }
    }

    /// The highest batch number among the objects in the channel's directory (0 if none), so
    /// that a channel created again under a name numbers its batches after those of before.
    pub(crate) fn last_batch(&self, def: &ChannelDef) -> u64 {
        let Ok(entries) = fs::read_dir(self.objects(def)) else {
            return 0;
        };
        entries
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.strip_suffix(".jsonl")?.parse::<u64>().ok()
            })
            .max()
            .unwrap_or(0)
    }

    /// Writes batch `number` of a channel.
    fn write_batch(
        &self,
        def: &ChannelDef,
        number: u64,
        records: &[(u32, StoredRecord)],
    ) -> Result<PathBuf, StorageError> {
        let mut body = Vec::new();
        for (shard, record) in records {
            let line = LineOut {
                stream_arn: &def.stream.stream_arn,
                shard_id: shard_id(*shard),
                sequence_number: record.sequence_number.to_string(),
                partition_key: &record.partition_key,
                approximate_arrival_timestamp: Timestamp(record.arrival_ms),
                data: Base64Out(&record.data),
            };
            serde_json::to_writer(&mut body, &line).unwrap_or_default();
            body.push(b'\n');
        }
        let path = self.objects(def).join(batch_name(number));
        write_atomically(&path, &body, self.durable)?;
        Ok(path)
    }
}

fn batch_name(number: u64) -> String {
    format!("{number:020}.jsonl")
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LineOut<'a> {
    #[serde(rename = "StreamARN")]
    stream_arn: &'a str,
    shard_id: String,
    sequence_number: String,
    partition_key: &'a str,
    approximate_arrival_timestamp: Timestamp,
    data: Base64Out<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LineIn {
    shard_id: String,
    sequence_number: String,
}

/// The records a channel has waiting, up to one batch, and whether more wait beyond it.
///
/// Each shard's part is planned under the stream's lock and read after it, so records no
/// longer cached come back from the log without holding up the stream's puts and reads. A
/// record that does not read back (logged) ends its shard's part before it; the shard's cursor
/// stays there, so the next delivery round tries it again and no record is skipped, while the
/// other shards go on.
fn waiting(
    stream: &Stream,
    progress: &Progress,
    durable_lsn: crate::storage::Lsn,
    now_ms: i64,
) -> (Vec<(u32, StoredRecord)>, bool) {
    let mut records = Vec::new();
    let mut bytes = 0usize;
    // A stream's shards are only ever appended: a position names the same shard throughout.
    for at in 0.. {
        let (shard, read, more) = {
            let state = stream.state.lock();
            let Some(shard) = state.shards.get(at) else {
                break;
            };
            let room = BATCH_RECORDS - records.len();
            if room == 0 || bytes >= BATCH_BYTES {
                return (records, true);
            }
            let limits = ReadLimits {
                max_records: room,
                max_bytes: BATCH_BYTES - bytes,
                durable_lsn,
            };
            let read = shard.plan_read(progress.cursor(shard.index), limits, now_ms);
            let peek = ReadLimits {
                max_records: 1,
                max_bytes: usize::MAX,
                durable_lsn,
            };
            let more = !shard
                .plan_read(read.next_position(), peek, now_ms)
                .is_empty();
            (shard.index, read, more)
        };
        // Delivery runs on a blocking thread: the log is read in place.
        let mut batch = read.finish();
        let failed = batch.failure.take().is_some();
        bytes += batch
            .records
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum::<usize>();
        records.extend(batch.records.into_iter().map(|r| (shard, r)));
        if more && !failed {
            return (records, true);
        }
    }
    (records, false)
}

impl Kinesis {
    /// Writes every batch that is due, for every ACTIVE channel; gives how many were written.
    pub(crate) fn deliver_channels(&self) -> Result<usize, StorageError> {
        let Some(dir) = self.channels.dir.get() else {
            return Ok(0);
        };
        let mut written = 0;
        for channel in self.active_channels() {
            // Holding the progress lock keeps DeleteChannel from finishing meanwhile.
            let mut progress = channel.progress.lock();
            let def = channel.def.lock().clone();
            if def.deleting_ms.is_some() {
                continue;
            }
            let Some(stream) = self.registry.get(def.stream_name()) else {
                continue;
            };
            loop {
                let now = self.now_ms();
                let (records, full) = waiting(&stream, &progress, self.durable_lsn(), now);
                let oldest = records.iter().map(|(_, r)| r.arrival_ms).min();
                let due = full || oldest.is_some_and(|at| now - at >= def.freshness_ms());
                if records.is_empty() || !due {
                    break;
                }
                let number = progress.batches + 1;
                let path = dir.write_batch(&def, number, &records)?;
                progress.batches = number;
                for (shard, record) in &records {
                    progress.advance(*shard, record.sequence_number);
                }
                written += 1;
                tracing::debug!(channel = %def.name, path = %path.display(), records = records.len(), "delivered batch");
                if let Err(error) = dir.save(&def, &progress) {
                    // The batch itself is the commit point; a restart reads it back.
                    tracing::warn!(channel = %def.name, %error, "could not save channel progress");
                }
                if !full {
                    break;
                }
            }
        }
        Ok(written)
    }
}

/// Delivers what is due (run periodically by the engine).
pub(crate) fn deliver_due(kinesis: &Kinesis) -> Result<usize, StorageError> {
    kinesis.deliver_channels()
}

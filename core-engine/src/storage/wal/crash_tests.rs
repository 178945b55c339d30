//! Crash-point tests: every topology change runs on a [`SimFs`] that fails, or crashes at, each
//! of its operations in turn; the engine is then recovered from what the disk kept and checked.
//!
//! Checked after every crash: the data directory opens; every acknowledged record is in the
//! stream incarnation it was put to, on the shard it was acknowledged on, whose hash range holds
//! its key; no stream holds records of another incarnation (ids are never reused); a stream whose
//! creation or puts were acknowledged, and whose deletion was not, exists; a stream created
//! after recovery and a second recovery pick up no stray records. With encryption: every record
//! acknowledged as encrypted comes back (so its data key was on disk before it), marked
//! encrypted, and its data is nowhere in the clear in the log.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};

use super::SyncMode;
use super::sim_fs::{CrashImage, SimFs};
use crate::clock::{Clock, ManualClock};
use crate::error::ApiError;
use crate::kinesis::{Kinesis, dispatch};
use crate::model::hash::partition_key_hash;
use crate::model::shard::shard_id;

use crate::kinesis::sim_service::{DATA_DIR, durable_service};

/// One request of a scenario.
#[derive(Clone, Copy, Debug)]
enum Step {
    Create(&'static str, u32),
    CreateOnDemand(&'static str),
    Put(&'static str, usize),
    /// Puts 500 records with one key (a shard takes 1,000 a second).
    HotPut(&'static str),
    /// Gives the shard of that key five seconds of throttled writes, as on-demand scaling needs
    /// (the rule itself is tested with the capacity tests).
    Overload(&'static str),
    Split(&'static str, u32),
    Merge(&'static str, u32, u32),
    Scale(&'static str, u32),
    Delete(&'static str),
    /// StartStreamEncryption: makes the stream's data key, saved before any record uses it.
    Encrypt(&'static str),
    /// StopStreamEncryption.
    Decrypt(&'static str),
    /// Saves an index checkpoint (as retention's check and a clean stop do).
    Checkpoint,
}

use Step::*;

/// What the client saw acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// The incarnation each name is at, counting CreateStream calls sent (from 1).
    generation: HashMap<&'static str, u32>,
    /// Incarnations whose creation or a put was acknowledged.
    alive: Vec<(&'static str, u32)>,
    /// Incarnations whose deletion was acknowledged.
    deleted: Vec<(&'static str, u32)>,
    /// Incarnations whose deletion failed: an error other than a validation error leaves the
    /// outcome unknown, as in AWS.
    maybe_deleted: Vec<(&'static str, u32)>,
    /// Record data -> (stream, incarnation, shard index, sequence number).
    records: HashMap<String, (&'static str, u32, u32, u128)>,
    next_key: usize,
    /// Open shards of each stream at the end of the run.
    open_shards: HashMap<String, usize>,
    /// Record data acknowledged with `EncryptionType` KMS.
    encrypted: Vec<String>,
}

fn service(fs: &SimFs, sync: SyncMode, clock: &Arc<ManualClock>) -> Option<Arc<Kinesis>> {
    durable_service(fs, sync, clock.clone()).map(Arc::new)
}

async fn call(kinesis: &Kinesis, operation: &str, body: Value) -> Result<Value, ApiError> {
    let out = dispatch(kinesis, operation, body.to_string().as_bytes()).await;
    out.map(|bytes| serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Runs `steps` against a fresh engine on `fs`, noting what was acknowledged.
async fn run(steps: &[Step], fs: &SimFs, sync: SyncMode) -> Acked {
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let mut acked = Acked::default();
    let Some(kinesis) = service(fs, sync, &clock) else {
        return acked;
    };
    for &step in steps {
        match step {
            Create(name, _) | CreateOnDemand(name) => {
                let generation = acked.generation.entry(name).or_default();
                *generation += 1;
                let generation = *generation;
                let body = match step {
                    Create(_, shards) => json!({"StreamName": name, "ShardCount": shards}),
                    _ => {
                        json!({"StreamName": name, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}})
                    }
                };
                match call(&kinesis, "CreateStream", body).await {
                    Ok(_) => acked.alive.push((name, generation)),
                    // The name is still taken: the incarnation did not change.
                    Err(ApiError::ResourceInUse(_)) => {
                        acked.generation.insert(name, generation - 1);
                    }
                    Err(_) => {}
                }
            }
            Put(name, _) | HotPut(name) => {
                let generation = acked.generation.get(name).copied().unwrap_or_default();
                let mut data = Vec::new();
                let entries: Vec<Value> = match step {
                    Put(_, n) => (0..n)
                        .map(|_| {
                            acked.next_key += 1;
                            format!("k{}", acked.next_key)
                        })
                        .collect::<Vec<_>>(),
                    _ => vec!["hot".to_owned(); 500],
                }
                .into_iter()
                .map(|key| {
                    acked.next_key += 1;
                    let text = format!("{name}#{generation}#{}#{key}", acked.next_key);
                    let blob = base64::engine::general_purpose::STANDARD.encode(&text);
                    data.push(text);
                    json!({"PartitionKey": key, "Data": blob})
                })
                .collect();
                let body = json!({"StreamName": name, "Records": entries});
                let Ok(out) = call(&kinesis, "PutRecords", body).await else {
                    continue;
                };
                let encrypted = out["EncryptionType"] == "KMS";
                for (result, text) in out["Records"].as_array().into_iter().flatten().zip(data) {
                    let (Some(shard), Some(seq)) = (
                        result["ShardId"].as_str(),
                        result["SequenceNumber"].as_str(),
                    ) else {
                        continue; // refused: throttled
                    };
                    let index = crate::model::shard::parse_shard_id(shard).expect("shard id");
                    let seq = seq.parse().expect("sequence number");
                    if encrypted {
                        acked.encrypted.push(text.clone());
                    }
                    acked.records.insert(text, (name, generation, index, seq));
                    if !acked.alive.contains(&(name, generation)) {
                        acked.alive.push((name, generation));
                    }
                }
            }
            Split(name, shard) => {
                let body = json!({
                    "StreamName": name,
                    "ShardToSplit": shard_id(shard),
                    "NewStartingHashKey": (1u128 << 126).to_string(),
                });
                let _ = call(&kinesis, "SplitShard", body).await;
            }
            Merge(name, a, b) => {
                let body = json!({
                    "StreamName": name,
                    "ShardToMerge": shard_id(a),
                    "AdjacentShardToMerge": shard_id(b),
                });
                let _ = call(&kinesis, "MergeShards", body).await;
            }
            Scale(name, target) => {
                let body = json!({
                    "StreamName": name,
                    "TargetShardCount": target,
                    "ScalingType": "UNIFORM_SCALING",
                });
                let _ = call(&kinesis, "UpdateShardCount", body).await;
            }
            Delete(name) => {
                let generation = acked.generation.get(name).copied().unwrap_or_default();
                match call(&kinesis, "DeleteStream", json!({"StreamName": name})).await {
                    Ok(_) => acked.deleted.push((name, generation)),
                    Err(_) => acked.maybe_deleted.push((name, generation)),
                }
            }
            Encrypt(name) | Decrypt(name) => {
                let operation = match step {
                    Encrypt(_) => "StartStreamEncryption",
                    _ => "StopStreamEncryption",
                };
                let body = json!({
                    "StreamName": name,
                    "EncryptionType": "KMS",
                    "KeyId": "alias/aws/kinesis",
                });
                let _ = call(&kinesis, operation, body).await;
            }
            Checkpoint => {
                let _ = kinesis.checkpoint();
            }
            Overload(name) => {
                let Some(stream) = kinesis.registry.get(name) else {
                    continue;
                };
                let mut state = stream.state.lock();
                let index = state.route(partition_key_hash("hot"));
                let now = clock.now_ms();
                let throttle = &mut state.shards[index as usize].throttle;
                for second in (1..=5).rev() {
                    // Takes the second's whole allowance; the last call is refused.
                    while throttle.admit_write(0, now - second * 1_000) {}
                }
            }
        }
    }
    for stream in kinesis.registry.list() {
        let open = stream.state.lock().open_shard_count();
        acked.open_shards.insert(stream.name.clone(), open);
    }
    acked
}

/// Recovers from `fs` and checks every invariant; panics with `context` on a violation.
async fn check(fs: &SimFs, acked: &Acked, context: &str) {
    let clock = Arc::new(ManualClock::new(1_750_000_100_000));
    let kinesis = service(fs, SyncMode::Fsync, &clock)
        .unwrap_or_else(|| panic!("{context}: the data directory does not open"));
    let mut found: HashMap<&str, u32> = HashMap::new();
    let mut present: HashMap<String, &str> = HashMap::new();
    for stream in kinesis.registry.list() {
        let state = stream.state.lock();
        let mut generations = Vec::new();
        for shard in &state.shards {
            let everything = crate::model::shard::ReadLimits {
                max_records: usize::MAX,
                max_bytes: usize::MAX,
                durable_lsn: u64::MAX,
            };
            for record in &shard.read(0, everything, 0).records {
                let text = std::str::from_utf8(&record.data).expect("utf-8");
                let mut parts = text.split('#');
                let (name, generation) = (parts.next(), parts.next());
                assert_eq!(
                    name,
                    Some(stream.name.as_str()),
                    "{context}: {text} in {}",
                    stream.name
                );
                let generation: u32 = generation.and_then(|g| g.parse().ok()).expect("tag");
                generations.push(generation);
                assert!(
                    shard
                        .hash_range
                        .contains(partition_key_hash(&record.partition_key)),
                    "{context}: {text} on shard {} outside its hash range",
                    shard.index
                );
                if let Some(&(_, _, index, seq)) = acked.records.get(text) {
                    assert_eq!(
                        (index, seq),
                        (shard.index, record.sequence_number),
                        "{context}: {text}"
                    );
                }
                if acked.encrypted.iter().any(|t| t == text) {
                    assert!(record.encrypted, "{context}: {text} lost its encryption");
                }
                present.insert(text.to_owned(), "");
            }
        }
        generations.sort_unstable();
        generations.dedup();
        assert!(
            generations.len() <= 1,
            "{context}: {} mixes incarnations {generations:?}",
            stream.name
        );
        if let Some(&generation) = generations.first() {
            let name = *acked
                .generation
                .keys()
                .find(|n| **n == stream.name)
                .expect("known name");
            assert!(
                !acked.deleted.contains(&(name, generation)),
                "{context}: deleted {name} came back"
            );
            found.insert(name, generation);
        }
    }
    for &(name, generation) in &acked.alive {
        let superseded = acked
            .alive
            .iter()
            .any(|&(n, g)| n == name && g > generation);
        let deleted = acked.deleted.contains(&(name, generation))
            || acked.maybe_deleted.contains(&(name, generation));
        if superseded || deleted {
            continue;
        }
        assert!(
            kinesis.registry.get(name).is_some(),
            "{context}: stream {name} lost"
        );
        if let Some(&got) = found.get(name) {
            assert_eq!(
                got, generation,
                "{context}: {name} holds another incarnation's records"
            );
        }
        for (text, &(stream, g, _, _)) in &acked.records {
            if (stream, g) == (name, generation) {
                assert!(
                    present.contains_key(text),
                    "{context}: acknowledged {text} lost"
                );
            }
        }
    }
    for segment in super::fs::FileSystem::list(fs, &Path::new(DATA_DIR).join("wal")).unwrap() {
        let bytes = super::fs::FileSystem::read(fs, &segment).unwrap();
        for text in &acked.encrypted {
            assert!(
                !bytes.windows(text.len()).any(|w| w == text.as_bytes()),
                "{context}: {text} is in the clear in {}",
                segment.display()
            );
        }
    }
    // A new stream, then a clean restart: no stray record joins it.
    let _ = call(
        &kinesis,
        "CreateStream",
        json!({"StreamName": "fresh", "ShardCount": 1}),
    )
    .await;
    drop(kinesis);
    let kinesis = service(fs, SyncMode::Fsync, &clock)
        .unwrap_or_else(|| panic!("{context}: the data directory does not reopen"));
    if let Some(fresh) = kinesis.registry.get("fresh") {
        let state = fresh.state.lock();
        assert!(
            state.shards.iter().all(|s| s.records.is_empty()),
            "{context}: records of an old stream joined a new one"
        );
    }
}

/// Runs `steps` failing, then crashing at, each operation in turn, in both sync modes; returns
/// what a run without failures acknowledged.
async fn every_crash_point(name: &str, steps: &[Step]) -> Acked {
    crash_points_from(name, steps, 0).await
}

/// [`every_crash_point`] from the first operation of `steps[from..]` on.
async fn crash_points_from(name: &str, steps: &[Step], from: usize) -> Acked {
    let mut clean_run = None;
    for sync in [SyncMode::Fsync, SyncMode::OsBuffered] {
        let prefix = SimFs::new(None, None);
        run(&steps[..from], &prefix, sync).await;
        let clean = SimFs::new(None, None);
        let acked = run(steps, &clean, sync).await;
        let total = clean.ops();
        for k in prefix.ops() + 1..=total {
            // One failed operation (a full disk, say), then a crash after the whole run.
            let fs = SimFs::new(None, Some(k));
            let acked = run(steps, &fs, sync).await;
            for image in images(sync, false) {
                let context = format!("{name} {sync:?}: op {k}/{total} failed, then {image:?}");
                check(&fs.image(image), &acked, &context).await;
            }
            // A crash at operation k.
            let fs = SimFs::new(Some(k), None);
            let acked = run(steps, &fs, sync).await;
            for image in images(sync, true) {
                let context = format!("{name} {sync:?}: {image:?} at op {k}/{total}");
                check(&fs.image(image), &acked, &context).await;
            }
        }
        let points = total - prefix.ops();
        println!("{name} ({sync:?}): failed and crashed at each of {points} operations");
        clean_run.get_or_insert(acked);
    }
    clean_run.expect("ran")
}

/// The crash images each sync mode must survive: OsBuffered promises only a process crash.
fn images(sync: SyncMode, torn: bool) -> Vec<CrashImage> {
    match sync {
        SyncMode::OsBuffered => vec![CrashImage::ProcessCrash],
        SyncMode::Fsync if torn => vec![
            CrashImage::PowerLoss,
            CrashImage::TornWrite,
            CrashImage::ProcessCrash,
        ],
        SyncMode::Fsync => vec![CrashImage::PowerLoss, CrashImage::ProcessCrash],
    }
}

#[tokio::test]
async fn create_stream_at_every_crash_point() {
    every_crash_point(
        "create",
        &[
            Create("a", 1),
            Put("a", 2),
            Create("b", 2),
            Put("b", 3),
            Put("a", 1),
        ],
    )
    .await;
}

#[tokio::test]
async fn split_shard_at_every_crash_point() {
    let acked = every_crash_point(
        "split",
        &[
            Create("s", 1),
            Put("s", 3),
            Split("s", 0),
            Put("s", 4),
            Put("s", 2),
        ],
    )
    .await;
    assert_eq!(acked.open_shards["s"], 2);
}

#[tokio::test]
async fn merge_shards_at_every_crash_point() {
    let acked = every_crash_point(
        "merge",
        &[Create("m", 2), Put("m", 3), Merge("m", 0, 1), Put("m", 3)],
    )
    .await;
    assert_eq!(acked.open_shards["m"], 1);
}

#[tokio::test]
async fn update_shard_count_at_every_crash_point() {
    let acked = every_crash_point(
        "update",
        &[Create("u", 2), Put("u", 3), Scale("u", 3), Put("u", 4)],
    )
    .await;
    assert_eq!(acked.open_shards["u"], 3);
}

#[tokio::test]
async fn on_demand_scaling_at_every_crash_point() {
    let steps = [
        CreateOnDemand("o"),
        Put("o", 2),
        Overload("o"),
        // The third put of a second with 1,500 records for one shard is throttled: scale-out.
        HotPut("o"),
        HotPut("o"),
        HotPut("o"),
        Put("o", 4),
    ];
    let acked = every_crash_point("on-demand", &steps).await;
    assert!(acked.open_shards["o"] > 4, "the hot shard was never split");
}

#[tokio::test]
async fn delete_stream_at_every_crash_point() {
    every_crash_point(
        "delete",
        &[
            Create("d", 1),
            Put("d", 2),
            Delete("d"),
            Create("d", 2),
            Put("d", 3),
        ],
    )
    .await;
}

#[tokio::test]
async fn start_and_stop_encryption_at_every_crash_point() {
    let acked = every_crash_point(
        "encrypt",
        &[
            Create("e", 2),
            Put("e", 2),
            Encrypt("e"),
            Put("e", 3),
            Split("e", 0),
            Put("e", 2),
            Decrypt("e"),
            Put("e", 2),
        ],
    )
    .await;
    // The clean run: the puts between start and stop, and only those, were encrypted.
    assert_eq!(acked.encrypted.len(), 5);
}

#[tokio::test]
async fn index_checkpoints_at_every_crash_point() {
    let acked = every_crash_point(
        "checkpoint",
        &[
            Create("c", 2),
            Put("c", 6),
            Checkpoint,
            Put("c", 4),
            Encrypt("c"),
            Put("c", 3),
            Checkpoint,
            Split("c", 0),
            Put("c", 3),
            Delete("c"),
            Create("c", 1),
            Put("c", 2),
            Checkpoint,
            Put("c", 2),
        ],
    )
    .await;
    assert_eq!(acked.records.len(), 20);
}

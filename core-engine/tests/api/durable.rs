//! Durable mode: data survives a clean restart and a SIGKILL in the middle of a write load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use core_engine::Engine;

use crate::common::{TestEngine, client};
use crate::support::ChildEngine;

#[tokio::test]
async fn a_restart_keeps_streams_records_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let written = {
        let engine = TestEngine::with(Engine::builder().data_dir(dir.path())).await;
        engine.create_stream("kept", 2).await;
        engine
            .client
            .add_tags_to_stream()
            .stream_name("kept")
            .tags("team", "core")
            .send()
            .await
            .unwrap();
        engine
            .client
            .increase_stream_retention_period()
            .stream_name("kept")
            .retention_period_hours(72)
            .send()
            .await
            .unwrap();
        let mut written = Vec::new();
        for i in 0..200 {
            written.push(
                engine
                    .put(
                        "kept",
                        &format!("key-{}", i % 13),
                        format!("record-{i}").as_bytes(),
                    )
                    .await,
            );
        }
        engine.create_stream("dropped", 1).await;
        engine.put("dropped", "k", b"gone").await;
        engine
            .client
            .delete_stream()
            .stream_name("dropped")
            .send()
            .await
            .unwrap();
        engine.handle.shutdown().await;
        written
    };
    let engine = TestEngine::with(Engine::builder().data_dir(dir.path())).await;
    let summary = engine
        .client
        .describe_stream_summary()
        .stream_name("kept")
        .send()
        .await
        .unwrap();
    let summary = summary.stream_description_summary.unwrap();
    assert_eq!(summary.retention_period_hours, 72);
    assert_eq!(summary.open_shard_count, 2);
    let tags = engine
        .client
        .list_tags_for_stream()
        .stream_name("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags[0].key, "team");
    assert_eq!(
        engine
            .client
            .list_streams()
            .send()
            .await
            .unwrap()
            .stream_names,
        ["kept"]
    );
    let mut read = Vec::new();
    for shard in engine.shard_ids("kept").await {
        for record in engine.read_all("kept", &shard).await {
            read.push((shard.clone(), record.sequence_number.clone()));
        }
    }
    read.sort();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(read, expected);
    // New records continue after the old ones.
    let (shard, seq) = engine.put("kept", "key-0", b"after-restart").await;
    let last_before = written
        .iter()
        .filter(|(s, _)| *s == shard)
        .map(|(_, q)| q.parse::<u128>().unwrap())
        .max()
        .unwrap();
    assert!(seq.parse::<u128>().unwrap() > last_before);
}

/// Acknowledged records per shard: (sequence number, data).
type AckedByShard = HashMap<String, Vec<(u128, Vec<u8>)>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ChildEngine::spawn(dir.path(), &["--throughput-limits", "false"]);
    let kinesis = client(&engine.endpoint);
    kinesis
        .create_stream()
        .stream_name("crash")
        .shard_count(4)
        .send()
        .await
        .unwrap();

    // Writers record what the engine acknowledged: shard -> [(sequence number, data)].
    let acked: Arc<Mutex<AckedByShard>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..4 {
        let kinesis = kinesis.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for batch in 0.. {
                let entries: Vec<_> = (0..50)
                    .map(|i| {
                        let data = format!("w{writer}-b{batch}-r{i}");
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("key-{writer}-{i}"))
                            .data(Blob::new(data))
                            .build()
                            .unwrap()
                    })
                    .collect();
                let sent: Vec<Vec<u8>> = entries.iter().map(|e| e.data.as_ref().to_vec()).collect();
                let Ok(out) = kinesis
                    .put_records()
                    .stream_name("crash")
                    .set_records(Some(entries))
                    .send()
                    .await
                else {
                    return; // the engine is gone
                };
                let mut acked = acked.lock().unwrap();
                for (result, data) in out.records.iter().zip(sent) {
                    let seq = result.sequence_number.as_deref().unwrap().parse().unwrap();
                    acked
                        .entry(result.shard_id.clone().unwrap())
                        .or_default()
                        .push((seq, data));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    engine.kill();
    for writer in writers {
        writer.await.unwrap();
    }

    let acked = Arc::try_unwrap(acked).unwrap().into_inner().unwrap();
    let total: usize = acked.values().map(Vec::len).sum();
    assert!(total > 0, "the load acknowledged nothing before the kill");

    let engine = ChildEngine::spawn(dir.path(), &["--throughput-limits", "false"]);
    let reader = TestEngine {
        handle: dummy_handle().await,
        client: client(&engine.endpoint),
    };
    for (shard, mut expected) in acked {
        expected.sort();
        let read: Vec<(u128, Vec<u8>)> = reader
            .read_all("crash", &shard)
            .await
            .into_iter()
            .map(|r| (r.sequence_number.parse().unwrap(), r.data.into_inner()))
            .collect();
        assert!(
            read.windows(2).all(|w| w[0].0 < w[1].0),
            "records of {shard} out of order"
        );
        // Every acknowledged record is there, with its data; unacknowledged ones may be too.
        let mut at = 0;
        for (seq, data) in &expected {
            let found = read[at..].iter().position(|(s, _)| s == seq);
            let index =
                found.unwrap_or_else(|| panic!("acknowledged record {seq} of {shard} was lost"));
            assert_eq!(&read[at + index].1, data);
            at += index + 1;
        }
    }
    println!("{total} acknowledged records survived SIGKILL");
}

/// Acknowledged records: (stream, shard) -> [(sequence number, data)].
type AckedByStream = HashMap<(String, String), Vec<(u128, Vec<u8>)>>;

/// Puts batches to `stream` until the engine is gone, noting what it acknowledged; a stream that
/// does not exist yet is retried.
async fn write_until_killed(
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
    acked: Arc<Mutex<AckedByStream>>,
) {
    for batch in 0u64.. {
        let entries: Vec<_> = (0..20)
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("key-{batch}-{i}"))
                    .data(Blob::new(format!("{stream}/{batch}/{i}")))
                    .build()
                    .unwrap()
            })
            .collect();
        let sent: Vec<Vec<u8>> = entries.iter().map(|e| e.data.as_ref().to_vec()).collect();
        match kinesis
            .put_records()
            .stream_name(&stream)
            .set_records(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                let mut acked = acked.lock().unwrap();
                for (result, data) in out.records.iter().zip(sent) {
                    let seq = result.sequence_number.as_deref().unwrap().parse().unwrap();
                    let shard = result.shard_id.clone().unwrap();
                    acked
                        .entry((stream.clone(), shard))
                        .or_default()
                        .push((seq, data));
                }
            }
            Err(err) if err.as_service_error().is_some() => {
                tokio::time::sleep(Duration::from_millis(2)).await; // not created yet
            }
            Err(_) => return, // the engine is gone
        }
    }
}

/// Splits and merges the open shards of `stream` and creates streams (each with a writer
/// already waiting for it), until the engine is gone.
async fn reshard_until_killed(
    kinesis: aws_sdk_kinesis::Client,
    stream: &str,
    acked: Arc<Mutex<AckedByStream>>,
) {
    for round in 0.. {
        let Ok(out) = kinesis.list_shards().stream_name(stream).send().await else {
            return;
        };
        let mut open: Vec<(u128, u128, String)> = out
            .shards
            .unwrap_or_default()
            .into_iter()
            .filter(|s| {
                s.sequence_number_range
                    .as_ref()
                    .unwrap()
                    .ending_sequence_number
                    .is_none()
            })
            .map(|s| {
                let range = s.hash_key_range.unwrap();
                (
                    range.starting_hash_key.parse().unwrap(),
                    range.ending_hash_key.parse().unwrap(),
                    s.shard_id,
                )
            })
            .collect();
        open.sort();
        let result = if round % 2 == 0 || open.len() < 2 {
            let (start, end, shard) = &open[0];
            kinesis
                .split_shard()
                .stream_name(stream)
                .shard_to_split(shard)
                .new_starting_hash_key((start + (end - start) / 2 + 1).to_string())
                .send()
                .await
                .map_err(|e| e.as_service_error().is_some())
                .map(drop)
        } else {
            kinesis
                .merge_shards()
                .stream_name(stream)
                .shard_to_merge(&open[0].2)
                .adjacent_shard_to_merge(&open[1].2)
                .send()
                .await
                .map_err(|e| e.as_service_error().is_some())
                .map(drop)
        };
        // A service error (say, a shard that just closed) is fine; no answer means the kill.
        if result == Err(false) {
            return;
        }
        let created = format!("{stream}-new-{round}");
        tokio::spawn(write_until_killed(
            kinesis.clone(),
            created.clone(),
            acked.clone(),
        ));
        if kinesis
            .create_stream()
            .stream_name(&created)
            .shard_count(2)
            .send()
            .await
            .is_err()
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_racing_splits_merges_and_creates_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ChildEngine::spawn(dir.path(), &["--throughput-limits", "false"]);
    let kinesis = client(&engine.endpoint);
    kinesis
        .create_stream()
        .stream_name("race")
        .shard_count(2)
        .send()
        .await
        .unwrap();
    let acked: Arc<Mutex<AckedByStream>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        tasks.push(tokio::spawn(write_until_killed(
            kinesis.clone(),
            "race".into(),
            acked.clone(),
        )));
    }
    let resharder = tokio::spawn({
        let (kinesis, acked) = (kinesis.clone(), acked.clone());
        async move { reshard_until_killed(kinesis, "race", acked).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    engine.kill();
    resharder.await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    // Writers of created streams end on their own once the engine is gone.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let streams: std::collections::BTreeSet<_> = acked.keys().map(|(s, _)| s.clone()).collect();
    assert!(
        streams.len() > 1,
        "no record was acknowledged on a created stream: {streams:?}"
    );

    // The directory opens (the child prints its endpoint only after recovery) and every
    // acknowledged record is on the shard it was acknowledged on.
    let engine = ChildEngine::spawn(dir.path(), &["--throughput-limits", "false"]);
    let reader = TestEngine {
        handle: dummy_handle().await,
        client: client(&engine.endpoint),
    };
    let mut total = 0;
    for ((stream, shard), expected) in acked {
        let read: std::collections::HashSet<(u128, Vec<u8>)> = reader
            .read_all(&stream, &shard)
            .await
            .into_iter()
            .map(|r| (r.sequence_number.parse().unwrap(), r.data.into_inner()))
            .collect();
        for record in &expected {
            assert!(
                read.contains(record),
                "acknowledged record {} of {stream}/{shard} was lost",
                record.0
            );
        }
        total += expected.len();
    }
    println!(
        "{total} acknowledged records in {} streams survived SIGKILL during resharding",
        streams.len()
    );
}

/// An idle in-process engine, so the child can be read with the shared helpers.
async fn dummy_handle() -> core_engine::EngineHandle {
    Engine::builder().build().unwrap().start().await.unwrap()
}

fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn retention_releases_whole_segments_and_they_stay_gone_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(core_engine::ManualClock::new(1_750_000_000_000));
    let builder = || {
        Engine::builder()
            .data_dir(dir.path())
            .clock(clock.clone())
            .wal_segment_bytes(4096)
            .retention_check_interval(Duration::from_millis(20))
    };
    let engine = TestEngine::with(builder()).await;
    engine.create_stream("short", 1).await;
    let mut last_old = 0u128;
    for i in 0..60 {
        let (_, seq) = engine
            .put("short", "k", format!("old-{i:0>200}").as_bytes())
            .await;
        last_old = seq.parse().unwrap();
    }
    let before = segment_files(dir.path()).len();
    assert!(
        before > 3,
        "small segments should have rolled over, got {before}"
    );
    // A day and an hour later the old records are past the 24-hour retention.
    clock.advance(25 * 3_600_000);
    engine.put("short", "k", b"fresh").await;
    let mut waited = 0;
    while segment_files(dir.path()).len() >= before && waited < 250 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert!(
        segment_files(dir.path()).len() < before,
        "expired segments were not released"
    );
    let records = engine.read_all("short", "shardId-000000000000").await;
    assert_eq!(records.len(), 1);
    engine.handle.shutdown().await;

    // After a restart the expired records stay gone and numbering continues upwards.
    let engine = TestEngine::with(builder()).await;
    let records = engine.read_all("short", "shardId-000000000000").await;
    assert_eq!(
        records.iter().map(|r| r.data.as_ref()).collect::<Vec<_>>(),
        [b"fresh".as_slice()]
    );
    let (_, seq) = engine.put("short", "k", b"after").await;
    assert!(seq.parse::<u128>().unwrap() > last_old);
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_everything_before_it_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TestEngine::with(Engine::builder().data_dir(dir.path())).await;
    engine.create_stream("torn", 1).await;
    for i in 0..20 {
        engine.put("torn", "k", format!("r{i}").as_bytes()).await;
    }
    engine.handle.shutdown().await;
    // A crash in the middle of a write leaves half a frame at the end of the log.
    let last = segment_files(dir.path()).pop().unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut file, &[0x40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .unwrap();
    drop(file);

    let engine = TestEngine::with(Engine::builder().data_dir(dir.path())).await;
    let records = engine.read_all("torn", "shardId-000000000000").await;
    let data: Vec<_> = records
        .iter()
        .map(|r| String::from_utf8(r.data.as_ref().to_vec()).unwrap())
        .collect();
    assert_eq!(data, (0..20).map(|i| format!("r{i}")).collect::<Vec<_>>());
    engine.put("torn", "k", b"r20").await;
    engine.handle.shutdown().await;
    let engine = TestEngine::with(Engine::builder().data_dir(dir.path())).await;
    assert_eq!(
        engine.read_all("torn", "shardId-000000000000").await.len(),
        21
    );
}

#[tokio::test]
async fn a_data_directory_serves_one_engine_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = Engine::builder()
        .data_dir(dir.path())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let second = Engine::builder()
        .data_dir(dir.path())
        .build()
        .unwrap()
        .start()
        .await;
    let error = second.expect_err("a second engine on the same directory must not start");
    assert!(
        error.to_string().contains("in use by another engine"),
        "{error}"
    );
    first.shutdown().await;
}

#[test]
fn the_binary_says_listening_only_after_recovery_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("metadata"), b"not a metadata file").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_core-engine"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("listening"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("corrupt data"), "{stderr}");
}

//! Retention's periodic check saves an index checkpoint when, and only when, the log has grown
//! by the checkpoint threshold and by four times the last checkpoint's index since the last
//! one; a restart after it replays only the log tail past it.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};

use super::fs::FileSystem;
use super::sim_fs::{CrashImage, SimFs};
use super::{FileStorage, SyncMode, WalOptions};
use crate::clock::ManualClock;
use crate::kinesis::sim_service::{DATA_DIR, durable_service};
use crate::kinesis::{Kinesis, dispatch};
use crate::storage::{Lsn, RecoveryEvent, Storage};

pub(super) async fn call(kinesis: &Kinesis, operation: &str, body: Value) -> Value {
    let out = dispatch(kinesis, operation, body.to_string().as_bytes()).await;
    let out = out.unwrap_or_else(|e| panic!("{operation}: {e:?}"));
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

/// Puts `n` records of 100 bytes to stream `s` in one call; returns the batch's LSN.
async fn put(kinesis: &Kinesis, n: usize, tag: &str) -> Lsn {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let data = format!("{tag}-{i:<96}");
            json!({
                "PartitionKey": format!("k{i}"),
                "Data": base64::engine::general_purpose::STANDARD.encode(data),
            })
        })
        .collect();
    call(
        kinesis,
        "PutRecords",
        json!({"StreamName": "s", "Records": records}),
    )
    .await;
    kinesis.durable_lsn()
}

/// The LSN the checkpoint on `fs` covers, if there is one.
fn covered(fs: &SimFs) -> Option<Lsn> {
    let buf = fs.read(&Path::new(DATA_DIR).join("index")).ok()?;
    Some(u64::from_le_bytes(buf[12..20].try_into().ok()?))
}

/// Every record of stream `s`'s only shard, read through GetRecords.
pub(super) async fn read_all(kinesis: &Kinesis) -> Vec<String> {
    let it = call(
        kinesis,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await;
    let mut iterator = it["ShardIterator"].as_str().map(str::to_owned);
    let mut out = Vec::new();
    while let Some(token) = iterator {
        let got = call(kinesis, "GetRecords", json!({"ShardIterator": token})).await;
        let records = got["Records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            break;
        }
        for r in records {
            let data = r["Data"].as_str().unwrap_or_default();
            let data = base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64");
            out.push(String::from_utf8(data).expect("utf-8"));
        }
        iterator = got["NextShardIterator"].as_str().map(str::to_owned);
    }
    out
}

#[tokio::test]
async fn retention_checkpoints_when_the_log_has_grown_enough_and_a_restart_replays_the_tail() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let mut kinesis = durable_service(&fs, SyncMode::Fsync, clock.clone()).expect("service");
    call(
        &kinesis,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 1}),
    )
    .await;
    let mut total = 0;
    for i in 0..5 {
        put(&kinesis, 10, &format!("a{i}")).await;
        total += 10;
    }

    // The default threshold (256 MiB) is far away: no checkpoint.
    kinesis.enforce_retention().expect("retention");
    assert_eq!(
        covered(&fs),
        None,
        "a checkpoint before the log grew enough"
    );

    // One byte short of a lowered threshold: still none; past it: one covering everything
    // durable.
    kinesis.checkpoint_bytes = kinesis.storage.appended_bytes() + 1;
    kinesis.enforce_retention().expect("retention");
    assert_eq!(
        covered(&fs),
        None,
        "a checkpoint one byte short of the threshold"
    );
    let lsn = put(&kinesis, 10, "b").await;
    total += 10;
    kinesis.enforce_retention().expect("retention");
    assert_eq!(covered(&fs), Some(lsn), "the threshold passed: checkpoint");
    let at = kinesis.storage.appended_bytes();
    let index_len = kinesis.registry.encode_index(lsn).len() as u64;

    // With a tiny threshold, four times the last checkpoint's index is what counts: puts one
    // at a time, and the next checkpoint comes exactly when the log has grown by that much.
    kinesis.checkpoint_bytes = 1;
    let mut last = lsn;
    let mut rewritten = false;
    for i in 0..200 {
        let lsn = put(&kinesis, 1, &format!("c{i}")).await;
        total += 1;
        kinesis.enforce_retention().expect("retention");
        let grown = kinesis.storage.appended_bytes() - at;
        if grown >= 4 * index_len {
            assert_eq!(covered(&fs), Some(lsn), "grown by {grown} of {index_len}");
            last = lsn;
            rewritten = true;
            break;
        }
        assert_eq!(
            covered(&fs),
            Some(last),
            "rewritten after {grown} of {index_len}"
        );
    }
    assert!(rewritten, "the log never grew by four times the index");

    // A tail after the checkpoint, then a crash: recovery hands over the checkpoint and only
    // the batches after it.
    kinesis.checkpoint_bytes = u64::MAX;
    let mut tail = Vec::new();
    for i in 0..3 {
        tail.push(put(&kinesis, 5, &format!("d{i}")).await);
        total += 5;
        kinesis.enforce_retention().expect("retention");
    }
    assert_eq!(
        covered(&fs),
        Some(last),
        "no checkpoint above the threshold"
    );
    let image = fs.image(CrashImage::ProcessCrash);
    drop(kinesis);
    {
        let options = WalOptions {
            sync: SyncMode::Fsync,
            segment_bytes: 4096,
        };
        let storage = FileStorage::open_in(
            Arc::new(image.image(CrashImage::ProcessCrash)),
            Path::new(DATA_DIR),
            options,
        )
        .expect("open");
        let mut checkpoint = None;
        let mut replayed = Vec::new();
        storage
            .recover_each(&mut |event| {
                match event {
                    RecoveryEvent::Checkpoint { covered, .. } => checkpoint = Some(covered),
                    RecoveryEvent::Batch(lsn, _) => replayed.push(lsn),
                    RecoveryEvent::Metadata(_) => {}
                }
                Ok(())
            })
            .expect("recover");
        assert_eq!(checkpoint, Some(last));
        assert_eq!(replayed, tail, "only the tail is replayed");
        storage.close().expect("close");
    }
    // And the engine recovered from it serves every record.
    let kinesis = durable_service(&image, SyncMode::Fsync, clock).expect("recovered");
    let records = read_all(&kinesis).await;
    assert_eq!(records.len(), total);
    assert!(records[0].starts_with("a0-0 "), "{}", records[0]);
    assert!(
        records[total - 1].starts_with("d2-4 "),
        "{}",
        records[total - 1]
    );
}

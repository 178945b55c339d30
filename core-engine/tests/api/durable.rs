//! Durable mode: data survives a clean restart and a SIGKILL in the middle of a write load.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use core_engine::Engine;

use crate::common::{TestEngine, client};

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

/// A `core-engine serve` child process.
struct ChildEngine {
    child: Child,
    endpoint: String,
}

impl ChildEngine {
    fn spawn(data_dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_core-engine"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the core-engine binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let endpoint = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(
            endpoint.starts_with("http://127.0.0.1:"),
            "unexpected first line {line:?}"
        );
        Self { child, endpoint }
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

impl Drop for ChildEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ChildEngine::spawn(dir.path());
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

    let engine = ChildEngine::spawn(dir.path());
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

/// An idle in-process engine, so the child can be read with the shared helpers.
async fn dummy_handle() -> core_engine::EngineHandle {
    Engine::builder().build().unwrap().start().await.unwrap()
}

//! Durable mode: tables and items survive a restart, a torn log tail and a SIGKILL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use core_engine::Engine;

use crate::common::{Ddb, client, create_table, item, n, s};
use crate::support::ChildEngine;

#[tokio::test]
async fn a_restart_keeps_tables_indexes_and_items() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ddb = Ddb::with(Engine::builder().data_dir(dir.path())).await;
        ddb.table("kept", Some(ScalarAttributeType::N)).await;
        ddb.table("dropped", None).await;
        for i in 0..50 {
            ddb.put(
                "kept",
                item(&[
                    ("pk", s("p")),
                    ("sk", n(&i.to_string())),
                    ("v", s(&format!("v{i}"))),
                ]),
            )
            .await;
        }
        ddb.client
            .update_item()
            .table_name("kept")
            .key("pk", s("p"))
            .key("sk", n("7"))
            .update_expression("SET v = :x")
            .expression_attribute_values(":x", s("changed"))
            .send()
            .await
            .unwrap();
        ddb.client
            .delete_item()
            .table_name("kept")
            .key("pk", s("p"))
            .key("sk", n("8"))
            .send()
            .await
            .unwrap();
        ddb.client
            .delete_table()
            .table_name("dropped")
            .send()
            .await
            .unwrap();
        ddb.handle.shutdown().await;
    }
    let ddb = Ddb::with(Engine::builder().data_dir(dir.path())).await;
    assert_eq!(
        ddb.client.list_tables().send().await.unwrap().table_names(),
        ["kept"]
    );
    let out = ddb.client.scan().table_name("kept").send().await.unwrap();
    assert_eq!(out.count(), 49);
    let got = ddb
        .get("kept", item(&[("pk", s("p")), ("sk", n("7"))]))
        .await
        .unwrap();
    assert_eq!(got["v"], s("changed"));
    assert!(
        ddb.get("kept", item(&[("pk", s("p")), ("sk", n("8"))]))
            .await
            .is_none()
    );
    let described = ddb
        .client
        .describe_table()
        .table_name("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(described.table().unwrap().item_count(), Some(49));
    ddb.handle.shutdown().await;

    // A crash mid-append leaves half a frame: it is cut, everything before it kept.
    let log = dir.path().join("dynamodb").join("tables.log");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, &[0x40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, b'[']).unwrap();
    drop(file);
    let ddb = Ddb::with(Engine::builder().data_dir(dir.path())).await;
    assert_eq!(
        ddb.client
            .scan()
            .table_name("kept")
            .send()
            .await
            .unwrap()
            .count(),
        49
    );
    ddb.put("kept", item(&[("pk", s("p")), ("sk", n("100"))]))
        .await;
    ddb.handle.shutdown().await;
    let ddb = Ddb::with(Engine::builder().data_dir(dir.path())).await;
    assert_eq!(
        ddb.client
            .scan()
            .table_name("kept")
            .send()
            .await
            .unwrap()
            .count(),
        50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_conditional_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ChildEngine::spawn(dir.path(), &[]);
    let ddb = client(&engine.endpoint);
    create_table(&ddb, "crash", "pk", None).await;
    // Each writer bumps its own counter with a conditional update; the last acknowledged value
    // must be there after the kill (an unacknowledged later one may be too).
    let acked: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; 4]));
    let mut writers = Vec::new();
    for writer in 0..4usize {
        let (ddb, acked) = (ddb.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let key = format!("counter-{writer}");
            let mut value = 0u64;
            loop {
                let request = if value == 0 {
                    ddb.put_item()
                        .table_name("crash")
                        .item("pk", s(&key))
                        .item("c", n("1"))
                        .condition_expression("attribute_not_exists(pk)")
                        .send()
                        .await
                        .is_ok()
                } else {
                    ddb.update_item()
                        .table_name("crash")
                        .key("pk", s(&key))
                        .update_expression("SET c = c + :one")
                        .condition_expression("c = :seen")
                        .expression_attribute_values(":one", n("1"))
                        .expression_attribute_values(":seen", n(&value.to_string()))
                        .send()
                        .await
                        .is_ok()
                };
                if !request {
                    return; // the engine is gone
                }
                value += 1;
                acked.lock().unwrap()[writer] = value;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    engine.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.iter().all(|&v| v > 0),
        "the load acknowledged nothing: {acked:?}"
    );

    let engine = ChildEngine::spawn(dir.path(), &[]);
    let ddb = client(&engine.endpoint);
    for (writer, &value) in acked.iter().enumerate() {
        let got = ddb
            .get_item()
            .table_name("crash")
            .key("pk", s(&format!("counter-{writer}")))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        let AttributeValue::N(stored) = &got["c"] else {
            panic!()
        };
        let stored: u64 = stored.parse().unwrap();
        assert!(
            stored == value || stored == value + 1,
            "writer {writer}: acked {value}, stored {stored}"
        );
    }
    println!("acknowledged counters {acked:?} survived SIGKILL");
}

/// Frames of a table log, read with the documented layout: their payload sizes.
fn frame_sizes(log: &std::path::Path) -> Vec<usize> {
    let bytes = std::fs::read(log).unwrap();
    let mut at = 12; // magic and version
    let mut sizes = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        sizes.push(len);
        at += 8 + len;
    }
    assert_eq!(at, bytes.len(), "the log ends inside a frame");
    sizes
}

/// Puts `items` from four concurrent writers.
async fn put_all(ddb: &aws_sdk_dynamodb::Client, table: &str, items: Vec<crate::common::Item>) {
    let mut writers = tokio::task::JoinSet::new();
    for chunk in items.chunks(items.len().div_ceil(4)) {
        let (ddb, table, chunk) = (ddb.clone(), table.to_owned(), chunk.to_vec());
        writers.spawn(async move {
            for item in chunk {
                ddb.put_item()
                    .table_name(&table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
}

/// 180 items of 390 KB (about 67 MiB, more than one frame may hold) and 1,000 small ones, so
/// that the next start compacts the log. Before frames were bounded by bytes, that compaction
/// wrote one frame over the reader's limit and the table was gone after the next restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_larger_than_a_frame_survives_compaction_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dynamodb").join("tables.log");
    let builder = || {
        Engine::builder()
            .data_dir(dir.path())
            .sync_mode(core_engine::SyncMode::OsBuffered)
    };
    let big = |i: usize| {
        item(&[
            ("pk", s(&format!("big-{i:03}"))),
            ("v", s(&format!("{i:03}").repeat(130_000))),
        ])
    };
    let small = |i: usize| {
        item(&[
            ("pk", s(&format!("small-{i:04}"))),
            ("n", n(&i.to_string())),
        ])
    };
    {
        let ddb = Ddb::with(builder()).await;
        ddb.table("big", None).await;
        put_all(&ddb.client, "big", (0..180).map(big).collect()).await;
        put_all(&ddb.client, "big", (0..1_000).map(small).collect()).await;
        ddb.handle.shutdown().await;
    }
    // This start compacts the log (it holds over 1,000 frames), into several bounded frames.
    let ddb = Ddb::with(builder()).await;
    ddb.handle.shutdown().await;
    let sizes = frame_sizes(&log);
    assert!(
        sizes.len() < 100,
        "the log was not compacted: {} frames",
        sizes.len()
    );
    assert!(sizes.iter().all(|&len| len <= 64 << 20), "{sizes:?}");

    let ddb = Ddb::with(builder()).await;
    let mut count = 0;
    let mut start = None;
    loop {
        let page = ddb
            .client
            .scan()
            .table_name("big")
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        count += page.count();
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    assert_eq!(count, 1_180);
    for i in [0, 97, 179] {
        let got = ddb
            .get("big", item(&[("pk", s(&format!("big-{i:03}")))]))
            .await
            .unwrap();
        assert_eq!(got["v"], s(&format!("{i:03}").repeat(130_000)));
    }
    ddb.handle.shutdown().await;

    // A damaged frame in the middle of the log stops the engine, and the log is left as it is.
    let mut bytes = std::fs::read(&log).unwrap();
    let middle = 12 + 8 + sizes[0] + 8 + 100;
    bytes[middle] ^= 0x01;
    std::fs::write(&log, &bytes).unwrap();
    let error = builder()
        .build()
        .unwrap()
        .start()
        .await
        .expect_err("a corrupt log must not open");
    let message = error.to_string();
    assert!(
        message.contains("tables.log") && message.contains("bad frame at offset"),
        "{message}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), bytes, "the log was modified");
}

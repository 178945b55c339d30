//! Durable mode reads records no longer cached back from the log's segment files: a record
//! that cannot be read back (here a damaged frame) is an error the client sees, never a
//! silently short answer, and the records around it stay readable.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use core_engine::{Engine, SyncMode};

use crate::common::{TestEngine, code_of};

const LEN: usize = 1000;

/// Puts records `from..to` to `stream` in one call, each `LEN` bytes starting with its number.
async fn put_batch(engine: &TestEngine, stream: &str, from: usize, to: usize) -> Vec<String> {
    let entries = (from..to)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(Blob::new(format!("record-{i:05}-{}", "x".repeat(LEN - 13))))
                .build()
                .unwrap()
        })
        .collect();
    let out = engine
        .client
        .put_records()
        .stream_name(stream)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count, Some(0));
    out.records
        .into_iter()
        .map(|r| r.sequence_number.unwrap())
        .collect()
}

/// Flips one byte of the record starting with `marker` in whichever segment file holds it.
fn damage(dir: &std::path::Path, marker: &str) {
    for entry in std::fs::read_dir(dir.join("wal")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let Some(at) = bytes
            .windows(marker.len())
            .position(|w| w == marker.as_bytes())
        else {
            continue;
        };
        bytes[at + marker.len() + 5] ^= 0x55;
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    panic!("no segment holds {marker}");
}

#[tokio::test]
async fn a_damaged_frame_is_an_internal_failure_and_the_records_before_it_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let builder = Engine::builder()
        .data_dir(dir.path())
        .sync_mode(SyncMode::OsBuffered)
        .throughput_limits(false)
        // Smaller than one batch: the first batches are read back from the segments.
        .cache_bytes(64 * 1024);
    let engine = TestEngine::with(builder).await;
    engine.create_stream("damaged", 1).await;
    let mut seqs = Vec::new();
    for batch in 0..4 {
        seqs.extend(put_batch(&engine, "damaged", batch * 100, batch * 100 + 100).await);
    }
    // The second batch (records 100..200) fails its CRC when read back.
    damage(dir.path(), "record-00150-");

    let shard = "shardId-000000000000";
    let iterator = engine
        .iterator("damaged", shard, ShardIteratorType::TrimHorizon)
        .await;
    // The first call gets the whole first batch and stops before the damage...
    let first = engine
        .client
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap();
    assert_eq!(first.records.len(), 100);
    assert_eq!(first.records[99].sequence_number, seqs[99]);
    assert!(first.millis_behind_latest.is_some());
    // ...and the next one, starting at the damaged batch, fails retryably, as often as asked.
    let next = first.next_shard_iterator.unwrap();
    for _ in 0..2 {
        let failed = engine
            .client
            .get_records()
            .shard_iterator(&next)
            .send()
            .await;
        let status = failed
            .as_ref()
            .err()
            .and_then(|e| e.raw_response())
            .map(|r| r.status().as_u16());
        assert_eq!(status, Some(500));
        let (code, message) = code_of(failed);
        assert_eq!(code, "InternalFailure");
        assert!(message.contains(&seqs[100]), "{message}");
        assert!(message.contains(shard), "{message}");
    }
    // The records after the damage are still served.
    let after = engine
        .iterator_at(
            "damaged",
            shard,
            ShardIteratorType::AtSequenceNumber,
            &seqs[200],
        )
        .await;
    let rest = engine
        .client
        .get_records()
        .shard_iterator(&after)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.records.len(), 200);
    assert_eq!(rest.records[0].sequence_number, seqs[200]);
    assert!(rest.records[0].data.as_ref().starts_with(b"record-00200-"));
    engine.handle.shutdown().await;
}

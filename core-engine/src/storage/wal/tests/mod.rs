//! Behaviour of [`FileStorage`]: shared helpers; the tests are in the submodules.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;

use super::super::{
    Lsn, RecoveredBatch, RecoveryEvent, RetentionView, ShardRecord, Storage, StorageError,
    StoredRecord, StreamId, wait_durable,
};
use super::format::{self, SEGMENT_HEADER_LEN};
use super::{FileStorage, SyncMode, WalOptions};

mod checkpoint;
mod operation;
mod recovery;

fn batch(n: usize, arrival_ms: i64, tag: &str) -> Vec<ShardRecord> {
    (0..n)
        .map(|i| ShardRecord {
            shard_index: i as u32 % 3,
            record: StoredRecord {
                sequence_number: 1000 + i as u128,
                arrival_ms,
                partition_key: format!("{tag}-{i}"),
                data: Bytes::from(format!("data {tag} {i}")),
                encrypted: false,
            },
        })
        .collect()
}

fn expected(stream: StreamId, records: Vec<ShardRecord>) -> RecoveredBatch {
    RecoveredBatch {
        stream_id: stream,
        records,
        sealed: None,
    }
}

fn options(sync: SyncMode, segment_bytes: u64) -> WalOptions {
    WalOptions {
        sync,
        segment_bytes,
    }
}

fn open(dir: &Path, options: WalOptions) -> (FileStorage, super::Recovery) {
    let storage = FileStorage::open(dir, options).expect("open");
    let recovery = storage.recover().expect("recover");
    (storage, recovery)
}

fn reopen(dir: &Path) -> (FileStorage, super::Recovery) {
    open(dir, WalOptions::default())
}

/// Blocks until `lsn` is durable (or the log failed), with a timeout so a bug cannot hang.
fn wait(storage: &FileStorage, lsn: Lsn) -> Result<(), StorageError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut rx = storage.durability();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), wait_durable(&mut rx, lsn))
            .await
            .expect("durability timed out")
    })
}

fn append_durably(storage: &FileStorage, stream: StreamId, records: &[ShardRecord]) -> Lsn {
    let lsn = storage.append(stream, records).expect("append");
    wait(storage, lsn).expect("durable");
    lsn
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir.join("wal"))
        .expect("read wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).expect("name")
}

fn frame_len(records: &[ShardRecord]) -> u64 {
    let mut out = Vec::new();
    format::encode_frame(0, records, None, &mut out).expect("encode");
    out.len() as u64
}

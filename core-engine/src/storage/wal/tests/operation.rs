//! Running the log: durability, group commit, rollover, release, sync modes, lifecycle.

use super::*;

#[tokio::test]
async fn durability_watermark_reaches_returned_lsn() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    let mut rx = storage.durability();
    assert_eq!(rx.borrow().durable_lsn, 0);
    let mut last = 0;
    for i in 0..20 {
        last = storage.append(1, &batch(2, i, "x")).expect("append");
    }
    wait_durable(&mut rx, last).await.expect("durable");
    let state = rx.borrow().clone();
    assert!(state.durable_lsn >= last && state.failure.is_none());
    storage.close().expect("close");
}

#[test]
fn segments_roll_over() {
    let tmp = TempDir::new().expect("tempdir");
    let records = batch(2, 1, "r");
    let frame = frame_len(&records);
    let segment_bytes = SEGMENT_HEADER_LEN as u64 + 3 * frame;
    let opts = options(SyncMode::Fsync, segment_bytes);
    let (storage, _) = open(tmp.path(), opts.clone());
    for _ in 0..10 {
        append_durably(&storage, 1, &records);
    }
    drop(storage);
    let names: Vec<_> = segment_files(tmp.path())
        .iter()
        .map(|p| file_name(p).to_owned())
        .collect();
    let want: Vec<_> = [1, 4, 7, 10]
        .iter()
        .map(|lsn| format!("{lsn:020}.wal"))
        .collect();
    assert_eq!(names, want);
    for path in &segment_files(tmp.path())[..3] {
        assert_eq!(fs::metadata(path).expect("stat").len(), segment_bytes);
    }

    let (storage, recovery) = open(tmp.path(), opts);
    assert_eq!(recovery.batches, vec![expected(1, records.clone()); 10]);
    assert_eq!(append_durably(&storage, 1, &records), 11);
    assert_eq!(append_durably(&storage, 1, &records), 12);
    assert_eq!(segment_files(tmp.path()).len(), 4);
    assert_eq!(append_durably(&storage, 1, &records), 13);
    let last = segment_files(tmp.path()).pop().expect("segment");
    assert_eq!(file_name(&last), format!("{:020}.wal", 13));
}

/// Stream 1's records are needed from arrival 300 on; stream 2's always.
struct Cutoff;

impl RetentionView for Cutoff {
    fn still_needed(&self, stream: StreamId, newest_arrival_ms: i64) -> bool {
        stream != 1 || newest_arrival_ms >= 300
    }
}

#[test]
fn release_deletes_only_fully_unneeded_closed_segments() {
    let tmp = TempDir::new().expect("tempdir");
    let records = |arrival| batch(1, arrival, "r");
    let segment_bytes = SEGMENT_HEADER_LEN as u64 + 2 * frame_len(&records(0));
    let (storage, _) = open(tmp.path(), options(SyncMode::Fsync, segment_bytes));
    // Two frames per segment: [1,2] [3,4] [5,6] [7,8] [9 (active)].
    let layout = [
        (1, 100),
        (1, 100), // segment 1: stream 1 only, old -> released
        (1, 100),
        (2, 100), // segment 3: stream 2 still needed -> kept
        (1, 100),
        (1, 500), // segment 5: newest record of stream 1 still needed -> kept
        (1, 100),
        (1, 100), // segment 7: released
        (1, 100), // segment 9: being written -> kept
    ];
    for (stream, arrival) in layout {
        append_durably(&storage, stream, &records(arrival));
    }
    assert_eq!(segment_files(tmp.path()).len(), 5);
    let freed = storage.release(&Cutoff).expect("release");
    assert_eq!(freed, 2 * segment_bytes);
    let names: Vec<_> = segment_files(tmp.path())
        .iter()
        .map(|p| file_name(p).to_owned())
        .collect();
    let want: Vec<_> = [3, 5, 9].iter().map(|l| format!("{l:020}.wal")).collect();
    assert_eq!(names, want);
    assert_eq!(storage.release(&Cutoff).expect("release again"), 0);
    drop(storage);

    let (storage, recovery) = open(tmp.path(), options(SyncMode::Fsync, segment_bytes));
    let kept: Vec<_> = [2, 3, 4, 5, 8].iter().map(|&i| layout[i]).collect();
    let want: Vec<_> = kept.iter().map(|&(s, a)| expected(s, records(a))).collect();
    assert_eq!(recovery.batches, want);
    // The index is rebuilt from disk: nothing more to free, and LSNs continue.
    assert_eq!(storage.release(&Cutoff).expect("release"), 0);
    assert_eq!(storage.append(1, &records(1)).expect("append"), 10);
}

#[test]
fn group_commit_groups_concurrent_appends() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    // A slow "disk" so that appends pile up behind each sync, as they do on real hardware.
    storage
        .shared
        .hooks
        .sync_delay_ms
        .store(5, Ordering::Relaxed);
    let (threads, per_thread): (u64, i64) = (6, 30);
    std::thread::scope(|s| {
        for t in 0..threads {
            let storage = &storage;
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                let mut rx = storage.durability();
                for i in 0..per_thread {
                    let lsn = storage.append(t, &batch(1, i, "g")).expect("append");
                    rt.block_on(wait_durable(&mut rx, lsn)).expect("durable");
                }
            });
        }
    });
    let appends = threads * per_thread as u64;
    let syncs = storage.group_syncs();
    assert!(syncs * 2 < appends, "{syncs} syncs for {appends} appends");
    drop(storage);
    let (_, recovery) = reopen(tmp.path());
    assert_eq!(recovery.batches.len() as u64, appends);
}

#[test]
fn lifecycle_errors() {
    let tmp = TempDir::new().expect("tempdir");
    let storage = FileStorage::open(tmp.path(), WalOptions::default()).expect("open");
    assert!(matches!(
        storage.append(1, &[]),
        Err(StorageError::Unavailable(_))
    ));
    storage.recover().expect("recover");
    assert!(matches!(
        storage.recover(),
        Err(StorageError::Unavailable(_))
    ));
    let lsn = storage.append(1, &batch(1, 1, "l")).expect("append");
    storage.close().expect("close");
    assert_eq!(storage.durability().borrow().durable_lsn, lsn);
    assert!(matches!(
        storage.append(1, &[]),
        Err(StorageError::Unavailable(_))
    ));
    storage.close().expect("second close is harmless");
}

#[test]
fn os_buffered_mode_works() {
    let tmp = TempDir::new().expect("tempdir");
    let opts = options(SyncMode::OsBuffered, 1024);
    let (storage, _) = open(tmp.path(), opts.clone());
    for i in 0..50 {
        append_durably(&storage, 4, &batch(3, i, "o"));
    }
    assert_eq!(storage.group_syncs(), 0);
    assert!(segment_files(tmp.path()).len() > 1);
    drop(storage);
    let (storage, recovery) = open(tmp.path(), opts);
    let want: Vec<_> = (0..50).map(|i| expected(4, batch(3, i, "o"))).collect();
    assert_eq!(recovery.batches, want);
    assert_eq!(storage.append(4, &[]).expect("append"), 51);
}

#[test]
fn sync_failure_is_reported_and_never_durable() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    let first = append_durably(&storage, 1, &batch(1, 1, "f"));
    storage
        .shared
        .hooks
        .fail_sync
        .store(true, Ordering::Relaxed);
    let lsn = storage.append(1, &batch(1, 2, "f")).expect("append");
    assert!(matches!(
        wait(&storage, lsn),
        Err(StorageError::Unavailable(_))
    ));
    let state = storage.durability().borrow().clone();
    assert_eq!(state.durable_lsn, first);
    assert!(state.failure.is_some());
    assert!(matches!(
        storage.append(1, &[]),
        Err(StorageError::Unavailable(_))
    ));
    assert!(matches!(storage.close(), Err(StorageError::Unavailable(_))));
}

#[test]
fn oversized_batch_is_refused_without_consuming_an_lsn() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    let big = ShardRecord {
        shard_index: 0,
        record: StoredRecord {
            sequence_number: 1,
            arrival_ms: 1,
            partition_key: "k".into(),
            data: Bytes::from(vec![0u8; format::MAX_PAYLOAD_LEN]),
            encrypted: false,
        },
    };
    assert!(matches!(
        storage.append(1, &[big]),
        Err(StorageError::Io { .. })
    ));
    assert_eq!(storage.append(1, &[]).expect("append"), 1);
}

#[test]
fn a_data_directory_is_opened_by_one_engine_at_a_time() {
    let dir = TempDir::new().unwrap();
    let (first, _) = reopen(dir.path());
    let err = FileStorage::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(
        matches!(&err, StorageError::Unavailable(m) if m.contains("in use by another engine")),
        "{err}"
    );
    first.close().unwrap();
    let (second, _) = reopen(dir.path());
    second.close().unwrap();
}

/// Sealed frames keep their newest arrival time in the clear, so that after a restart (before
/// anything is decrypted) release still keeps the segments retention needs.
#[test]
fn release_after_a_restart_keeps_needed_sealed_segments() {
    let tmp = TempDir::new().expect("tempdir");
    let (key, _) = super::super::super::crypto::DataKey::generate();
    let records = |arrival| batch(1, arrival, "r");
    let mut frame = Vec::new();
    format::encode_frame(1, &records(0), Some(&key), &mut frame).expect("encode");
    let segment_bytes = SEGMENT_HEADER_LEN as u64 + 2 * frame.len() as u64;
    let (storage, _) = open(tmp.path(), options(SyncMode::Fsync, segment_bytes));
    // Two frames per segment: [1,2] old, [3,4] still needed, [5] being written.
    for arrival in [100, 100, 100, 500, 500] {
        let lsn = storage
            .append_sealed(1, &records(arrival), &key)
            .expect("append");
        wait(&storage, lsn).expect("durable");
    }
    drop(storage);
    let (storage, recovery) = open(tmp.path(), options(SyncMode::Fsync, segment_bytes));
    assert!(recovery.batches.iter().all(|b| b.sealed.is_some()));
    assert_eq!(storage.release(&Cutoff).expect("release"), segment_bytes);
    let names: Vec<_> = segment_files(tmp.path())
        .iter()
        .map(|p| file_name(p).to_owned())
        .collect();
    let want: Vec<_> = [3, 5].iter().map(|l| format!("{l:020}.wal")).collect();
    assert_eq!(names, want);
}

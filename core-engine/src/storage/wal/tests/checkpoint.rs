//! Index checkpoints: recovery hands one over with only the log after it, reads of batches it
//! covers still work, and one the log does not reach is dropped.

use super::*;

/// Appends `n` batches of stream 1, one durable group each (so segments roll over).
async fn append_durable(storage: &FileStorage, n: usize, tag: &str) -> Lsn {
    let mut last = 0;
    for i in 0..n {
        last = storage
            .append(1, &batch(5, 100 + i as i64, &format!("{tag}{i}")))
            .expect("append");
        wait_durable(&mut storage.durability(), last)
            .await
            .expect("durable");
    }
    last
}

#[tokio::test]
async fn recovery_replays_only_the_log_after_the_checkpoint() {
    let tmp = TempDir::new().expect("tempdir");
    let opts = options(SyncMode::Fsync, 4096);
    let storage = FileStorage::open(tmp.path(), opts.clone()).expect("open");
    storage.recover().expect("recover");
    let covered = append_durable(&storage, 40, "a").await;
    let closed = storage.closed_segments().len();
    assert!(
        closed >= 2,
        "several segments: {closed} closed, {:?}",
        segment_files(tmp.path())
    );
    storage
        .save_checkpoint(covered, b"the index")
        .expect("checkpoint");
    let tail = append_durable(&storage, 7, "b").await;
    assert_eq!(tail, covered + 7);
    drop(storage);

    let storage = FileStorage::open(tmp.path(), opts).expect("open");
    let mut replayed = Vec::new();
    let mut checkpoint = None;
    storage
        .recover_each(&mut |event| {
            match event {
                RecoveryEvent::Checkpoint { covered, index } => checkpoint = Some((covered, index)),
                RecoveryEvent::Batch(lsn, _) => replayed.push(lsn),
                RecoveryEvent::Metadata(_) => {}
            }
            Ok(())
        })
        .expect("recover");
    assert_eq!(checkpoint, Some((covered, b"the index".to_vec())));
    assert_eq!(replayed, (covered + 1..=tail).collect::<Vec<_>>());
    // Batches the checkpoint covers are read back from their segments (table from the
    // checkpoint), those after it from the scanned tail.
    let first = storage.read_batch(1).expect("read").expect("batch 1");
    assert_eq!(first, expected(1, batch(5, 100, "a0")));
    let last = storage.read_batch(tail).expect("read").expect("last batch");
    assert_eq!(last, expected(1, batch(5, 106, "b6")));
    assert!(storage.read_batch(tail + 1).expect("read").is_none());
    // And the log continues after the tail.
    assert_eq!(storage.append(1, &[]).expect("append"), tail + 1);
}

#[tokio::test]
async fn a_checkpoint_beyond_the_log_is_dropped() {
    let tmp = TempDir::new().expect("tempdir");
    let opts = options(SyncMode::Fsync, 4096);
    let storage = FileStorage::open(tmp.path(), opts.clone()).expect("open");
    storage.recover().expect("recover");
    let last = append_durable(&storage, 3, "a").await;
    // As if the log had lost its tail after the checkpoint was written.
    storage
        .save_checkpoint(last + 5, b"stale")
        .expect("checkpoint");
    drop(storage);
    let (_, recovery) = reopen(tmp.path());
    assert_eq!(recovery.checkpoint, None);
    assert_eq!(recovery.batches.len(), 3);
    assert!(
        !tmp.path().join("index").exists(),
        "the stale checkpoint is removed"
    );
}

#[tokio::test]
async fn a_damaged_checkpoint_is_ignored() {
    let tmp = TempDir::new().expect("tempdir");
    let opts = options(SyncMode::Fsync, 4096);
    let storage = FileStorage::open(tmp.path(), opts).expect("open");
    storage.recover().expect("recover");
    let last = append_durable(&storage, 4, "a").await;
    storage.save_checkpoint(last, b"index").expect("checkpoint");
    drop(storage);
    let path = tmp.path().join("index");
    let mut bytes = fs::read(&path).expect("read");
    let end = bytes.len() - 1;
    bytes[end] ^= 1;
    fs::write(&path, bytes).expect("write");
    let (_, recovery) = reopen(tmp.path());
    assert_eq!(recovery.checkpoint, None);
    assert_eq!(recovery.batches.len(), 4);
}

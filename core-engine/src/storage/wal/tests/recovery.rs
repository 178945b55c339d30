//! Recovery: reopening, torn tails, corruption, metadata.

use super::*;

#[test]
fn append_reopen_recover_continues_lsns() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, recovery) = reopen(tmp.path());
    assert!(recovery.metadata.is_none());
    assert!(recovery.batches.is_empty());
    assert_eq!(storage.append(1, &batch(3, 10, "a")).expect("append"), 1);
    assert_eq!(storage.append(2, &batch(1, 11, "b")).expect("append"), 2);
    assert_eq!(storage.append(1, &[]).expect("append"), 3);
    assert_eq!(storage.append(1, &batch(2, 12, "c")).expect("append"), 4);
    storage.close().expect("close");
    drop(storage);

    let (storage, recovery) = reopen(tmp.path());
    let want = vec![
        expected(1, batch(3, 10, "a")),
        expected(2, batch(1, 11, "b")),
        expected(1, vec![]),
        expected(1, batch(2, 12, "c")),
    ];
    assert_eq!(recovery.batches, want);
    assert_eq!(recovery.truncated_bytes, 0);
    assert_eq!(storage.durability().borrow().durable_lsn, 4);
    assert_eq!(storage.append(3, &batch(1, 13, "d")).expect("append"), 5);
    drop(storage); // drop alone must flush and stop the writer

    let (storage, recovery) = reopen(tmp.path());
    assert_eq!(recovery.batches.len(), 5);
    assert_eq!(recovery.batches[4], expected(3, batch(1, 13, "d")));
    assert_eq!(storage.append(3, &[]).expect("append"), 6);
}

#[test]
fn metadata_roundtrip_and_corruption() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    storage.save_metadata(b"first").expect("save");
    storage.save_metadata(b"second").expect("save");
    drop(storage);
    // An interrupted save leaves a tmp file that must not matter.
    fs::write(tmp.path().join("metadata.tmp"), b"half-written").expect("write");
    let (storage, recovery) = reopen(tmp.path());
    assert_eq!(recovery.metadata.as_deref(), Some(&b"second"[..]));
    storage.save_metadata(b"").expect("save empty");
    drop(storage);
    let (_, recovery) = reopen(tmp.path());
    assert_eq!(recovery.metadata.as_deref(), Some(&b""[..]));

    let path = tmp.path().join("metadata");
    fs::write(&path, format::encode_metadata(b"{\"streams\":[]}")).expect("write");
    let mut bytes = fs::read(&path).expect("read");
    *bytes.last_mut().expect("non-empty") ^= 0x01;
    fs::write(&path, &bytes).expect("write");
    let storage = FileStorage::open(tmp.path(), WalOptions::default()).expect("open");
    match storage.recover() {
        Err(StorageError::Corrupt { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn torn_tail_garbage_is_cut_and_log_continues() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    for i in 0..3 {
        storage.append(7, &batch(2, i, "t")).expect("append");
    }
    storage.close().expect("close");
    drop(storage);
    let segment = segment_files(tmp.path()).pop().expect("a segment");
    let garbage = [0x13u8, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3];
    let mut file = OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("open");
    file.write_all(&garbage).expect("write garbage");
    drop(file);
    let len_before = fs::metadata(&segment).expect("stat").len();

    let (storage, recovery) = reopen(tmp.path());
    assert_eq!(recovery.batches.len(), 3);
    assert_eq!(recovery.truncated_bytes, garbage.len() as u64);
    let len_after = fs::metadata(&segment).expect("stat").len();
    assert_eq!(len_after, len_before - garbage.len() as u64);
    assert_eq!(storage.append(7, &batch(1, 9, "new")).expect("append"), 4);
    storage.close().expect("close");
    drop(storage);

    let (storage, recovery) = reopen(tmp.path());
    assert_eq!(recovery.truncated_bytes, 0);
    assert_eq!(recovery.batches.len(), 4);
    assert_eq!(recovery.batches[3], expected(7, batch(1, 9, "new")));
    assert_eq!(storage.append(7, &[]).expect("append"), 5);
}

#[test]
fn truncated_last_frame_is_cut() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    for i in 0..3 {
        storage.append(7, &batch(2, i, "t")).expect("append");
    }
    drop(storage);
    let segment = segment_files(tmp.path()).pop().expect("a segment");
    let len = fs::metadata(&segment).expect("stat").len();
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    file.set_len(len - 5).expect("truncate");
    drop(file);

    let (storage, recovery) = reopen(tmp.path());
    assert_eq!(
        recovery.batches,
        vec![expected(7, batch(2, 0, "t")), expected(7, batch(2, 1, "t"))]
    );
    assert_eq!(recovery.truncated_bytes, frame_len(&batch(2, 2, "t")) - 5);
    assert_eq!(storage.append(7, &batch(1, 5, "n")).expect("append"), 3);
    drop(storage);
    let (_, recovery) = reopen(tmp.path());
    assert_eq!(recovery.batches.len(), 3);
    assert_eq!(recovery.batches[2], expected(7, batch(1, 5, "n")));
}

#[test]
fn corrupt_middle_segment_is_an_error() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = open(tmp.path(), options(SyncMode::Fsync, 1));
    for i in 0..3 {
        append_durably(&storage, 1, &batch(2, i, "m"));
    }
    drop(storage);
    let files = segment_files(tmp.path());
    assert_eq!(files.len(), 3);
    let middle = &files[1];
    let mut bytes = fs::read(middle).expect("read");
    let at = SEGMENT_HEADER_LEN + 8 + 3; // inside the first frame's payload
    bytes[at] ^= 0x40;
    fs::write(middle, &bytes).expect("write");

    let storage = FileStorage::open(tmp.path(), WalOptions::default()).expect("open");
    match storage.recover() {
        Err(StorageError::Corrupt { path, reason }) => {
            assert_eq!(&path, middle);
            assert!(
                reason.contains(&format!("offset {SEGMENT_HEADER_LEN}")),
                "{reason}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Nothing was cut: the data stays for an operator to inspect.
    assert_eq!(fs::read(middle).expect("read"), bytes);
}

#[test]
fn bad_segment_header_or_overlap_is_an_error() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    append_durably(&storage, 1, &batch(1, 1, "h"));
    append_durably(&storage, 1, &batch(1, 1, "h"));
    drop(storage);
    // Segment 1 holds LSNs 1 and 2, so a segment starting at 2 overlaps it.
    let overlapping = tmp.path().join("wal").join(format!("{:020}.wal", 2));
    fs::write(&overlapping, format::segment_header(2)).expect("write");
    let storage = FileStorage::open(tmp.path(), WalOptions::default()).expect("open");
    match storage.recover() {
        Err(StorageError::Corrupt { path, reason }) => {
            assert_eq!(path, overlapping);
            assert!(reason.contains("LSN 2"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    drop(storage);
    fs::remove_file(&overlapping).expect("remove");
    // A bad header is corruption even in the last segment: segments are created atomically.
    let only = segment_files(tmp.path()).pop().expect("segment");
    let mut bytes = fs::read(&only).expect("read");
    bytes[0] = b'X';
    fs::write(&only, &bytes).expect("write");
    let storage = FileStorage::open(tmp.path(), WalOptions::default()).expect("open");
    assert!(matches!(
        storage.recover(),
        Err(StorageError::Corrupt { .. })
    ));
    assert_eq!(fs::read(&only).expect("read"), bytes);
}

#[test]
fn leftover_segment_tmp_files_are_removed() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    append_durably(&storage, 1, &batch(1, 1, "x"));
    drop(storage);
    let stray = tmp.path().join("wal").join(format!("{:020}.wal.tmp", 2));
    fs::write(&stray, b"SHRDL").expect("write");
    let (storage, recovery) = reopen(tmp.path());
    assert!(!stray.exists());
    assert_eq!(recovery.batches.len(), 1);
    assert_eq!(storage.append(1, &[]).expect("append"), 2);
}

#[test]
fn a_damaged_complete_last_frame_is_an_error_and_zeros_are_a_torn_tail() {
    let tmp = TempDir::new().expect("tempdir");
    let (storage, _) = reopen(tmp.path());
    for i in 0..3 {
        storage.append(7, &batch(2, i, "t")).expect("append");
    }
    storage.close().expect("close");
    drop(storage);
    let segment = segment_files(tmp.path()).pop().expect("a segment");
    let intact = fs::read(&segment).expect("read");

    // Zeros after the last frame (a file extended before its data arrived): cut.
    let mut zeros = intact.clone();
    zeros.extend_from_slice(&[0; 100]);
    fs::write(&segment, &zeros).expect("write");
    let (storage, recovery) = reopen(tmp.path());
    assert_eq!((recovery.batches.len(), recovery.truncated_bytes), (3, 100));
    drop(storage);
    assert_eq!(fs::read(&segment).expect("read"), intact);

    // A flipped bit in the complete last frame is not a torn write: an error, nothing cut.
    let mut flipped = intact.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    fs::write(&segment, &flipped).expect("write");
    match FileStorage::open(tmp.path(), WalOptions::default())
        .expect("open")
        .recover()
    {
        Err(StorageError::Corrupt { path, reason }) => {
            assert_eq!(path, segment);
            assert!(reason.contains("crc mismatch"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(fs::read(&segment).expect("read"), flipped);
}

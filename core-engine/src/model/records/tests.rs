//! Unit tests of the compact record layout and the durable cache's bookkeeping.

use super::*;
use crate::model::sequence::SequenceNumber;

fn record(seq: u128, arrival_ms: i64, key: &str, len: usize) -> StoredRecord {
    StoredRecord {
        sequence_number: seq,
        arrival_ms,
        partition_key: key.to_owned(),
        data: Bytes::from(vec![(seq % 251) as u8; len]),
        encrypted: false,
    }
}

fn seq(time_ms: i64, counter: u64) -> u128 {
    SequenceNumber {
        time_ms,
        shard_index: 3,
        counter,
    }
    .to_u128()
}

const ALL: ReadLimits = ReadLimits {
    max_records: usize::MAX,
    max_bytes: usize::MAX,
    durable_lsn: Lsn::MAX,
};

#[test]
fn records_read_back_exactly_across_blocks() {
    let backing = Arc::new(RecordBacking::memory(None));
    let mut records = ShardRecords::default();
    records.attach(&backing);
    let mut want = Vec::new();
    for i in 0..5_000u64 {
        // Time jumps now and then, sizes vary, one record is larger than a block.
        let time = 1_000 + (i as i64 / 100) * 7;
        let len = if i == 2_500 {
            BLOCK_BYTES * 2
        } else {
            (i % 300) as usize
        };
        let r = record(seq(time, i), time, &format!("key-{i}"), len);
        records.push(&r, 0);
        want.push(r);
    }
    assert!(records.blocks.len() > 2);
    let got = records.read(0, ALL, 0, false).records;
    assert_eq!(got, want);
    // Reading from the middle starts at the right record.
    let from = want[1_234].sequence_number;
    assert_eq!(records.read(from, ALL, 0, false).records[0], want[1_234]);
    assert_eq!(
        records.seq_at_timestamp(want[4_000].arrival_ms),
        Some(
            want.iter()
                .find(|r| r.arrival_ms >= want[4_000].arrival_ms)
                .unwrap()
                .sequence_number
        )
    );
    drop(records);
    assert_eq!((backing.body_bytes(), backing.index_bytes()), (0, 0));
}

#[test]
fn compact_layout_holds_at_most_1_3_times_data_and_keys() {
    let backing = Arc::new(RecordBacking::memory(None));
    let mut records = ShardRecords::default();
    records.attach(&backing);
    let mut payload = 0u64;
    for i in 0..100_000u64 {
        let r = record(
            seq(5_000 + i as i64 / 1000, i),
            5_000,
            &format!("pk{}", i % 1000),
            100,
        );
        payload += (r.data.len() + r.partition_key.len()) as u64;
        records.push(&r, 0);
    }
    let held = backing.body_bytes() + backing.index_bytes();
    assert!(
        held as f64 <= 1.3 * payload as f64,
        "held {held} bytes for {payload} bytes of data and keys"
    );
}

#[test]
fn trimming_frees_whole_blocks_and_counts_records() {
    let backing = Arc::new(RecordBacking::memory(None));
    let mut records = ShardRecords::default();
    records.attach(&backing);
    for i in 0..10_000u64 {
        let t = 1_000 + i as i64;
        records.push(&record(seq(t, i), t, "k", 100), 0);
    }
    let before = backing.body_bytes();
    assert_eq!(records.trim(1_000 + 6_000), 6_000);
    assert_eq!(records.len(), 4_000);
    assert!(backing.body_bytes() < before / 2);
    let rest = records.read(0, ALL, 0, false).records;
    assert_eq!(rest.len(), 4_000);
    assert_eq!(rest[0].arrival_ms, 7_000);
    assert_eq!(records.trim(i64::MAX), 4_000);
    assert!(records.is_empty());
    assert_eq!(backing.body_bytes(), 0);
}

#[test]
fn the_cap_refuses_once_reached() {
    let backing = Arc::new(RecordBacking::memory(Some(200_000)));
    let mut records = ShardRecords::default();
    records.attach(&backing);
    let mut i = 0;
    while backing.check_cap().is_ok() {
        records.push(&record(seq(1, i), 1, "k", 1_000), 0);
        i += 1;
    }
    let message = backing.check_cap().unwrap_err();
    assert!(message.contains("--max-memory-bytes"), "{message}");
    assert!(
        (150..=220).contains(&i),
        "{i} records of 1000 bytes before a 200000-byte cap"
    );
}

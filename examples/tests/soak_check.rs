//! The chaos soak's verdict (`examples::soak::check::analyze`) on hand-made histories: each
//! case is a situation the soak meets (a replay after failover, a lost record, a child read
//! before its parent, a put that landed twice, two workers on one shard) and the numbers it
//! must report.

use examples::soak::check::{Ack, Summary, analyze};
use examples::soak::log::{BatchLine, LoggedRecord};

const PARENT: &str = "shardId-000000000000";
const CHILD: &str = "shardId-000000000001";

fn ack(id: u64, key: &str, shard: &str, sequence: u128) -> Ack {
    Ack {
        id,
        key: key.into(),
        shard: shard.into(),
        sequence,
        sub_sequence: 0,
    }
}

/// A batch of `records` (payload id, key, sequence) by `worker` on `shard` from `start` to `end` µs.
fn batch(
    worker: &str,
    shard: &str,
    (start, end): (u64, u64),
    records: &[(u64, &str, u128)],
) -> BatchLine {
    BatchLine {
        worker: worker.into(),
        processor: 1,
        shard: shard.into(),
        start_us: start,
        end_us: end,
        records: records
            .iter()
            .map(|(id, key, seq)| LoggedRecord(key.to_string(), seq.to_string(), 0, id.to_string()))
            .collect(),
    }
}

fn base() -> Summary {
    Summary {
        seed: 7,
        duration_s: 60,
        overlap_fails: true,
        drained: true,
        ..Summary::default()
    }
}

/// Four records of key `k` on the parent: ids 1..=4 at sequence 10, 20, 30, 40.
fn four_acks() -> Vec<Ack> {
    (1..=4)
        .map(|i| ack(i, "k", PARENT, i as u128 * 10))
        .collect()
}

#[test]
fn a_clean_run_passes() {
    let acks = four_acks();
    let batches = vec![batch(
        "w1-1",
        PARENT,
        (100, 110),
        &[(1, "k", 10), (2, "k", 20), (3, "k", 30), (4, "k", 40)],
    )];
    let s = analyze(&acks, &batches, base());
    assert_eq!((s.acknowledged, s.processed, s.deliveries), (4, 4, 4));
    assert_eq!((s.duplicates, s.lost, s.order_violations), (0, 0, 0));
    assert_eq!((s.overlapping_holdings, s.overlapping_batches), (0, 0));
    assert!(s.passed(), "{}", s.table());
    assert!(s.table().contains("verdict: OK"), "{}", s.table());
}

#[test]
fn a_replay_from_the_checkpoint_is_duplicates_not_violations() {
    let acks = four_acks();
    // w1 processed 1..=3 and was killed before checkpointing 3; w2 resumes after 1's checkpoint.
    let batches = vec![
        batch("w1-1", PARENT, (100, 110), &[(1, "k", 10)]),
        batch("w1-1", PARENT, (120, 130), &[(2, "k", 20), (3, "k", 30)]),
        batch(
            "w2-1",
            PARENT,
            (5000, 5010),
            &[(2, "k", 20), (3, "k", 30), (4, "k", 40)],
        ),
    ];
    let s = analyze(&acks, &batches, base());
    assert_eq!((s.processed, s.deliveries, s.duplicates), (4, 6, 2));
    assert_eq!(
        (s.lost, s.order_violations, s.overlapping_holdings),
        (0, 0, 0)
    );
    assert!(s.passed(), "{}", s.table());
}

#[test]
fn an_acknowledged_record_never_processed_is_lost_and_fails_the_run() {
    let acks = four_acks();
    let batches = vec![batch(
        "w1-1",
        PARENT,
        (100, 110),
        &[(1, "k", 10), (2, "k", 20), (4, "k", 40)],
    )];
    let s = analyze(&acks, &batches, base());
    assert_eq!((s.processed, s.lost), (3, 1));
    assert_eq!(s.lost_examples.len(), 1);
    assert!(
        s.lost_examples[0].starts_with("record 3 key k"),
        "{:?}",
        s.lost_examples
    );
    assert!(!s.passed());
    assert!(s.table().contains("FAIL (must be 0)"), "{}", s.table());
    let json: serde_json::Value = serde_json::from_str(&s.json_line()).expect("one JSON line");
    assert_eq!(json["lost"], 1);
    assert_eq!(json["failures"].as_array().map(Vec::len), Some(1));
    assert!(!s.json_line().contains('\n'));
}

#[test]
fn a_child_read_before_its_parent_is_an_order_violation() {
    // Key k: 1 and 2 on the parent, then 3 on the child after a split.
    let acks = vec![
        ack(1, "k", PARENT, 10),
        ack(2, "k", PARENT, 20),
        ack(3, "k", CHILD, 30),
        ack(4, "other", CHILD, 31),
    ];
    let batches = vec![
        batch("w2-1", CHILD, (100, 110), &[(3, "k", 30), (4, "other", 31)]),
        batch("w1-1", PARENT, (200, 210), &[(1, "k", 10), (2, "k", 20)]),
    ];
    let s = analyze(&acks, &batches, base());
    assert_eq!(s.lost, 0);
    // 1 and 2 were first delivered after 3, which the producer saw acknowledged later.
    assert_eq!(s.order_violations, 2);
    assert!(
        s.violation_examples[0].contains("key k: record 1"),
        "{:?}",
        s.violation_examples
    );
    assert!(!s.passed());
}

#[test]
fn a_copy_at_a_position_never_acknowledged_is_a_duplicate_not_a_violation() {
    // Record 2's first attempt landed at 15 although its answer was lost; the retry was
    // acknowledged at 25, after record 3 (at 20).
    let acks = vec![
        ack(1, "k", PARENT, 10),
        ack(3, "k", PARENT, 20),
        ack(2, "k", PARENT, 25),
        ack(9, "k", PARENT, 40),
    ];
    let batches = vec![batch(
        "w1-1",
        PARENT,
        (100, 110),
        &[
            (1, "k", 10),
            (2, "k", 15),
            (3, "k", 20),
            (2, "k", 25),
            (9, "k", 40),
        ],
    )];
    let s = analyze(&acks, &batches, base());
    assert_eq!((s.processed, s.duplicates, s.lost), (4, 1, 0));
    assert_eq!(s.order_violations, 0, "{:?}", s.violation_examples);
    // A record the producer gave up on but that landed is counted apart.
    let s = analyze(&acks[..3], &batches, base());
    assert_eq!((s.processed, s.processed_unacknowledged), (3, 1));
}

#[test]
fn two_workers_holding_one_shard_at_once_overlap() {
    let acks = four_acks();
    // w1 still delivers batch 4 after w2 started delivering from the checkpoint.
    let interleaved = vec![
        batch("w1-1", PARENT, (100, 110), &[(1, "k", 10)]),
        batch("w2-1", PARENT, (200, 210), &[(2, "k", 20), (3, "k", 30)]),
        batch(
            "w1-1",
            PARENT,
            (300, 310),
            &[(2, "k", 20), (3, "k", 30), (4, "k", 40)],
        ),
    ];
    let s = analyze(&acks, &interleaved, base());
    assert_eq!((s.overlapping_holdings, s.overlapping_batches), (1, 0));
    assert_eq!(s.order_violations, 0);
    assert!(!s.passed(), "overlap fails the run by default");
    assert!(
        s.overlap_examples[0].contains("w1-1"),
        "{:?}",
        s.overlap_examples
    );
    let reported_only = analyze(
        &acks,
        &interleaved,
        Summary {
            overlap_fails: false,
            ..base()
        },
    );
    assert!(reported_only.passed(), "{}", reported_only.table());

    // Two batches running at the same moment.
    let simultaneous = vec![
        batch("w1-1", PARENT, (100, 500), &[(1, "k", 10), (2, "k", 20)]),
        batch(
            "w2-1",
            PARENT,
            (300, 400),
            &[(1, "k", 10), (2, "k", 20), (3, "k", 30), (4, "k", 40)],
        ),
    ];
    let s = analyze(&acks, &simultaneous, base());
    assert_eq!((s.overlapping_holdings, s.overlapping_batches), (1, 1));

    // One worker retaking a shard later, or two holdings one after the other: no overlap.
    let mut retaken = batch("w1-1", PARENT, (900, 910), &[(4, "k", 40)]);
    retaken.processor = 2;
    let sequential = vec![
        batch("w1-1", PARENT, (100, 110), &[(1, "k", 10)]),
        batch("w2-1", PARENT, (200, 210), &[(2, "k", 20), (3, "k", 30)]),
        retaken,
    ];
    let s = analyze(&acks, &sequential, base());
    assert_eq!((s.overlapping_holdings, s.overlapping_batches), (0, 0));
    assert!(s.passed(), "{}", s.table());
}

#[test]
fn nothing_acknowledged_fails_the_run() {
    let s = analyze(&[], &[], base());
    assert!(!s.passed());
    assert_eq!(s.failures, ["nothing was acknowledged"]);
}

#[test]
fn an_engine_that_crashed_by_itself_fails_the_run() {
    let acks = four_acks();
    let batches = vec![batch(
        "w1-1",
        PARENT,
        (100, 110),
        &[(1, "k", 10), (2, "k", 20), (3, "k", 30), (4, "k", 40)],
    )];
    let mut crashed = base();
    crashed.chaos.engine_exits = 1;
    crashed.chaos.engine_kills = 3;
    let s = analyze(&acks, &batches, crashed);
    assert_eq!(
        s.failures,
        ["the engine exited 1 times without being killed"]
    );
    assert!(
        s.table().contains("engine exits (unasked)"),
        "{}",
        s.table()
    );
}

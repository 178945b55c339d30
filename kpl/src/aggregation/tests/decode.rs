//! The reader: the KCL's as-is and drop rules, tolerance of field order and unknown fields, zero
//! copy, and a deterministic mutation loop.

use bytes::Bytes;
use md5::{Digest, Md5};

use super::super::{MAGIC, UserRecord, deaggregate, deaggregate_for_shard, hash_key};
use super::{Input, Rng, aggregate, as_is, expected, hex, read};

/// Magic, `proto`, and the right MD5: an aggregate whose protobuf is exactly `proto`.
fn wrap(proto: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(proto);
    out.extend_from_slice(&Md5::digest(proto));
    out
}

fn record(pk: &str, ehk: Option<&str>, data: &[u8], sub_sequence_number: u64) -> UserRecord {
    UserRecord {
        partition_key: pk.to_owned(),
        explicit_hash_key: ehk.map(str::to_owned),
        data: Bytes::copy_from_slice(data),
        sub_sequence_number,
    }
}

const SAMPLE: [Input<'static>; 3] = [
    ("pk1", None, b"hi"),
    ("pk2", Some("12345"), b"there"),
    ("pk1", None, b""),
];

#[test]
fn not_aggregates_are_delivered_as_is() {
    let valid = aggregate(&SAMPLE);
    let mut bad_digest = valid.clone();
    *bad_digest.last_mut().unwrap() ^= 1;
    let mut bad_magic = valid.clone();
    bad_magic[0] = 0xF2;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        (
            "plain data",
            b"just a plain record, not an aggregate".to_vec(),
        ),
        ("shorter than the magic", MAGIC[..3].to_vec()),
        ("magic only", MAGIC.to_vec()),
        ("16 bytes after the magic", [&MAGIC[..], &[0; 16]].concat()),
        ("empty protobuf", wrap(&[])),
        ("bad magic", bad_magic),
        ("bad digest", bad_digest),
        ("truncated", valid[..valid.len() - 1].to_vec()),
        ("length past the end", wrap(&hex("0a 05 70 6b"))),
        ("unterminated varint", wrap(&hex("1a 02 08 80"))),
        (
            "record too short for its length",
            wrap(&hex("0a 01 61 1a 09 08 00 1a 01 61")),
        ),
        // Field 1 is a string, not a varint.
        (
            "wrong wire type",
            wrap(&hex("08 01 0a 01 61 1a 05 08 00 1a 01 61")),
        ),
        ("end-group wire type", wrap(&hex("0c 0a 01 61"))),
        (
            "missing partition_key_index",
            wrap(&hex("0a 01 61 1a 03 1a 01 78")),
        ),
        ("missing data", wrap(&hex("0a 01 61 1a 02 08 00"))),
        (
            "tag without key",
            wrap(&hex("0a 01 61 1a 09 08 00 1a 01 78 22 02 12 00")),
        ),
        (
            "partition_key_index out of range",
            wrap(&hex("0a 01 61 1a 05 08 01 1a 01 78")),
        ),
        (
            "partition_key_index with no table",
            wrap(&hex("1a 05 08 00 1a 01 78")),
        ),
        (
            "huge partition_key_index",
            wrap(&hex(
                "0a 01 61 1a 0e 08 ff ff ff ff ff ff ff ff ff 01 1a 01 78",
            )),
        ),
        (
            "explicit_hash_key_index out of range",
            wrap(&hex("0a 01 61 12 01 31 1a 07 08 00 10 01 1a 01 78")),
        ),
        (
            "explicit_hash_key_index with no table",
            wrap(&hex("0a 01 61 1a 07 08 00 10 00 1a 01 78")),
        ),
        // The second record is bad: nothing of the aggregate is delivered.
        ("bad index after a good record", wrap(&BAD_SECOND_INDEX)),
    ];
    for (name, bytes) in cases {
        assert_eq!(read(&bytes), as_is(&bytes), "{name}");
        let input = Bytes::from(bytes.clone());
        let shard = deaggregate_for_shard("a", Some("1"), &input, 0, u128::MAX);
        assert_eq!(shard, as_is(&bytes), "{name}");
        if name != "bad index after a good record" {
            // Not an aggregate: no range check.
            let shard = deaggregate_for_shard("a", Some("1"), &input, 5, 6);
            assert_eq!(shard, as_is(&bytes), "{name}: range checked");
        }
    }
}

/// Record 0 is fine, record 1 points past the one-entry partition-key table.
const BAD_SECOND_INDEX: [u8; 17] = [
    0x0a, 0x01, 0x61, 0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, 0x78, 0x1a, 0x05, 0x08, 0x05, 0x1a, 0x01,
    0x79,
];

#[test]
fn records_are_checked_in_order_as_the_kcl_does() {
    let bytes = Bytes::from(wrap(&BAD_SECOND_INDEX));
    let a = hash_key("a", None).unwrap();
    // Record 0 lies outside the shard: the aggregate is dropped before record 1's bad index is
    // seen.
    assert_eq!(
        deaggregate_for_shard("a", None, &bytes, a + 1, u128::MAX),
        Vec::new()
    );
    // Record 0 lies inside: record 1's bad index makes the whole record as-is.
    let out = deaggregate_for_shard("a", None, &bytes, a, a);
    assert_eq!(out, vec![record("a", None, &bytes, 0)]);
}

#[test]
fn as_is_record_keeps_its_keys_and_buffer() {
    let data = Bytes::from_static(b"plain");
    let out = deaggregate("user-key", None, &data);
    assert_eq!(out, vec![record("user-key", None, b"plain", 0)]);
    assert_eq!(out[0].data.as_ptr(), data.as_ptr());
}

#[test]
fn fields_in_any_order_and_unknown_fields() {
    let proto = hex("1a 07 08 01 10 00 1a 01 78 \
         2a 03 01 02 03 \
         12 02 34 32 \
         78 96 01 \
         0a 01 61 \
         1a 11 1a 01 79 55 01 02 03 04 08 00 22 05 0a 01 6b 12 00 \
         0a 01 62 \
         1a 07 08 07 1a 01 7a 08 01 \
         5d 00 00 80 3f 61 01 02 03 04 05 06 07 08");
    // Records before the tables; unknown fields 5 (bytes), 15 (varint), 11 (fixed32) and 12
    // (fixed64); a record whose data comes before its index, with an unknown fixed32 and a tag; a
    // repeated index (the last one counts).
    assert_eq!(
        read(&wrap(&proto)),
        vec![
            record("b", Some("42"), b"x", 0),
            record("a", None, b"y", 1),
            record("b", None, b"z", 2)
        ]
    );
}

#[test]
fn zero_records_is_an_empty_aggregate() {
    // A partition-key table and no records: a valid aggregate of nothing, as for the KCL.
    let bytes = wrap(&hex("0a 03 70 6b 31"));
    assert_eq!(read(&bytes), Vec::new());
}

#[test]
fn data_is_sliced_from_the_input() {
    let input = Bytes::from(aggregate(&SAMPLE));
    let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
    let out = deaggregate("a", None, &input);
    assert_eq!(out, expected(&SAMPLE));
    for r in out.iter().filter(|r| !r.data.is_empty()) {
        assert!(
            range.contains(&(r.data.as_ptr() as usize)),
            "{r:?} was copied"
        );
    }
}

#[test]
fn invalid_utf8_keys_are_replaced_as_the_kcl_does() {
    let bytes = wrap(&hex("0a 02 61 ff 12 02 31 ff 1a 07 08 00 10 00 1a 01 78"));
    assert_eq!(
        read(&bytes),
        vec![record("a\u{FFFD}", Some("1\u{FFFD}"), b"x", 0)]
    );
}

#[test]
fn shard_range_keeps_an_aggregate_inside_it() {
    let inputs: [Input<'_>; 3] = [
        ("pk1", None, b"1"),
        ("x", Some("100"), b"2"),
        ("y", Some("200"), b"3"),
    ];
    let bytes = Bytes::from(aggregate(&inputs));
    let pk1 = hash_key("pk1", None).unwrap();
    // Bounds are inclusive at both ends.
    let (low, high) = (100.min(pk1), 200.max(pk1));
    assert_eq!(
        deaggregate_for_shard("a", None, &bytes, low, high),
        expected(&inputs)
    );
    assert_eq!(
        deaggregate_for_shard("a", None, &bytes, 0, u128::MAX),
        expected(&inputs)
    );
}

#[test]
fn one_record_outside_the_shard_drops_the_whole_aggregate() {
    let pk1 = hash_key("pk1", None).unwrap();
    // Outside by one, through an explicit hash key (first, middle or last record) or a partition
    // key's MD5.
    let cases: [(&[Input<'_>], u128, u128); 5] = [
        (
            &[("x", Some("99"), b"1"), ("y", Some("150"), b"2")],
            100,
            200,
        ),
        (
            &[
                ("x", Some("150"), b"1"),
                ("y", Some("201"), b"2"),
                ("z", Some("150"), b"3"),
            ],
            100,
            200,
        ),
        (
            &[
                ("x", Some("150"), b"1"),
                ("y", Some("150"), b"2"),
                ("z", Some("201"), b"3"),
            ],
            100,
            200,
        ),
        (&[("x", Some("1"), b"1"), ("pk1", None, b"2")], 0, pk1 - 1),
        (
            &[
                ("pk1", None, b"1"),
                ("x", Some(&*u128::MAX.to_string()), b"2"),
            ],
            pk1,
            u128::MAX - 1,
        ),
    ];
    for (inputs, start, end) in cases {
        let bytes = Bytes::from(aggregate(inputs));
        assert_eq!(
            deaggregate_for_shard("a", None, &bytes, start, end),
            Vec::new(),
            "{inputs:?}"
        );
        // Without a range, the same aggregate reads in full.
        assert_eq!(deaggregate("a", None, &bytes), expected(inputs));
    }
}

#[test]
fn invalid_explicit_hash_key_drops_the_aggregate_only_with_a_range() {
    let inputs: [Input<'_>; 2] = [("x", Some("5"), b"1"), ("y", Some("not a number"), b"2")];
    let bytes = Bytes::from(aggregate(&inputs));
    assert_eq!(
        deaggregate_for_shard("a", None, &bytes, 0, u128::MAX),
        Vec::new()
    );
    assert_eq!(deaggregate("a", None, &bytes), expected(&inputs));
}

#[test]
fn explicit_hash_keys_are_read_as_the_kcl_reads_them() {
    // Java's BigInteger takes a sign and leading zeros; other producers' aggregates may hold them.
    let inputs: [Input<'_>; 4] = [
        ("x", Some("007"), b"1"),
        ("y", Some("+10"), b"2"),
        ("z", Some("-0"), b"3"),
        ("w", Some(&"0".repeat(50)), b"4"),
    ];
    let bytes = Bytes::from(aggregate(&inputs));
    assert_eq!(
        deaggregate_for_shard("a", None, &bytes, 0, 10),
        expected(&inputs)
    );
    assert_eq!(deaggregate_for_shard("a", None, &bytes, 1, 10), Vec::new());
    assert_eq!(deaggregate_for_shard("a", None, &bytes, 0, 9), Vec::new());
    for bad in [
        "-1",
        "+",
        "-",
        "1-",
        "++1",
        "340282366920938463463374607431768211456",
    ] {
        let bytes = Bytes::from(aggregate(&[("x", Some(bad), b"1")]));
        assert_eq!(
            deaggregate_for_shard("a", None, &bytes, 0, u128::MAX),
            Vec::new(),
            "{bad}"
        );
    }
}

/// What the mutation loop saw, to show it reached every path.
#[derive(Default, Debug)]
struct Tally {
    as_is: usize,
    records: usize,
    dropped: usize,
}

/// Reads `bytes` both ways and checks what comes out is either the record as-is or records that
/// re-encode to an aggregate reading back the same.
fn check_robust(bytes: &[u8], rng: &mut Rng, tally: &mut Tally) {
    let input = Bytes::copy_from_slice(bytes);
    let out = deaggregate("a", Some("1"), &input);
    let (start, end) = match rng.below(2) {
        0 => (0, u128::MAX),
        _ => {
            let start = u128::from(rng.next()) << 64;
            (start, start | u128::from(u64::MAX))
        }
    };
    let shard = deaggregate_for_shard("a", Some("1"), &input, start, end);
    // Empty if a record outside the range came before whatever made the aggregate unreadable.
    assert!(shard.is_empty() || shard == out);
    if shard.is_empty() && !out.is_empty() {
        tally.dropped += 1;
    }
    if out == as_is(bytes) {
        tally.as_is += 1;
        return;
    }
    tally.records += 1;
    let inputs: Vec<Input<'_>> = out
        .iter()
        .map(|r| (&*r.partition_key, r.explicit_hash_key.as_deref(), &*r.data))
        .collect();
    if !inputs.is_empty() {
        assert_eq!(read(&aggregate(&inputs)), expected(&inputs));
    }
}

#[test]
fn mutations_and_truncations_never_panic() {
    let valid = aggregate(&[
        ("pk1", None, b"hi"),
        (
            "pk2",
            Some("340282366920938463463374607431768211455"),
            &[0xAB; 200],
        ),
        ("pk1", Some("7"), b""),
        ("🔑", None, b"yo"),
    ]);
    let proto = &valid[MAGIC.len()..valid.len() - 16];
    let mut rng = Rng(7);
    let mut tally = Tally::default();
    for len in 0..=valid.len() {
        check_robust(&valid[..len], &mut rng, &mut tally);
    }
    for len in 0..=proto.len() {
        // Truncated protobuf with a matching digest, so the parser sees it.
        check_robust(&wrap(&proto[..len]), &mut rng, &mut tally);
    }
    for i in 0..proto.len() {
        for flip in [0x01, 0x80, 0xFF] {
            let mut mutated = proto.to_vec();
            mutated[i] ^= flip;
            check_robust(&wrap(&mutated), &mut rng, &mut tally);
        }
        for byte in [0x00, 0x7F, 0x80, 0xFF] {
            let mut inserted = proto.to_vec();
            inserted.insert(i, byte);
            check_robust(&wrap(&inserted), &mut rng, &mut tally);
        }
    }
    for _ in 0..3000 {
        let mut mutated = proto.to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(mutated.len());
            mutated[i] = rng.next() as u8;
        }
        mutated.truncate(rng.below(mutated.len() + 1));
        check_robust(&wrap(&mutated), &mut rng, &mut tally);
        let noise: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        check_robust(&wrap(&noise), &mut rng, &mut tally);
    }
    // Every outcome occurs, so the loop reaches past the digest check into the parser and the range
    // check.
    assert!(
        tally.as_is > 1000 && tally.records > 500 && tally.dropped > 100,
        "{tally:?}"
    );
}

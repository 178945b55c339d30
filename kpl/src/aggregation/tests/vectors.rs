//! Byte-level vectors. Every expected hex string was produced outside this crate, twice: by a few
//! lines of Python writing the protobuf varints by hand (hashlib for the MD5), and by the
//! `aws_kinesis_agg` PyPI package (1.2.3, protobuf 7.36), which serializes with Google's protobuf
//! runtime, as the KPL does; both gave the same bytes.

use super::super::{FIXED_OVERHEAD, hash_key};
use super::{Input, aggregate, expected, hex, prost_encoding, read};

/// Checks that `records` encode to exactly `want`, and decode back.
fn check(records: &[Input<'_>], want: &str) {
    let want = hex(want);
    let got = aggregate(records);
    assert_eq!(hex_string(&got), hex_string(&want));
    assert_eq!(read(&got), expected(records));
    assert_eq!(
        got,
        prost_encoding(records),
        "prost encodes the same message the same way"
    );
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn worked_example_from_the_reference() {
    // kpl.md (c); MD5 of the 21 protobuf bytes checked with Python's hashlib.
    check(
        &[("pk1", None, b"hi"), ("pk1", None, b"yo")],
        "f3 89 9a c2 | 0a 03 70 6b 31 | 1a 06 08 00 1a 02 68 69 | 1a 06 08 00 1a 02 79 6f \
         | 7c7a5a285e8abcbeede088d0d8698bb6",
    );
}

#[test]
fn explicit_hash_key_table() {
    // The largest and the smallest hash key, a record without one between them, and empty data.
    check(
        &[
            ("pk1", Some("340282366920938463463374607431768211455"), b"a"),
            ("pk2", None, b"bb"),
            ("pk3", Some("0"), b""),
        ],
        "f3 89 9a c2 \
         | 0a 03 70 6b 31 | 0a 03 70 6b 32 | 0a 03 70 6b 33 \
         | 12 27 333430323832333636393230393338343633343633333734363037343331373638323131343535 \
         | 12 01 30 \
         | 1a 07 08 00 10 00 1a 01 61 \
         | 1a 06 08 01 1a 02 62 62 \
         | 1a 06 08 02 10 01 1a 00 \
         | 7b39faef8c6df55a9f1d7057fc0b8d35",
    );
}

#[test]
fn distinct_partition_keys() {
    check(
        &[
            ("alpha", None, b"1"),
            ("beta", None, b"22"),
            ("gamma", None, b"333"),
        ],
        "f3 89 9a c2 \
         | 0a 05 616c706861 | 0a 04 62657461 | 0a 05 67616d6d61 \
         | 1a 05 08 00 1a 01 31 \
         | 1a 06 08 01 1a 02 3232 \
         | 1a 07 08 02 1a 03 333333 \
         | 2c282ad467186906603835ab0e70edf5",
    );
}

#[test]
fn deduplicated_keys() {
    // Both tables keep first-use order; "42" is stored once for three records.
    check(
        &[
            ("k", Some("42"), b"x"),
            ("j", Some("42"), b"y"),
            ("k", Some("7"), b"z"),
            ("j", Some("42"), b"w"),
        ],
        "f3 89 9a c2 \
         | 0a 01 6b | 0a 01 6a | 12 02 3432 | 12 01 37 \
         | 1a 07 08 00 10 00 1a 01 78 \
         | 1a 07 08 01 10 00 1a 01 79 \
         | 1a 07 08 00 10 01 1a 01 7a \
         | 1a 07 08 01 10 00 1a 01 77 \
         | fa432b42ccbaa509ce1a8186663e708e",
    );
}

#[test]
fn two_byte_lengths() {
    // A 200-byte key, 300 and 130 bytes of data: lengths 0xc8 01, 0xac 02, 0x82 01 and record
    // lengths over 127.
    let long_key = "p".repeat(200);
    let want = format!(
        "f3899ac2 0ac801{} 0a0171 1ab10208001aac02{} 1a870108011a8201{} ba70b9259839d6cf8d2092c91682cfa5",
        "70".repeat(200),
        "00".repeat(300),
        "ff".repeat(130),
    );
    check(
        &[(&long_key, None, &[0; 300]), ("q", None, &[0xff; 130])],
        &want,
    );
}

#[test]
fn empty_aggregate_is_magic_and_digest_of_nothing() {
    let out = aggregate(&[]);
    assert_eq!(out.len(), FIXED_OVERHEAD);
    // MD5("") = d41d8cd98f00b204e9800998ecf8427e; 20 bytes is too short to read as an aggregate.
    assert_eq!(out, hex("f3899ac2 d41d8cd98f00b204e9800998ecf8427e"));
    assert_eq!(read(&out), super::as_is(&out));
}

#[test]
fn hash_keys() {
    // int.from_bytes(hashlib.md5(key.encode()).digest(), "big") in Python.
    assert_eq!(
        hash_key("pk1", None),
        Some(329398341438914906102347661116985167824)
    );
    assert_eq!(
        hash_key("a", None),
        Some(16955237001963240173058271559858726497)
    );
    assert_eq!(
        hash_key("", None),
        Some(281949768489412648962353822266799178366)
    );
    assert_eq!(
        hash_key("ü", None),
        Some(255482112228542481294366945247899473731)
    );

    assert_eq!(hash_key("ignored", Some("0")), Some(0));
    assert_eq!(
        hash_key("x", Some("340282366920938463463374607431768211455")),
        Some(u128::MAX)
    );
    for bad in [
        "",
        "007",
        "00",
        "340282366920938463463374607431768211456",
        "+1",
        "-1",
        " 1",
        "1 ",
        "1e3",
        "0x10",
        "١",
    ] {
        assert_eq!(hash_key("x", Some(bad)), None, "{bad:?}");
    }
}

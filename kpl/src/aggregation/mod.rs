//! The KPL aggregation format: many user records packed into one Kinesis record.
//!
//! This is the format the reference Kinesis Producer Library writes and the Kinesis Client Library,
//! AWS Lambda's Kinesis integration and `aws-kinesis-agg` read. [`Aggregator`] writes it byte for
//! byte as the KPL does; [`deaggregate`] and [`deaggregate_for_shard`] read it with the KCL's
//! rules.
//!
//! # The bytes
//!
//! ```text
//! offset       bytes        meaning
//! 0..4         F3 89 9A C2  MAGIC
//! 4..N         ...          protobuf (proto2) AggregatedRecord, N-4 bytes
//! N..N+16      ...          MD5 of bytes 4..N (the protobuf only, not the magic)
//! ```
//!
//! The protobuf message, with each field's tag byte (`field_number << 3 | wire_type`):
//!
//! ```text
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;  // 0A len bytes
//!   repeated string explicit_hash_key_table = 2;  // 12 len bytes
//!   repeated Record records                 = 3;  // 1A len <Record>
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;  // 08 varint
//!   optional uint64 explicit_hash_key_index = 2;  // 10 varint
//!   required bytes  data                    = 3;  // 1A len bytes
//!   repeated Tag    tags                    = 4;  // 22 len <Tag>; never written by the KPL
//! }
//! message Tag { required string key = 1; optional string value = 2; }
//! ```
//!
//! `len` and `varint` are base-128 varints: seven bits per byte, least significant group first, the
//! high bit set on every byte but the last (`300` is `AC 02`). The writer emits fields in
//! field-number order, as the KPL's C++ serializer does: every partition-key table entry, then
//! every explicit-hash-key table entry, then the records; inside a record the partition-key index
//! (always, even when 0), the explicit-hash-key index (only when the user record has an explicit
//! hash key), then the data. Both tables hold each distinct key once, in order of first use, and
//! records refer to them by zero-based index.
//!
//! Worked example: partition-key table `["pk1"]`, two records with data `"hi"` and `"yo"`, no
//! explicit hash key:
//!
//! ```text
//! f3 89 9a c2                 magic
//! 0a 03 70 6b 31              partition_key_table[0] = "pk1"
//! 1a 06 08 00 1a 02 68 69     records[0] = { partition_key_index: 0, data: "hi" }
//! 1a 06 08 00 1a 02 79 6f     records[1] = { partition_key_index: 0, data: "yo" }
//! 7c 7a 5a 28 5e 8a bc be ed e0 88 d0 d8 69 8b b6   MD5 of the 21 protobuf bytes
//! ```
//!
//! # Addressing the Kinesis record (the producer's job, not this module's)
//!
//! The KPL sends a container holding a single user record as that record's raw data with its own
//! partition key, and a container of two or more as an aggregate with partition key `"a"` and, as
//! explicit hash key, the first user record's [`hash_key`] in decimal. Every user record in one
//! aggregate must hash into the shard the aggregate lands on: the KCL drops the whole aggregate
//! otherwise (see [`deaggregate_for_shard`]).
//!
//! # Reading
//!
//! A Kinesis record is an aggregate only if it starts with [`MAGIC`], has more than [`DIGEST_LEN`]
//! bytes after it, its MD5 trailer matches and its protobuf parses; anything else is delivered
//! as-is, as one user record. Decoding accepts fields in any order, skips unknown fields, and never
//! panics.

mod decode;
mod encode;
mod proto;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use md5::{Digest, Md5};

pub use decode::{deaggregate, deaggregate_for_shard};
pub use encode::Aggregator;

/// The four bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Length of the MD5 trailer.
pub const DIGEST_LEN: usize = 16;

/// Bytes an aggregate has besides its protobuf: [`MAGIC`] and the MD5 trailer (the KPL's
/// `kFixedOverhead`).
pub const FIXED_OVERHEAD: usize = MAGIC.len() + DIGEST_LEN;

/// A user record taken out of a Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user record's partition key.
    pub partition_key: String,
    /// Its explicit hash key, if the producer gave one.
    pub explicit_hash_key: Option<String>,
    /// Its data.
    pub data: Bytes,
    /// Its position in the aggregate (0 for a record that was not aggregated).
    pub sub_sequence_number: u64,
}

/// The 128-bit hash key that places a record on a shard.
///
/// With an explicit hash key, that key read as a decimal integer; otherwise the MD5 of the UTF-8
/// partition key read as a big-endian unsigned 128-bit integer, as Kinesis, the KPL and the KCL
/// compute it.
///
/// Returns `None` unless the explicit hash key is written as the Kinesis API requires: a decimal
/// integer in `0..=2^128-1`, ASCII digits only, without sign, spaces or leading zeros. A key that
/// passes is also the form the KPL stores in an aggregate's table (it re-renders the user's key in
/// base 10), so it can go to [`Aggregator::push`] as it is.
pub fn hash_key(partition_key: &str, explicit_hash_key: Option<&str>) -> Option<u128> {
    match explicit_hash_key {
        Some(ehk) if ehk.len() > 1 && ehk.starts_with('0') => None,
        Some(ehk) => parse_decimal_u128(ehk),
        None => Some(partition_key_hash(partition_key)),
    }
}

/// MD5 of the UTF-8 partition key as a big-endian unsigned integer.
fn partition_key_hash(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// One or more ASCII digits, leading zeros allowed, at most `2^128-1`. (`u128::from_str` would
/// also take a leading `+`.)
fn parse_decimal_u128(s: &str) -> Option<u128> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u128, |acc, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u128::from(digit))
    })
}

/// An explicit hash key found in an aggregate, read as the KCL reads it (Java's `BigInteger`): an
/// optional sign, then decimal digits, leading zeros allowed. `None` for a value outside
/// `0..=2^128-1` or not a number; either way the record cannot be in any shard.
fn lenient_hash_key(ehk: &str) -> Option<u128> {
    match ehk.as_bytes().first() {
        Some(b'+') => parse_decimal_u128(&ehk[1..]),
        // "-0" is zero; every other negative number is outside every shard.
        Some(b'-') => parse_decimal_u128(&ehk[1..]).filter(|v| *v == 0),
        _ => parse_decimal_u128(ehk),
    }
}

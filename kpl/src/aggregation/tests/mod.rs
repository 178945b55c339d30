//! Tests of the aggregation codec: byte vectors, exact sizes, round trips, the KCL's rules, and
//! robustness.

mod decode;
mod size;
mod vectors;

use bytes::Bytes;
use md5::{Digest, Md5};
use prost::Message;

use super::proto::{self, AggregatedRecord};
use super::{Aggregator, MAGIC, UserRecord, deaggregate};

/// Bytes from a hex string; spaces and `|` separators are ignored.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert_eq!(digits.len() % 2, 0, "odd hex digit count");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// A user record as the tests describe one: partition key, explicit hash key, data.
type Input<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// Aggregates `records`, checking on the way that `size_with` predicted each step and `size` the
/// result.
fn aggregate(records: &[Input<'_>]) -> Vec<u8> {
    let mut agg = Aggregator::new();
    for &(pk, ehk, data) in records {
        let predicted = agg.size_with(pk, ehk, data.len());
        agg.push(pk, ehk, data);
        assert_eq!(
            agg.size(),
            predicted,
            "size_with({pk:?}, {ehk:?}, {})",
            data.len()
        );
    }
    assert_eq!(agg.len(), records.len());
    let size = agg.size();
    let out = agg.finish();
    assert_eq!(out.len(), size);
    out
}

/// The user records `deaggregate` should give back for `records`.
fn expected(records: &[Input<'_>]) -> Vec<UserRecord> {
    records
        .iter()
        .enumerate()
        .map(|(i, &(pk, ehk, data))| UserRecord {
            partition_key: pk.to_owned(),
            explicit_hash_key: ehk.map(str::to_owned),
            data: Bytes::copy_from_slice(data),
            sub_sequence_number: i as u64,
        })
        .collect()
}

/// `deaggregate` with the container keys the KPL uses for an aggregate.
fn read(bytes: &[u8]) -> Vec<UserRecord> {
    deaggregate("a", Some("1"), &Bytes::copy_from_slice(bytes))
}

/// The one record `deaggregate` returns for data that is not an aggregate.
fn as_is(bytes: &[u8]) -> Vec<UserRecord> {
    vec![UserRecord {
        partition_key: "a".to_owned(),
        explicit_hash_key: Some("1".to_owned()),
        data: Bytes::copy_from_slice(bytes),
        sub_sequence_number: 0,
    }]
}

/// The same aggregate with the tables built naively and the message serialized by prost.
fn prost_encoding(records: &[Input<'_>]) -> Vec<u8> {
    let mut message = AggregatedRecord::default();
    let index = |table: &mut Vec<Bytes>, key: &str| -> u64 {
        let position = table.iter().position(|k| k == key.as_bytes());
        position.unwrap_or_else(|| {
            table.push(Bytes::copy_from_slice(key.as_bytes()));
            table.len() - 1
        }) as u64
    };
    for &(pk, ehk, data) in records {
        let record = proto::Record {
            partition_key_index: Some(index(&mut message.partition_key_table, pk)),
            explicit_hash_key_index: ehk.map(|e| index(&mut message.explicit_hash_key_table, e)),
            data: Some(Bytes::copy_from_slice(data)),
            tags: Vec::new(),
        };
        message.records.push(record);
    }
    let body = message.encode_to_vec();
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

/// A small deterministic generator (SplitMix64), so failures replay exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

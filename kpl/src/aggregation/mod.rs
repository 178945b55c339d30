//! The KPL aggregation format: many user records packed into one Kinesis record.
//!
//! (Being implemented: this file fixes the API the producer uses.)

use bytes::Bytes;

/// The four bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Builds one aggregated Kinesis record from user records.
#[derive(Debug, Default, Clone)]
pub struct Aggregator {
    _private: (),
}

impl Aggregator {
    /// An empty aggregate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of user records added.
    pub fn len(&self) -> usize {
        0
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        true
    }

    /// Exact size in bytes of [`finish`](Self::finish)'s output with the records added so far.
    pub fn size(&self) -> usize {
        0
    }

    /// Exact size the aggregate would have with one more record.
    pub fn size_with(
        &self,
        _partition_key: &str,
        _explicit_hash_key: Option<&str>,
        _data_len: usize,
    ) -> usize {
        0
    }

    /// Adds a user record.
    pub fn push(&mut self, _partition_key: &str, _explicit_hash_key: Option<&str>, _data: &[u8]) {}

    /// The aggregated record: magic, protobuf, MD5 of the protobuf.
    pub fn finish(self) -> Vec<u8> {
        Vec::new()
    }
}

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

/// The 128-bit hash key that places a record: its explicit hash key (a decimal in
/// 0..2^128-1), else the MD5 of its partition key read as a big-endian integer. `None` if the
/// explicit hash key is not valid.
pub fn hash_key(partition_key: &str, explicit_hash_key: Option<&str>) -> Option<u128> {
    use md5::{Digest, Md5};
    match explicit_hash_key {
        Some(text) => {
            let plain = !text.is_empty()
                && text.bytes().all(|b| b.is_ascii_digit())
                && (text == "0" || !text.starts_with('0'));
            if plain { text.parse().ok() } else { None }
        }
        None => Some(u128::from_be_bytes(
            Md5::digest(partition_key.as_bytes()).into(),
        )),
    }
}

/// A Kinesis record's user records (placeholder until the codec lands: returns it as is).
pub fn deaggregate(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    data: &Bytes,
) -> Vec<UserRecord> {
    vec![UserRecord {
        partition_key: partition_key.to_owned(),
        explicit_hash_key: explicit_hash_key.map(str::to_owned),
        data: data.clone(),
        sub_sequence_number: 0,
    }]
}

/// Like [`deaggregate`], dropping aggregates that straddle the shard's range.
pub fn deaggregate_for_shard(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    data: &Bytes,
    _starting_hash_key: u128,
    _ending_hash_key: u128,
) -> Vec<UserRecord> {
    deaggregate(partition_key, explicit_hash_key, data)
}

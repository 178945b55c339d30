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
    pub fn size_with(&self, _partition_key: &str, _explicit_hash_key: Option<&str>, _data_len: usize) -> usize {
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

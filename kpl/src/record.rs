//! What a user puts, and what the producer says happened to it.

use std::time::Duration;

use bytes::Bytes;

/// A user record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Decides the shard (through its MD5) unless an explicit hash key is given. 1 to 256
    /// characters.
    pub partition_key: String,
    /// A decimal hash key in 0..2^128-1 that picks the shard instead of the partition key.
    pub explicit_hash_key: Option<String>,
    /// The payload.
    pub data: Bytes,
}

impl Record {
    /// A record with this partition key and data.
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self {
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            data: data.into(),
        }
    }

    /// Routes the record by this hash key instead of its partition key.
    #[must_use]
    pub fn with_explicit_hash_key(mut self, hash_key: impl Into<String>) -> Self {
        self.explicit_hash_key = Some(hash_key.into());
        self
    }

    /// Bytes the record takes against Kinesis' limits: data plus partition key.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// One attempt to deliver a user record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// How long after the put the attempt was sent.
    pub delay: Duration,
    /// How long the PutRecords call took.
    pub duration: Duration,
    /// The error code, or `None` for the successful attempt.
    pub error_code: Option<String>,
    /// The error message.
    pub error_message: Option<String>,
}

/// Where a user record landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The shard that holds it.
    pub shard_id: String,
    /// The sequence number of the Kinesis record that holds it.
    pub sequence_number: String,
    /// Its position inside an aggregate, when it was aggregated.
    pub sub_sequence_number: Option<u64>,
    /// Every attempt, the last one successful.
    pub attempts: Vec<Attempt>,
}

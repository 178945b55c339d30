//! The `AggregatedRecord` protobuf as prost messages, for reading.
//!
//! These mirror `aws/kinesis/protobuf/messages.proto` of the KPL with two deliberate liberties,
//! both so that decoding gives what the Java KCL's proto2 parser gives:
//! - proto2 `required` fields are declared `optional`, because prost does not enforce `required`:
//!   the decoder checks their presence itself and treats a missing one as a parse failure, as
//!   protobuf-java does.
//! - `string` fields are declared `bytes`: protobuf-java does not validate UTF-8 in proto2 strings
//!   (it replaces invalid sequences when the string is read), whereas prost would reject the whole
//!   message. The decoder converts them lossily, which yields the same strings (and so the same MD5
//!   hash keys) as the KCL.
//!
//! `data` is [`Bytes`]: decoding from a `Bytes` buffer slices it instead of copying.

use bytes::Bytes;

/// Several user records with shared key tables.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct AggregatedRecord {
    /// Distinct partition keys, referenced by index.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub partition_key_table: Vec<Bytes>,
    /// Distinct explicit hash keys (decimal strings), referenced by index.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<Bytes>,
    /// The user records, in order.
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

/// One user record.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Record {
    /// Index into the partition-key table (required).
    #[prost(uint64, optional, tag = "1")]
    pub partition_key_index: Option<u64>,
    /// Index into the explicit-hash-key table.
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    /// The user data (required).
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub data: Option<Bytes>,
    /// Unused by the KPL and the KCL; parsed only to apply proto2's required-field rule.
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

/// A key/value tag on a record.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Tag {
    /// The tag's key (required).
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub key: Option<Bytes>,
    /// The tag's value.
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub value: Option<Bytes>,
}

impl AggregatedRecord {
    /// Whether every proto2 `required` field is present, the check protobuf-java makes when
    /// parsing.
    pub(super) fn has_required_fields(&self) -> bool {
        self.records.iter().all(|r| {
            r.partition_key_index.is_some()
                && r.data.is_some()
                && r.tags.iter().all(|t| t.key.is_some())
        })
    }
}

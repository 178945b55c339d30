//! The reader, with the rules of the KCL's `AggregatorUtil.deaggregate`.

use std::ops::RangeInclusive;

use bytes::Bytes;
use md5::{Digest, Md5};
use prost::Message;

use super::proto::AggregatedRecord;
use super::{DIGEST_LEN, MAGIC, UserRecord, lenient_hash_key, partition_key_hash};

/// Splits a Kinesis record into its user records.
///
/// Returns the record itself (the given keys, `data` unchanged, sub-sequence number 0) unless it is
/// an aggregate: it starts with [`MAGIC`], has more than 16 bytes after it, its MD5 trailer matches
/// the bytes between, those bytes parse as an `AggregatedRecord` with every proto2 required field
/// present, and every index points into its table. Otherwise returns the user records with
/// sub-sequence numbers `0..n` (none for an aggregate of zero records, as the KCL). Each record's
/// data is a slice of `data`, not a copy.
///
/// The KCL delivers the records before a bad index and logs an error; this delivers the record
/// as-is instead, so nothing is lost or half-delivered.
pub fn deaggregate(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    data: &Bytes,
) -> Vec<UserRecord> {
    match decode(data, None) {
        Decoded::Records(records) => records,
        Decoded::NotAggregated => vec![as_is(partition_key, explicit_hash_key, data)],
        // Only a shard range drops.
        Decoded::Dropped => Vec::new(),
    }
}

/// [`deaggregate`] for a record read from the shard whose hash keys are
/// `starting_hash_key..=ending_hash_key`.
///
/// The KCL drops a whole aggregate when any of its user records' [`hash_key`](super::hash_key)
/// lies outside the shard: such an aggregate was put where some of its records do not belong (by a
/// producer that did not aggregate per shard, or across a reshard), and KCL consumers see none of
/// its records. This does the same and logs a warning. Explicit hash keys are read as the KCL reads
/// them (an optional sign, leading zeros allowed); an aggregate holding one that is not a number is
/// dropped too, where the KCL logs an error and delivers the records before it. A record that is
/// not an aggregate is delivered as-is without a check, as by the KCL.
pub fn deaggregate_for_shard(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    data: &Bytes,
    starting_hash_key: u128,
    ending_hash_key: u128,
) -> Vec<UserRecord> {
    match decode(data, Some(starting_hash_key..=ending_hash_key)) {
        Decoded::Records(records) => records,
        Decoded::NotAggregated => vec![as_is(partition_key, explicit_hash_key, data)],
        Decoded::Dropped => Vec::new(),
    }
}

fn as_is(partition_key: &str, explicit_hash_key: Option<&str>, data: &Bytes) -> UserRecord {
    UserRecord {
        partition_key: partition_key.to_owned(),
        explicit_hash_key: explicit_hash_key.map(str::to_owned),
        data: data.clone(),
        sub_sequence_number: 0,
    }
}

enum Decoded {
    Records(Vec<UserRecord>),
    NotAggregated,
    Dropped,
}

/// Reads an aggregate; with `shard`, checks every record's hash key against it in record order, as
/// the KCL does.
fn decode(data: &Bytes, shard: Option<RangeInclusive<u128>>) -> Decoded {
    if data.len() <= MAGIC.len() + DIGEST_LEN || data[..MAGIC.len()] != MAGIC {
        return Decoded::NotAggregated;
    }
    let proto_end = data.len() - DIGEST_LEN;
    let proto = data.slice(MAGIC.len()..proto_end);
    if Md5::digest(&proto)[..] != data[proto_end..] {
        return Decoded::NotAggregated;
    }
    let message = match AggregatedRecord::decode(proto) {
        Ok(message) if message.has_required_fields() => message,
        _ => return Decoded::NotAggregated,
    };

    let partition_keys: Vec<String> = message
        .partition_key_table
        .iter()
        .map(|k| lossy(k))
        .collect();
    let explicit_hash_keys: Vec<String> = message
        .explicit_hash_key_table
        .iter()
        .map(|k| lossy(k))
        .collect();
    // Hash keys per table entry, computed when first needed: a partition key is usually shared by
    // many records, and one only referenced next to an explicit hash key is never hashed.
    let mut pk_hashes: Vec<Option<u128>> = Vec::new();
    let mut ehk_hashes: Vec<Option<Option<u128>>> = Vec::new();
    if shard.is_some() {
        pk_hashes.resize(partition_keys.len(), None);
        ehk_hashes.resize(explicit_hash_keys.len(), None);
    }

    let mut records = Vec::with_capacity(message.records.len());
    for (sub_sequence_number, record) in message.records.into_iter().enumerate() {
        // Presence was checked by `has_required_fields`.
        let (Some(pk_index), Some(data)) = (record.partition_key_index, record.data) else {
            return Decoded::NotAggregated;
        };
        let Some(pk_index) = table_index(pk_index, partition_keys.len()) else {
            return Decoded::NotAggregated;
        };
        let ehk_index = match record.explicit_hash_key_index {
            None => None,
            Some(i) => match table_index(i, explicit_hash_keys.len()) {
                Some(i) => Some(i),
                None => return Decoded::NotAggregated,
            },
        };

        if let Some(shard) = &shard {
            let hash = match ehk_index {
                Some(i) => {
                    *ehk_hashes[i].get_or_insert_with(|| lenient_hash_key(&explicit_hash_keys[i]))
                }
                None => Some(
                    *pk_hashes[pk_index]
                        .get_or_insert_with(|| partition_key_hash(&partition_keys[pk_index])),
                ),
            };
            if !hash.is_some_and(|h| shard.contains(&h)) {
                warn_dropped(
                    &partition_keys[pk_index],
                    ehk_index.map(|i| &*explicit_hash_keys[i]),
                    hash,
                    shard,
                );
                return Decoded::Dropped;
            }
        }

        records.push(UserRecord {
            partition_key: partition_keys[pk_index].clone(),
            explicit_hash_key: ehk_index.map(|i| explicit_hash_keys[i].clone()),
            data,
            sub_sequence_number: sub_sequence_number as u64,
        });
    }
    Decoded::Records(records)
}

/// `index` as a position in a table of `len` entries, if it is one.
fn table_index(index: u64, len: usize) -> Option<usize> {
    usize::try_from(index).ok().filter(|i| *i < len)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cold]
fn warn_dropped(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    hash: Option<u128>,
    shard: &RangeInclusive<u128>,
) {
    match hash {
        Some(hash) => tracing::warn!(
            partition_key,
            explicit_hash_key,
            hash_key = %hash,
            starting_hash_key = %shard.start(),
            ending_hash_key = %shard.end(),
            "dropping an aggregated record: a user record in it hashes outside the shard it was read from"
        ),
        None => tracing::warn!(
            partition_key,
            explicit_hash_key,
            "dropping an aggregated record: a user record in it has an explicit hash key that is not a decimal \
             128-bit integer"
        ),
    }
}

//! GetRecords.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::iterator::{ITERATOR_TTL_MS, ShardIterator};
use crate::model::shard::{ReadLimits, shard_id};
use crate::model::stream::StreamState;
use crate::protocol::json::{Base64Out, Timestamp};
use crate::storage::StoredRecord;

use super::Kinesis;
use super::validate::Violations;

/// Most records and bytes one GetRecords call returns.
const MAX_RECORDS: usize = 10_000;
const MAX_BYTES: usize = 10 << 20;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetRecordsInput {
    shard_iterator: Option<String>,
    limit: Option<i64>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetRecordsOutput {
    records: Vec<RecordOut>,
    next_shard_iterator: Option<String>,
    millis_behind_latest: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    child_shards: Vec<ChildShardOut>,
}

/// A record in the wire shape shared by GetRecords and fan-out events.
#[derive(Debug)]
pub(crate) struct RecordOut(pub(crate) StoredRecord);

impl Serialize for RecordOut {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Wire<'a> {
            sequence_number: String,
            approximate_arrival_timestamp: Timestamp,
            data: Base64Out<'a>,
            // Absent for records put to an AUTO stream without one (keys are never empty).
            #[serde(skip_serializing_if = "str::is_empty")]
            partition_key: &'a str,
            // Only encrypted records carry it, as on AWS.
            #[serde(skip_serializing_if = "Option::is_none")]
            encryption_type: Option<&'static str>,
        }
        Wire {
            sequence_number: self.0.sequence_number.to_string(),
            approximate_arrival_timestamp: Timestamp(self.0.arrival_ms),
            data: Base64Out(&self.0.data),
            partition_key: &self.0.partition_key,
            encryption_type: self.0.encrypted.then_some("KMS"),
        }
        .serialize(s)
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ChildShardOut {
    shard_id: String,
    parent_shards: Vec<String>,
    hash_key_range: HashKeyRangeOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct HashKeyRangeOut {
    starting_hash_key: String,
    ending_hash_key: String,
}

impl Kinesis {
    pub(crate) fn get_records(&self, input: GetRecordsInput) -> Result<GetRecordsOutput, ApiError> {
        let mut v = Violations::default();
        v.require(&input.shard_iterator, "shardIterator");
        if let Some(token) = &input.shard_iterator {
            v.length(token, "shardIterator", 1, 512);
        }
        if let Some(limit) = input.limit {
            v.range(limit, "limit", 1, MAX_RECORDS as i64);
        }
        v.finish()?;
        let token = input.shard_iterator.unwrap_or_default();
        let iterator = ShardIterator::decode(&token, &self.config.token_key)
            .ok_or_else(|| ApiError::InvalidArgument("Invalid ShardIterator.".into()))?;
        if let Some(arn) = &input.stream_arn
            && *arn != self.stream_arn(&iterator.stream_name)
        {
            return Err(ApiError::InvalidArgument(format!(
                "The shard iterator does not belong to stream {arn}."
            )));
        }
        let now = self.now_ms();
        if iterator.is_expired(now) {
            return Err(ApiError::ExpiredIterator(format!(
                "Iterator expired. The iterator was created at time {} while right now it is {now} \
                 which is further in the future than the tolerated delay of {ITERATOR_TTL_MS} \
                 milliseconds.",
                iterator.issued_ms
            )));
        }
        let not_found = || {
            ApiError::ResourceNotFound(format!(
                "Shard {} in stream {} under account {} does not exist",
                shard_id(iterator.shard_index),
                iterator.stream_name,
                self.config.account_id
            ))
        };
        let stream = self
            .registry
            .get(&iterator.stream_name)
            .filter(|s| s.id == iterator.stream_id)
            .ok_or_else(not_found)?;
        let limits = ReadLimits {
            max_records: input.limit.map_or(MAX_RECORDS, |l| l as usize),
            max_bytes: MAX_BYTES,
            durable_lsn: self.durable_lsn(),
        };
        let mut state = stream.state.lock();
        state.trim(now);
        let shard = state
            .shard_mut(iterator.shard_index)
            .ok_or_else(not_found)?;
        let limited = self.config.throughput_limits;
        if limited && !shard.throttle.admit_read(now) {
            return Err(self.rate_exceeded(iterator.shard_index, &iterator.stream_name));
        }
        let batch = shard.read(iterator.position, limits, now);
        stream.counters.polled(iterator.shard_index, &batch);
        if limited {
            let bytes = batch
                .records
                .iter()
                .map(|r| r.data.len() + r.partition_key.len())
                .sum();
            shard.throttle.charge_read(bytes, now);
        }
        let shard = &state.shards[iterator.shard_index as usize];
        let child_shards = if batch.at_shard_end {
            child_shards(&state, shard.index)
        } else {
            Vec::new()
        };
        drop(state);
        let next_shard_iterator = (!batch.at_shard_end).then(|| {
            ShardIterator {
                issued_ms: now,
                position: batch.next_position,
                ..iterator
            }
            .encode(&self.config.token_key)
        });
        Ok(GetRecordsOutput {
            records: batch.records.into_iter().map(RecordOut).collect(),
            next_shard_iterator,
            millis_behind_latest: batch.millis_behind,
            child_shards,
        })
    }
}

/// The children of a closed shard, as GetRecords and fan-out name them at its end.
pub(crate) fn child_shards(state: &StreamState, parent: u32) -> Vec<ChildShardOut> {
    state
        .shards
        .iter()
        .filter(|c| c.parent == Some(parent) || c.adjacent_parent == Some(parent))
        .map(|c| ChildShardOut {
            shard_id: c.id(),
            parent_shards: [c.parent, c.adjacent_parent]
                .into_iter()
                .flatten()
                .map(shard_id)
                .collect(),
            hash_key_range: HashKeyRangeOut {
                starting_hash_key: c.hash_range.start.to_string(),
                ending_hash_key: c.hash_range.end.to_string(),
            },
        })
        .collect()
}

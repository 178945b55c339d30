//! GetRecords.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::iterator::{ITERATOR_TTL_MS, ShardIterator};
use crate::model::records::finish_read;
use crate::model::shard::{ReadLimits, shard_id};
use crate::model::stream::StreamState;
use crate::protocol::cbor::writer as cbor;
use crate::protocol::json::writer::{self, RecordView};
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

/// GetRecords' answer, written by [`GetRecordsOutput::to_json`].
#[derive(Debug)]
pub(crate) struct GetRecordsOutput {
    records: Vec<StoredRecord>,
    next_shard_iterator: Option<String>,
    millis_behind_latest: i64,
    child_shards: Vec<ChildShardOut>,
}

impl GetRecordsOutput {
    /// The awsJson1.1 body: `{"Records":[...],"NextShardIterator":...,"MillisBehindLatest":n,
    /// "ChildShards":[...]?}`, a null iterator at the shard's end, `ChildShards` only there.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(records_size_hint(&self.records) + 700);
        out.extend_from_slice(b"{\"Records\":");
        records_json(&mut out, &self.records);
        out.extend_from_slice(b",\"NextShardIterator\":");
        match &self.next_shard_iterator {
            Some(token) => writer::string(&mut out, token),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"MillisBehindLatest\":");
        writer::int(&mut out, self.millis_behind_latest);
        child_shards_json(&mut out, &self.child_shards);
        out.push(b'}');
        out
    }

    /// The CBOR body: the members of [`Self::to_json`], in its order.
    pub(crate) fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(records_cbor_size_hint(&self.records) + 700);
        cbor::map(&mut out, 3 + usize::from(!self.child_shards.is_empty()));
        cbor::text(&mut out, "Records");
        records_cbor(&mut out, &self.records);
        cbor::text(&mut out, "NextShardIterator");
        match &self.next_shard_iterator {
            Some(token) => cbor::text(&mut out, token),
            None => cbor::null(&mut out),
        }
        cbor::text(&mut out, "MillisBehindLatest");
        cbor::int(&mut out, self.millis_behind_latest);
        child_shards_cbor(&mut out, &self.child_shards);
        out
    }
}

/// About how many bytes the CBOR of these records takes.
pub(crate) fn records_cbor_size_hint(records: &[StoredRecord]) -> usize {
    records
        .iter()
        .map(|r| cbor::record_size_hint(&RecordView::of(r)))
        .sum::<usize>()
        + 9
}

/// Writes records as the CBOR array GetRecords and fan-out events share.
pub(crate) fn records_cbor(out: &mut Vec<u8>, records: &[StoredRecord]) {
    cbor::array(out, records.len());
    for record in records {
        cbor::record(out, &RecordView::of(record));
    }
}

/// Writes the `ChildShards` member unless there are none.
pub(crate) fn child_shards_cbor(out: &mut Vec<u8>, child_shards: &[ChildShardOut]) {
    if !child_shards.is_empty() {
        cbor::text(out, "ChildShards");
        cbor::translated(out, child_shards);
    }
}

/// About how many bytes the JSON of these records takes.
pub(crate) fn records_size_hint(records: &[StoredRecord]) -> usize {
    records
        .iter()
        .map(|r| RecordView::of(r).json_size_hint())
        .sum::<usize>()
        + 2
}

/// Writes records as the JSON array GetRecords and fan-out events share.
pub(crate) fn records_json(out: &mut Vec<u8>, records: &[StoredRecord]) {
    out.push(b'[');
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        writer::record(out, &RecordView::of(record));
    }
    out.push(b']');
}

/// Writes `,"ChildShards":[...]` unless there are none (rare: only at a shard's end).
pub(crate) fn child_shards_json(out: &mut Vec<u8>, child_shards: &[ChildShardOut]) {
    if !child_shards.is_empty() {
        out.extend_from_slice(b",\"ChildShards\":");
        serde_json::to_writer(&mut *out, child_shards)
            .unwrap_or_else(|_| unreachable!("child shards always serialise"));
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
    pub(crate) async fn get_records(
        &self,
        input: GetRecordsInput,
    ) -> Result<GetRecordsOutput, ApiError> {
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
        let limited = self.config.throughput_limits;
        let (plan, child_shards) = {
            let mut state = stream.state.lock();
            state.trim(now);
            let shard = state
                .shard_mut(iterator.shard_index)
                .ok_or_else(not_found)?;
            if limited && !shard.throttle.admit_read(now) {
                return Err(self.rate_exceeded(iterator.shard_index, &iterator.stream_name));
            }
            let plan = shard.plan_read(iterator.position, limits, now);
            let child_shards = match plan.at_shard_end() {
                true => child_shards(&state, iterator.shard_index),
                false => Vec::new(),
            };
            (plan, child_shards)
        };
        // Records no longer cached are read back from the log without the stream's lock (a
        // cold read holds up neither the stream's puts nor its other reads) and off the async
        // workers.
        let mut batch = finish_read(plan.reads_log(), move || plan.finish()).await?;
        if let Some(failure) = batch.failure.take()
            && batch.records.is_empty()
        {
            return Err(failure.into_api_error(iterator.shard_index));
        }
        stream.counters.polled(iterator.shard_index, &batch);
        if limited {
            let bytes = batch
                .records
                .iter()
                .map(|r| r.data.len() + r.partition_key.len())
                .sum();
            if let Some(shard) = stream.state.lock().shard_mut(iterator.shard_index) {
                shard.throttle.charge_read(bytes, now);
            }
        }
        let child_shards = match batch.at_shard_end {
            true => child_shards,
            false => Vec::new(),
        };
        let next_shard_iterator = (!batch.at_shard_end).then(|| {
            ShardIterator {
                issued_ms: now,
                position: batch.next_position,
                ..iterator
            }
            .encode(&self.config.token_key)
        });
        Ok(GetRecordsOutput {
            records: batch.records,
            next_shard_iterator,
            millis_behind_latest: batch.millis_behind,
            child_shards,
        })
    }
}

#[cfg(test)]
mod tests;

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

//! SplitShard, MergeShards and UpdateShardCount.
//!
//! Resharding takes effect at once: the parents close and the children open. The stream then
//! shows UPDATING for the engine's reshard delay (zero by default; Kinesis takes a few seconds),
//! during which further resharding is refused with ResourceInUseException, as on AWS.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::hash::parse_hash_key;
use crate::model::reshard::ReshardError;
use crate::model::shard::{parse_shard_id, shard_id};
use crate::model::stream::{Stream, StreamMode, StreamState};

use super::Kinesis;
use super::validate::Violations;

/// Most shards one stream may have open, and most UpdateShardCount calls per rolling day.
const MAX_SHARDS_PER_STREAM: u32 = 10_000;
const MAX_SCALINGS_PER_DAY: usize = 10;
const DAY_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SplitShardInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    shard_to_split: Option<String>,
    new_starting_hash_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MergeShardsInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    shard_to_merge: Option<String>,
    adjacent_shard_to_merge: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateShardCountInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    target_shard_count: Option<i64>,
    scaling_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateShardCountOutput {
    stream_name: String,
    current_shard_count: usize,
    target_shard_count: u32,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
}

fn check_shard_member(value: &Option<String>, path: &str, v: &mut Violations) {
    v.require(value, path);
    v.shard_id(value.as_deref(), path);
}

impl Kinesis {
    /// The stream a resharding request names: it must exist, be ACTIVE and be provisioned.
    fn reshardable(&self, name: &str, operation: &str) -> Result<std::sync::Arc<Stream>, ApiError> {
        let stream = self.stream(name)?;
        let status = self.status(&stream);
        if status != "ACTIVE" {
            return Err(ApiError::ResourceInUse(format!(
                "Stream {name} under account {} not ACTIVE, instead in state {status}",
                self.config.account_id
            )));
        }
        if stream.state.lock().mode == StreamMode::OnDemand {
            return Err(ApiError::Validation(vec![format!(
                "{operation} is not supported for stream {name} in ON_DEMAND mode."
            )]));
        }
        Ok(stream)
    }

    /// Shows the stream UPDATING for the reshard delay.
    fn mark_resharding(&self, stream: &Stream) {
        if self.config.reshard_delay_ms > 0 {
            stream.state.lock().reshard_until_ms = self.now_ms() + self.config.reshard_delay_ms;
        }
    }

    fn reshard_error(&self, error: ReshardError, stream: &str) -> ApiError {
        let account = &self.config.account_id;
        match error {
            ReshardError::UnknownShard(index) => ApiError::ResourceNotFound(format!(
                "Could not find shard {} in stream {stream} under account {account}.",
                shard_id(index)
            )),
            ReshardError::Closed(index) => ApiError::InvalidArgument(format!(
                "Shard {} in stream {stream} under account {account} has already been merged or \
                 split, and thus is not eligible for merging or splitting.",
                shard_id(index)
            )),
            ReshardError::BadSplitPoint { shard, range } => ApiError::InvalidArgument(format!(
                "NewStartingHashKey used in SplitShard() on shard {} in stream {stream} under \
                 account {account} is not both greater than one plus the shard's \
                 StartingHashKey {} and less than the shard's EndingHashKey {}.",
                shard_id(shard),
                range.start,
                range.end
            )),
            ReshardError::NotAdjacent(a, b) => ApiError::InvalidArgument(format!(
                "Shards {} and {} in stream {stream} under account {account} are not an adjacent \
                 pair of shards eligible for merging",
                shard_id(a),
                shard_id(b)
            )),
        }
    }

    /// Parses a shard id of a resharding request; unknown ids are not found.
    fn shard_index(&self, id: &str, stream: &str) -> Result<u32, ApiError> {
        parse_shard_id(id).ok_or_else(|| {
            ApiError::ResourceNotFound(format!(
                "Could not find shard {id} in stream {stream} under account {}.",
                self.config.account_id
            ))
        })
    }

    pub(crate) fn split_shard(&self, input: SplitShardInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        check_shard_member(&input.shard_to_split, "shardToSplit", &mut v);
        v.require(&input.new_starting_hash_key, "newStartingHashKey");
        v.hash_key(input.new_starting_hash_key.as_deref(), "newStartingHashKey");
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let key_text = input.new_starting_hash_key.unwrap_or_default();
        let key = parse_hash_key(&key_text).ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "NewStartingHashKey {key_text} is not in the range [0, 2^128-1]."
            ))
        })?;
        let stream = self.reshardable(&name, "SplitShard")?;
        let index = self.shard_index(&input.shard_to_split.unwrap_or_default(), &name)?;
        self.reshape(&stream, |draft| {
            self.check_shard_limit(1)?;
            draft
                .split(index, key, self.now_ms())
                .map_err(|e| self.reshard_error(e, &name))
        })?;
        self.mark_resharding(&stream);
        tracing::info!(stream = %name, shard = %shard_id(index), "split shard");
        Ok(())
    }

    pub(crate) fn merge_shards(&self, input: MergeShardsInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        check_shard_member(&input.shard_to_merge, "shardToMerge", &mut v);
        check_shard_member(
            &input.adjacent_shard_to_merge,
            "adjacentShardToMerge",
            &mut v,
        );
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let stream = self.reshardable(&name, "MergeShards")?;
        let index = self.shard_index(&input.shard_to_merge.unwrap_or_default(), &name)?;
        let adjacent =
            self.shard_index(&input.adjacent_shard_to_merge.unwrap_or_default(), &name)?;
        self.reshape(&stream, |draft| {
            draft
                .merge(index, adjacent, self.now_ms())
                .map_err(|e| self.reshard_error(e, &name))
        })?;
        self.mark_resharding(&stream);
        tracing::info!(stream = %name, shard = %shard_id(index), adjacent = %shard_id(adjacent), "merged shards");
        Ok(())
    }

    pub(crate) fn update_shard_count(
        &self,
        input: UpdateShardCountInput,
    ) -> Result<UpdateShardCountOutput, ApiError> {
        let mut v = Violations::default();
        v.require(&input.target_shard_count, "targetShardCount");
        if let Some(target) = input.target_shard_count {
            v.range(target, "targetShardCount", 1, 100_000);
        }
        v.require(&input.scaling_type, "scalingType");
        if let Some(kind) = &input.scaling_type {
            v.check(
                kind == "UNIFORM_SCALING",
                kind,
                "scalingType",
                "satisfy enum value set: [UNIFORM_SCALING]",
            );
        }
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let target = input.target_shard_count.unwrap_or_default() as u32;
        let stream = self.reshardable(&name, "UpdateShardCount")?;
        let current = self.reshape(&stream, |draft| {
            let now = self.now_ms();
            let current = draft.open_shard_count();
            check_scaling(draft, current, target, now, &name)?;
            self.check_shard_limit(target.saturating_sub(current as u32))?;
            draft.scale_uniformly(target, now);
            draft.scalings_ms.push(now);
            Ok(current)
        })?;
        self.mark_resharding(&stream);
        tracing::info!(stream = %name, current, target, "updated shard count");
        Ok(UpdateShardCountOutput {
            stream_name: name,
            current_shard_count: current,
            target_shard_count: target,
            stream_arn: stream.arn.clone(),
        })
    }
}

/// The limits of UpdateShardCount: at most double or half the open shards, at most 10,000
/// shards, at most ten scalings per rolling 24 hours.
fn check_scaling(
    state: &StreamState,
    current: usize,
    target: u32,
    now_ms: i64,
    name: &str,
) -> Result<(), ApiError> {
    let target_usize = target as usize;
    if target_usize > current * 2 {
        return Err(ApiError::LimitExceeded(format!(
            "UpdateShardCount cannot scale up over double your current open shard count. \
             Current open shard count: {current} Target shard count: {target}"
        )));
    }
    if target_usize * 2 < current {
        return Err(ApiError::LimitExceeded(format!(
            "UpdateShardCount cannot scale down below half your current open shard count. \
             Current open shard count: {current} Target shard count: {target}"
        )));
    }
    if target > MAX_SHARDS_PER_STREAM {
        return Err(ApiError::LimitExceeded(format!(
            "UpdateShardCount cannot scale stream {name} above {MAX_SHARDS_PER_STREAM} shards."
        )));
    }
    let recent = state
        .scalings_ms
        .iter()
        .filter(|&&t| now_ms - t < DAY_MS)
        .count();
    if recent >= MAX_SCALINGS_PER_DAY {
        return Err(ApiError::LimitExceeded(format!(
            "Stream {name} has already been scaled {recent} times in the last 24 hours; the \
             limit is {MAX_SCALINGS_PER_DAY}."
        )));
    }
    Ok(())
}

//! ListShards, and the shard shape DescribeStream shares.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::shard::Shard;
use crate::model::stream::StreamState;
use crate::protocol::json::Timestamp;

use super::Kinesis;
use super::page_token::PageToken;
use super::validate::Violations;

/// ListShards returns at most this many shards per call, whatever MaxResults says.
const LIST_MAX_SHARDS: usize = 1000;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ShardOut {
    shard_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    adjacent_parent_shard_id: Option<String>,
    hash_key_range: HashKeyRangeOut,
    sequence_number_range: SequenceNumberRangeOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct HashKeyRangeOut {
    starting_hash_key: String,
    ending_hash_key: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SequenceNumberRangeOut {
    starting_sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ending_sequence_number: Option<String>,
}

impl From<&Shard> for ShardOut {
    fn from(shard: &Shard) -> Self {
        Self {
            shard_id: shard.id(),
            parent_shard_id: shard.parent.map(crate::model::shard::shard_id),
            adjacent_parent_shard_id: shard.adjacent_parent.map(crate::model::shard::shard_id),
            hash_key_range: HashKeyRangeOut {
                starting_hash_key: shard.hash_range.start.to_string(),
                ending_hash_key: shard.hash_range.end.to_string(),
            },
            sequence_number_range: SequenceNumberRangeOut {
                starting_sequence_number: shard.starting_seq.to_string(),
                ending_sequence_number: shard.ending_seq.map(|n| n.to_string()),
            },
        }
    }
}

/// Shards a listing shows at `now_ms`: open ones, and closed ones still within retention.
pub(crate) fn listed_shards(state: &StreamState, now_ms: i64) -> impl Iterator<Item = &Shard> {
    let horizon = now_ms - state.retention_ms();
    state
        .shards
        .iter()
        .filter(move |s| s.closed_ms().is_none_or(|closed| closed >= horizon))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListShardsInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    next_token: Option<String>,
    exclusive_start_shard_id: Option<String>,
    max_results: Option<i64>,
    shard_filter: Option<ShardFilter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ShardFilter {
    r#type: Option<String>,
    shard_id: Option<String>,
    timestamp: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListShardsOutput {
    shards: Vec<ShardOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Which shards a ShardFilter selects.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Selection {
    After(String),
    AtTime(i64),
    FromTime(i64),
    OpenOnly,
    FromTrimHorizon,
    AtTrimHorizon,
}

impl Selection {
    /// The form kept in a NextToken, so later pages apply the same filter.
    fn to_token(&self) -> String {
        match self {
            Self::After(_) | Self::FromTrimHorizon => String::new(),
            Self::AtTime(t) => format!("AT_TIMESTAMP {t}"),
            Self::FromTime(t) => format!("FROM_TIMESTAMP {t}"),
            Self::OpenOnly => "AT_LATEST".into(),
            Self::AtTrimHorizon => "AT_TRIM_HORIZON".into(),
        }
    }

    fn from_token(text: &str) -> Self {
        let time = |t: &str| t.parse().unwrap_or_default();
        match text.split_once(' ') {
            Some(("AT_TIMESTAMP", t)) => Self::AtTime(time(t)),
            Some(("FROM_TIMESTAMP", t)) => Self::FromTime(time(t)),
            _ if text == "AT_LATEST" => Self::OpenOnly,
            _ if text == "AT_TRIM_HORIZON" => Self::AtTrimHorizon,
            _ => Self::FromTrimHorizon,
        }
    }
}

fn open_at(shard: &Shard, at_ms: i64) -> bool {
    shard.created_ms() <= at_ms && shard.closed_ms().is_none_or(|closed| closed > at_ms)
}

fn parse_filter(filter: &ShardFilter, v: &mut Violations) -> Result<Selection, ApiError> {
    v.require(&filter.r#type, "shardFilter.type");
    let need_id = || {
        filter.shard_id.clone().ok_or_else(|| {
            ApiError::InvalidArgument(
                "ShardId must be provided for the AFTER_SHARD_ID filter.".into(),
            )
        })
    };
    let need_time = |kind: &str| {
        filter.timestamp.map(|t| t.0).ok_or_else(|| {
            ApiError::InvalidArgument(format!("Timestamp must be provided for the {kind} filter."))
        })
    };
    Ok(match filter.r#type.as_deref() {
        Some("AFTER_SHARD_ID") => Selection::After(need_id()?),
        Some("AT_TRIM_HORIZON") => Selection::AtTrimHorizon,
        Some("FROM_TRIM_HORIZON") | None => Selection::FromTrimHorizon,
        Some("AT_LATEST") => Selection::OpenOnly,
        Some("AT_TIMESTAMP") => Selection::AtTime(need_time("AT_TIMESTAMP")?),
        Some("FROM_TIMESTAMP") => Selection::FromTime(need_time("FROM_TIMESTAMP")?),
        Some(other) => {
            v.check(
                false,
                other,
                "shardFilter.type",
                "satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, \
                 AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]",
            );
            Selection::FromTrimHorizon
        }
    })
}

impl Kinesis {
    pub(crate) fn list_shards(&self, input: ListShardsInput) -> Result<ListShardsOutput, ApiError> {
        let mut v = Violations::default();
        if let Some(max) = input.max_results {
            v.range(max, "maxResults", 1, 10_000);
        }
        v.shard_id(
            input.exclusive_start_shard_id.as_deref(),
            "exclusiveStartShardId",
        );
        let now = self.now_ms();
        let (name, selection, mut after) = match &input.next_token {
            Some(token) => {
                if input.stream_name.is_some() || input.stream_arn.is_some() {
                    return Err(ApiError::InvalidArgument(
                        "NextToken and StreamName or StreamARN cannot be provided together.".into(),
                    ));
                }
                if input.shard_filter.is_some() {
                    return Err(ApiError::InvalidArgument(
                        "NextToken and ShardFilter cannot be provided together.".into(),
                    ));
                }
                v.finish()?;
                let token = PageToken::parse(token, now, &self.config.token_key)?;
                (
                    token.scope,
                    Selection::from_token(&token.filter),
                    Some(token.after),
                )
            }
            None => {
                let selection = match &input.shard_filter {
                    Some(filter) => parse_filter(filter, &mut v)?,
                    None => Selection::FromTrimHorizon,
                };
                let name = self.stream_target(
                    input.stream_name.as_deref(),
                    input.stream_arn.as_deref(),
                    &mut v,
                )?;
                (name, selection, None)
            }
        };
        if let Some(start) = &input.exclusive_start_shard_id {
            after = Some(after.map_or_else(|| start.clone(), |a| a.max(start.clone())));
        }
        let stream = self.stream(&name)?;
        let state = stream.state.lock();
        let trim_horizon = (now - state.retention_ms()).max(stream.created_ms);
        let limit = input
            .max_results
            .map_or(LIST_MAX_SHARDS, |m| m as usize)
            .min(LIST_MAX_SHARDS);
        let mut shards: Vec<&Shard> = listed_shards(&state, now)
            .filter(|s| after.as_ref().is_none_or(|a| s.id() > *a))
            .filter(|s| match &selection {
                Selection::After(after) => s.id() > *after,
                Selection::AtTime(t) => open_at(s, (*t).max(stream.created_ms)),
                Selection::FromTime(t) => s.closed_ms().is_none_or(|closed| closed >= *t),
                Selection::OpenOnly => s.is_open(),
                Selection::FromTrimHorizon => true,
                Selection::AtTrimHorizon => open_at(s, trim_horizon),
            })
            .take(limit + 1)
            .collect();
        let more = shards.len() > limit;
        shards.truncate(limit);
        let next_token = more.then(|| {
            PageToken {
                issued_ms: now,
                scope: name.clone(),
                filter: selection.to_token(),
                after: shards.last().map(|s| s.id()).unwrap_or_default(),
            }
            .encode(&self.config.token_key)
        });
        Ok(ListShardsOutput {
            shards: shards.into_iter().map(ShardOut::from).collect(),
            next_token,
        })
    }
}

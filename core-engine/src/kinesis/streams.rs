//! CreateStream, DeleteStream, DescribeStream, DescribeStreamSummary and ListStreams.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::stream::{Stream, StreamMode};
use crate::protocol::json::Timestamp;

use super::Kinesis;
use super::monitoring::{EnhancedMetrics, enhanced_monitoring};
use super::on_demand::WarmThroughputOut;
use super::page_token::PageToken;
use super::shards::{ShardOut, listed_shards};
use super::tags::check_new_tags;
use super::validate::Violations;

/// Shards of a new on-demand stream, as AWS starts them (4 MiB/s of write capacity).
const ON_DEMAND_INITIAL_SHARDS: u32 = 4;
/// DescribeStream returns at most this many shards per call.
const DESCRIBE_MAX_SHARDS: usize = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamModeDetails {
    stream_mode: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamModeOut {
    stream_mode: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateStreamInput {
    stream_name: Option<String>,
    shard_count: Option<i64>,
    stream_mode_details: Option<StreamModeDetails>,
    tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "MaxRecordSizeInKiB")]
    max_record_size_in_kib: Option<i64>,
    #[serde(rename = "WarmThroughputMiBps")]
    warm_throughput_mibps: Option<i64>,
    record_distribution_strategy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamRef {
    pub(crate) stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub(crate) stream_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeStreamInput {
    #[serde(flatten)]
    stream: StreamRef,
    limit: Option<i64>,
    exclusive_start_shard_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeStreamOutput {
    stream_description: StreamDescription,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamDescription {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: &'static str,
    stream_mode_details: StreamModeOut,
    shards: Vec<ShardOut>,
    has_more_shards: bool,
    retention_period_hours: u32,
    stream_creation_timestamp: Timestamp,
    enhanced_monitoring: [EnhancedMetrics; 1],
    encryption_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeStreamSummaryOutput {
    stream_description_summary: StreamDescriptionSummary,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamDescriptionSummary {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: &'static str,
    stream_mode_details: StreamModeOut,
    retention_period_hours: u32,
    stream_creation_timestamp: Timestamp,
    enhanced_monitoring: [EnhancedMetrics; 1],
    encryption_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    open_shard_count: usize,
    consumer_count: usize,
    #[serde(rename = "MaxRecordSizeInKiB")]
    max_record_size_in_kib: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    warm_throughput: Option<WarmThroughputOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_distribution_strategy: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListStreamsInput {
    limit: Option<i64>,
    exclusive_start_stream_name: Option<String>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListStreamsOutput {
    stream_names: Vec<String>,
    has_more_streams: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    stream_summaries: Vec<StreamSummary>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamSummary {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: &'static str,
    stream_mode_details: StreamModeOut,
    stream_creation_timestamp: Timestamp,
}

pub(crate) fn parse_mode(details: Option<&StreamModeDetails>, v: &mut Violations) -> StreamMode {
    let Some(details) = details else {
        return StreamMode::Provisioned;
    };
    v.require(&details.stream_mode, "streamModeDetails.streamMode");
    match details.stream_mode.as_deref() {
        Some("ON_DEMAND") => StreamMode::OnDemand,
        Some("PROVISIONED") | None => StreamMode::Provisioned,
        Some(other) => {
            v.check(
                false,
                other,
                "streamModeDetails.streamMode",
                "satisfy enum value set: [PROVISIONED, ON_DEMAND]",
            );
            StreamMode::Provisioned
        }
    }
}

/// `KMS` while encryption is on (as requested, even while the stream is still UPDATING), else
/// `NONE`.
fn encryption_type(state: &crate::model::stream::StreamState) -> &'static str {
    match state.encryption.key_id {
        Some(_) => "KMS",
        None => "NONE",
    }
}

impl Kinesis {
    pub(crate) fn create_stream(&self, input: CreateStreamInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.stream_name, "streamName");
        v.stream_name(input.stream_name.as_deref(), "streamName");
        if let Some(count) = input.shard_count {
            v.range(count, "shardCount", 1, 100_000);
        }
        let mode = parse_mode(input.stream_mode_details.as_ref(), &mut v);
        super::capacity::check_max_record_size(input.max_record_size_in_kib, &mut v);
        super::on_demand::check_warm_throughput(input.warm_throughput_mibps, &mut v);
        let distribution = super::on_demand::parse_distribution(
            input.record_distribution_strategy.as_deref(),
            &mut v,
        );
        if mode == StreamMode::Provisioned {
            v.require(&input.shard_count, "shardCount");
        }
        v.finish()?;
        let name = input.stream_name.unwrap_or_default();
        let tags = input.tags.unwrap_or_default();
        check_new_tags(&tags, 0, &name)?;
        super::tags::check_tag_content(&tags)?;
        self.check_create_on_demand_settings(
            input.warm_throughput_mibps,
            distribution,
            mode,
            &name,
        )?;
        let shard_count = match mode {
            StreamMode::OnDemand => ON_DEMAND_INITIAL_SHARDS,
            StreamMode::Provisioned => u32::try_from(input.shard_count.unwrap_or(1)).unwrap_or(1),
        };
        let check = || {
            if self.registry.get(&name).is_some() {
                return Err(ApiError::ResourceInUse(format!(
                    "Stream {name} under account {} already exists.",
                    self.config.account_id
                )));
            }
            self.check_shard_limit(shard_count)?;
            if mode == StreamMode::OnDemand {
                self.check_on_demand_limit()?;
            }
            Ok(())
        };
        self.add_stream(check, |id| {
            let arn = self.stream_arn(&name);
            let stream = Stream::new(id, name.clone(), arn, mode, shard_count, self.now_ms());
            {
                let mut state = stream.state.lock();
                state.tags = tags;
                state.max_record_size_kib = input
                    .max_record_size_in_kib
                    .map_or(crate::model::stream::DEFAULT_MAX_RECORD_KIB, |kib| {
                        kib as u32
                    });
                state.settings.warm_throughput_mibps =
                    input.warm_throughput_mibps.map(|m| m as u32);
                state.settings.distribution = distribution;
            }
            stream
        })?;
        tracing::info!(stream = %name, shard_count, mode = mode.as_str(), "created stream");
        Ok(())
    }

    pub(crate) fn check_shard_limit(&self, new_shards: u32) -> Result<(), ApiError> {
        let open = self.open_shard_count();
        let limit = self.config.shard_limit as usize;
        if open + new_shards as usize > limit {
            return Err(ApiError::LimitExceeded(format!(
                "This request would exceed the shard limit for the account {} in {}. Current limit \
                 of shards is {limit}. Number of open shards is {open} and {new_shards} more were \
                 requested.",
                self.config.account_id, self.config.region
            )));
        }
        Ok(())
    }

    pub(crate) fn check_on_demand_limit(&self) -> Result<(), ApiError> {
        let count = self.on_demand_stream_count();
        if count >= self.config.on_demand_stream_limit as usize {
            return Err(ApiError::LimitExceeded(format!(
                "This request would exceed the on-demand stream limit of {} for the account {}.",
                self.config.on_demand_stream_limit, self.config.account_id
            )));
        }
        Ok(())
    }

    pub(crate) fn open_shard_count(&self) -> usize {
        self.registry
            .list()
            .iter()
            .map(|s| s.state.lock().open_shard_count())
            .sum()
    }

    pub(crate) fn on_demand_stream_count(&self) -> usize {
        self.registry
            .list()
            .iter()
            .filter(|s| s.state.lock().mode == StreamMode::OnDemand)
            .count()
    }

    pub(crate) fn delete_stream(&self, input: StreamRef) -> Result<(), ApiError> {
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut Violations::default(),
        )?;
        if self.stream_has_channels(&self.stream_arn(&name)) {
            return Err(ApiError::ResourceInUse(format!(
                "Stream {name} has channels; delete them before the stream."
            )));
        }
        if self.stream_has_queues(&name) {
            return Err(ApiError::ResourceInUse(format!(
                "Stream {name} has queues; delete them before the stream."
            )));
        }
        self.remove_stream(&name)?;
        tracing::info!(stream = %name, "deleted stream");
        Ok(())
    }

    pub(crate) fn describe_stream(
        &self,
        input: DescribeStreamInput,
    ) -> Result<DescribeStreamOutput, ApiError> {
        let mut v = Violations::default();
        if let Some(limit) = input.limit {
            v.range(limit, "limit", 1, 10_000);
        }
        v.shard_id(
            input.exclusive_start_shard_id.as_deref(),
            "exclusiveStartShardId",
        );
        let name = self.stream_target(
            input.stream.stream_name.as_deref(),
            input.stream.stream_arn.as_deref(),
            &mut v,
        )?;
        let stream = self.stream(&name)?;
        let limit = input
            .limit
            .map_or(DESCRIBE_MAX_SHARDS, |l| l as usize)
            .min(DESCRIBE_MAX_SHARDS);
        let now = self.now_ms();
        let state = stream.state.lock();
        let mut shards: Vec<ShardOut> = listed_shards(&state, now)
            .filter(|s| {
                input
                    .exclusive_start_shard_id
                    .as_ref()
                    .is_none_or(|start| s.id() > *start)
            })
            .take(limit + 1)
            .map(ShardOut::from)
            .collect();
        let has_more_shards = shards.len() > limit;
        shards.truncate(limit);
        Ok(DescribeStreamOutput {
            stream_description: StreamDescription {
                stream_name: stream.name.clone(),
                stream_arn: stream.arn.clone(),
                stream_status: self.status_of(&stream, &state),
                stream_mode_details: StreamModeOut {
                    stream_mode: state.mode.as_str(),
                },
                shards,
                has_more_shards,
                retention_period_hours: state.retention_hours,
                stream_creation_timestamp: Timestamp(stream.created_ms),
                enhanced_monitoring: enhanced_monitoring(&state.settings.metrics),
                encryption_type: encryption_type(&state),
                key_id: state.encryption.key_id.clone(),
            },
        })
    }

    pub(crate) fn describe_stream_summary(
        &self,
        input: StreamRef,
    ) -> Result<DescribeStreamSummaryOutput, ApiError> {
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut Violations::default(),
        )?;
        let stream = self.stream(&name)?;
        let state = stream.state.lock();
        Ok(DescribeStreamSummaryOutput {
            stream_description_summary: StreamDescriptionSummary {
                stream_name: stream.name.clone(),
                stream_arn: stream.arn.clone(),
                stream_status: self.status_of(&stream, &state),
                stream_mode_details: StreamModeOut {
                    stream_mode: state.mode.as_str(),
                },
                retention_period_hours: state.retention_hours,
                stream_creation_timestamp: Timestamp(stream.created_ms),
                enhanced_monitoring: enhanced_monitoring(&state.settings.metrics),
                encryption_type: encryption_type(&state),
                key_id: state.encryption.key_id.clone(),
                open_shard_count: state.open_shard_count(),
                consumer_count: state.consumers.len(),
                max_record_size_in_kib: state.max_record_size_kib,
                // Both are only shown for on-demand streams, as AWS does.
                warm_throughput: (state.mode == StreamMode::OnDemand)
                    .then_some(state.settings.warm_throughput_mibps)
                    .flatten()
                    .map(WarmThroughputOut::settled),
                record_distribution_strategy: (state.mode == StreamMode::OnDemand)
                    .then_some(state.settings.distribution.as_str()),
            },
        })
    }

    pub(crate) fn list_streams(
        &self,
        input: ListStreamsInput,
    ) -> Result<ListStreamsOutput, ApiError> {
        let mut v = Violations::default();
        if let Some(limit) = input.limit {
            v.range(limit, "limit", 1, 10_000);
        }
        v.stream_name(
            input.exclusive_start_stream_name.as_deref(),
            "exclusiveStartStreamName",
        );
        v.finish()?;
        let now = self.now_ms();
        let after = match &input.next_token {
            Some(token) => Some(PageToken::parse(token, now, &self.config.token_key)?.after),
            None => input.exclusive_start_stream_name,
        };
        let limit = input.limit.map_or(100, |l| l as usize);
        let mut streams: Vec<_> = self
            .registry
            .list()
            .into_iter()
            .filter(|s| after.as_ref().is_none_or(|a| s.name > *a))
            .take(limit + 1)
            .collect();
        let has_more_streams = streams.len() > limit;
        streams.truncate(limit);
        let next_token = has_more_streams.then(|| {
            PageToken {
                issued_ms: now,
                scope: String::new(),
                filter: String::new(),
                after: streams.last().map(|s| s.name.clone()).unwrap_or_default(),
            }
            .encode(&self.config.token_key)
        });
        Ok(ListStreamsOutput {
            stream_names: streams.iter().map(|s| s.name.clone()).collect(),
            has_more_streams,
            next_token,
            stream_summaries: streams
                .iter()
                .map(|s| StreamSummary {
                    stream_name: s.name.clone(),
                    stream_arn: s.arn.clone(),
                    stream_status: self.status(s),
                    stream_mode_details: StreamModeOut {
                        stream_mode: s.state.lock().mode.as_str(),
                    },
                    stream_creation_timestamp: Timestamp(s.created_ms),
                })
                .collect(),
        })
    }
}

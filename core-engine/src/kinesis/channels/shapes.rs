//! The request and response shapes of the channel operations, their constraints as the model
//! gives them, and the definition a channel keeps.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::protocol::json::Timestamp;

use super::super::validate::Violations;
use super::MAX_FRESHNESS_S;

mod checks;
pub(super) use checks::check_channel_arn;
use checks::{check_freshness, check_kinesis_arn, check_logging};

/// DataFreshnessInSeconds when the request leaves it out (the model's default).
const DEFAULT_FRESHNESS_S: i64 = 300;

/// A channel's status, as DescribeChannel and ListChannels show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl ChannelStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Active => "ACTIVE",
            Self::Updating => "UPDATING",
            Self::Deleting => "DELETING",
        }
    }
}

/// The record format of the source stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RecordConfiguration {
    record_format_type: Option<String>,
    #[serde(rename = "GSRSchemaARN", skip_serializing_if = "Option::is_none")]
    gsr_schema_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamConfiguration {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    record_configuration: Option<RecordConfiguration>,
}

/// Where records that cannot be delivered would go (kept and returned only).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeadLetterQueue {
    #[serde(rename = "BucketARN")]
    bucket_arn: Option<String>,
    expected_bucket_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_output_prefix: Option<String>,
}

/// The destination bucket; its name is the first directory level under the channel directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StorageConfiguration {
    #[serde(rename = "BucketARN")]
    bucket_arn: Option<String>,
    expected_bucket_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_key_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_class: Option<String>,
    compression_type: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct S3Destination {
    pub(super) data_freshness_in_seconds: Option<i64>,
    dead_letter_queue_s3_configuration: Option<DeadLetterQueue>,
    storage_configuration: Option<StorageConfiguration>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EncryptionConfiguration {
    encryption_type: Option<String>,
    key_id: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CloudWatchLogs {
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_stream_name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Logging {
    cloud_watch_logs: Option<CloudWatchLogs>,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            cloud_watch_logs: Some(CloudWatchLogs {
                enabled: Some(false),
                ..CloudWatchLogs::default()
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateChannelInput {
    pub(super) channel_name: Option<String>,
    #[serde(rename = "ServiceExecutionRoleARN")]
    service_execution_role_arn: Option<String>,
    stream_configuration_list: Option<Vec<StreamConfiguration>>,
    s3_destination_configuration: Option<S3Destination>,
    s3_tables_destination_configuration: Option<serde_json::Value>,
    encryption_configuration: Option<EncryptionConfiguration>,
    tags: Option<BTreeMap<String, String>>,
    logging_configuration: Option<Logging>,
}

/// The parts of a CreateChannel request the engine acts on, once checked.
#[derive(Debug)]
pub(super) struct CheckedConfig {
    pub(super) stream_arn: String,
    record: RecordConfiguration,
    destination: S3Destination,
}

/// A channel's definition, as kept in memory and in its state file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ChannelDef {
    pub(super) name: String,
    pub(super) arn: String,
    pub(super) id: String,
    pub(super) created_ms: i64,
    pub(super) role_arn: String,
    pub(super) stream: StreamOfChannel,
    pub(super) destination: S3Destination,
    pub(super) encryption: Option<EncryptionConfiguration>,
    pub(super) logging: Logging,
    pub(super) tags: BTreeMap<String, String>,
    /// When the last UpdateChannel was accepted (UPDATING for the status delay after it).
    pub(super) updated_ms: Option<i64>,
    /// When DeleteChannel was accepted (DELETING for the status delay after it).
    pub(super) deleting_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StreamOfChannel {
    pub(super) stream_arn: String,
    pub(super) stream_created_ms: i64,
    record: RecordConfiguration,
}

impl ChannelDef {
    /// The freshness bound of delivery, in milliseconds.
    pub(super) fn freshness_ms(&self) -> i64 {
        self.destination
            .data_freshness_in_seconds
            .unwrap_or(DEFAULT_FRESHNESS_S)
            * 1000
    }

    /// The destination bucket's name.
    pub(super) fn bucket(&self) -> &str {
        self.destination
            .storage_configuration
            .as_ref()
            .and_then(|s| s.bucket_arn.as_deref())
            .and_then(|arn| arn.rsplit_once(":::"))
            .map_or("bucket", |(_, name)| name)
    }

    pub(super) fn stream_name(&self) -> &str {
        self.stream
            .stream_arn
            .split_once(":stream/")
            .map_or("", |(_, name)| name)
    }

    pub(super) fn description(&self, status: ChannelStatus) -> ChannelDescription {
        ChannelDescription {
            channel_name: self.name.clone(),
            channel_arn: self.arn.clone(),
            channel_id: self.id.clone(),
            channel_status: status.as_str(),
            channel_creation_timestamp: Timestamp(self.created_ms),
            service_execution_role_arn: self.role_arn.clone(),
            stream_configuration_list: vec![StreamDescription {
                stream_arn: self.stream.stream_arn.clone(),
                stream_creation_timestamp: Timestamp(self.stream.stream_created_ms),
                record_configuration: self.stream.record.clone(),
            }],
            s3_destination_configuration: self.destination.clone(),
            encryption_configuration: self.encryption.clone(),
            logging_configuration: self.logging.clone(),
        }
    }

    pub(super) fn summary(&self, status: ChannelStatus) -> ChannelSummary {
        ChannelSummary {
            channel_name: self.name.clone(),
            channel_arn: self.arn.clone(),
            channel_id: self.id.clone(),
            channel_status: status.as_str(),
            channel_creation_timestamp: Timestamp(self.created_ms),
            channel_destination_type: "S3",
            streams: vec![StreamIdentifier {
                stream_arn: self.stream.stream_arn.clone(),
                stream_creation_timestamp: Timestamp(self.stream.stream_created_ms),
            }],
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamDescription {
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_creation_timestamp: Timestamp,
    record_configuration: RecordConfiguration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ChannelDescription {
    pub(super) channel_name: String,
    #[serde(rename = "ChannelARN")]
    channel_arn: String,
    channel_id: String,
    channel_status: &'static str,
    channel_creation_timestamp: Timestamp,
    #[serde(rename = "ServiceExecutionRoleARN")]
    service_execution_role_arn: String,
    stream_configuration_list: Vec<StreamDescription>,
    s3_destination_configuration: S3Destination,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_configuration: Option<EncryptionConfiguration>,
    logging_configuration: Logging,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeChannelOutput {
    pub(super) channel_description: ChannelDescription,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ChannelRef {
    #[serde(rename = "ChannelARN")]
    pub(super) channel_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamFilter {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    #[allow(dead_code)] // accepted as the model allows; a stream ARN names one stream here
    stream_creation_timestamp: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListChannelsInput {
    stream_filter: Option<Vec<StreamFilter>>,
    pub(super) max_results: Option<i64>,
    pub(super) next_token: Option<String>,
}

impl ListChannelsInput {
    pub(super) fn check(&self, v: &mut Violations) {
        if let Some(max) = self.max_results {
            v.range(max, "maxResults", 1, 10_000);
        }
        if let Some(filters) = &self.stream_filter {
            v.range(filters.len() as i64, "streamFilter", 1, 10_000);
            for (i, filter) in filters.iter().enumerate() {
                let path = format!("streamFilter.{}.member.streamARN", i + 1);
                match &filter.stream_arn {
                    Some(arn) => check_kinesis_arn(v, arn, &path, "stream"),
                    None => v.missing(&path),
                }
            }
        }
        if let Some(token) = &self.next_token {
            v.length(token, "nextToken", 1, 1_048_576);
        }
    }

    /// Whether a channel reading `stream_arn` passes the stream filter.
    pub(super) fn matches(&self, stream_arn: &str) -> bool {
        self.stream_filter.as_ref().is_none_or(|filters| {
            filters
                .iter()
                .any(|f| f.stream_arn.as_deref() == Some(stream_arn))
        })
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamIdentifier {
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_creation_timestamp: Timestamp,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ChannelSummary {
    pub(super) channel_name: String,
    #[serde(rename = "ChannelARN")]
    channel_arn: String,
    channel_id: String,
    channel_status: &'static str,
    channel_creation_timestamp: Timestamp,
    channel_destination_type: &'static str,
    streams: Vec<StreamIdentifier>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListChannelsOutput {
    pub(super) channel_summaries: Vec<ChannelSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct FreshnessUpdate {
    data_freshness_in_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateChannelInput {
    #[serde(rename = "ChannelARN")]
    pub(super) channel_arn: Option<String>,
    s3_destination_configuration: Option<FreshnessUpdate>,
    s3_tables_destination_configuration: Option<FreshnessUpdate>,
    logging_configuration: Option<Logging>,
}

impl UpdateChannelInput {
    pub(super) fn check(&self, v: &mut Violations) {
        for (update, path) in [
            (
                &self.s3_destination_configuration,
                "s3DestinationConfiguration",
            ),
            (
                &self.s3_tables_destination_configuration,
                "s3TablesDestinationConfiguration",
            ),
        ] {
            if let Some(update) = update {
                v.require(
                    &update.data_freshness_in_seconds,
                    &format!("{path}.dataFreshnessInSeconds"),
                );
            }
        }
        if let Some(logging) = &self.logging_configuration {
            check_logging(v, logging);
        }
    }

    /// Applies the update to a copy of the definition.
    pub(super) fn apply(&self, def: &mut ChannelDef) -> Result<(), ApiError> {
        if self.s3_tables_destination_configuration.is_some() {
            return Err(ApiError::InvalidArgument(format!(
                "Channel {} delivers to a general purpose Amazon S3 bucket; specify S3DestinationConfiguration.",
                def.name
            )));
        }
        if self.s3_destination_configuration.is_none() && self.logging_configuration.is_none() {
            return Err(ApiError::InvalidArgument(
                "Specify S3DestinationConfiguration or LoggingConfiguration to update.".into(),
            ));
        }
        if let Some(update) = &self.s3_destination_configuration {
            let seconds = update.data_freshness_in_seconds.unwrap_or_default();
            check_freshness(seconds)?;
            def.destination.data_freshness_in_seconds = Some(seconds);
        }
        if let Some(logging) = &self.logging_configuration {
            def.logging = logging.clone();
        }
        Ok(())
    }
}

/// The NextToken of ListChannels: the last name listed.
pub(super) fn encode_token(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

pub(super) fn decode_token(token: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::InvalidArgument(format!("Invalid NextToken: {token}")))
}

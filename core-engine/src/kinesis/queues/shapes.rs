//! The request and response shapes of the queue operations, and their constraints as the model
//! gives them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::protocol::json::Timestamp;

use super::super::validate::Violations;

mod records;
pub(crate) use records::{
    EntriesInput, EntriesOutput, EntryError, EntryResult, QueueRecord, ReceiveInput, ReceiveOutput,
};

/// A queue's visibility timeout when CreateQueue leaves it out (the model's default).
pub(crate) const DEFAULT_VISIBILITY_S: i64 = 30;
/// MaxReceiveCount when CreateQueue leaves out the dead-letter configuration.
pub(crate) const DEFAULT_MAX_RECEIVES: u32 = 6;
pub(crate) const MAX_VISIBILITY_S: i64 = 43_200;
const QUEUE_NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";
const QUEUE_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:queue/\\S+";
const STREAM_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";

/// The dead-letter handling of a queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeadLetterConfiguration {
    pub(crate) target_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_receive_count: Option<i64>,
}

/// The configuration attributes of a queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) visibility_timeout_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dead_letter_configuration: Option<DeadLetterConfiguration>,
}

impl QueueAttributes {
    /// The attributes a new queue has: the request's, with the model's defaults filled in.
    pub(crate) fn with_defaults(self) -> Self {
        Self {
            visibility_timeout_seconds: Some(
                self.visibility_timeout_seconds
                    .unwrap_or(DEFAULT_VISIBILITY_S),
            ),
            dead_letter_configuration: Some(self.dead_letter_configuration.unwrap_or(
                DeadLetterConfiguration {
                    target_type: Some("BUILT_IN".into()),
                    max_receive_count: Some(i64::from(DEFAULT_MAX_RECEIVES)),
                },
            )),
        }
    }

    /// The attributes after an UpdateQueue: what `update` gives replaces what is there.
    pub(crate) fn merged(&self, update: Self) -> Self {
        Self {
            visibility_timeout_seconds: update
                .visibility_timeout_seconds
                .or(self.visibility_timeout_seconds),
            dead_letter_configuration: update
                .dead_letter_configuration
                .or_else(|| self.dead_letter_configuration.clone()),
        }
    }

    /// The visibility timeout in milliseconds.
    pub(crate) fn visibility_ms(&self) -> i64 {
        self.visibility_timeout_seconds
            .unwrap_or(DEFAULT_VISIBILITY_S)
            .saturating_mul(1000)
    }

    /// Receives after which a record becomes a dead letter; `None` with dead-letter handling
    /// off.
    pub(crate) fn max_receives(&self) -> Option<u32> {
        match &self.dead_letter_configuration {
            Some(c) if c.target_type.as_deref() == Some("NONE") => None,
            Some(c) => c.max_receive_count.and_then(|n| u32::try_from(n).ok()),
            None => Some(DEFAULT_MAX_RECEIVES),
        }
    }

    /// Checks the members against the model; cross-member rules are InvalidArgumentExceptions.
    pub(crate) fn check(&self, v: &mut Violations, path: &str) {
        if let Some(seconds) = self.visibility_timeout_seconds {
            v.range(
                seconds,
                &format!("{path}.visibilityTimeoutSeconds"),
                0,
                MAX_VISIBILITY_S,
            );
        }
        if let Some(dlq) = &self.dead_letter_configuration {
            let at = format!("{path}.deadLetterConfiguration");
            v.require(&dlq.target_type, &format!("{at}.targetType"));
            if let Some(kind) = &dlq.target_type {
                one_of(v, kind, &format!("{at}.targetType"), &["BUILT_IN", "NONE"]);
            }
            if let Some(count) = dlq.max_receive_count {
                v.range(count, &format!("{at}.maxReceiveCount"), 1, 1000);
            }
        }
    }

    /// The cross-member rule: BUILT_IN needs MaxReceiveCount.
    pub(crate) fn check_semantics(&self) -> Result<(), ApiError> {
        match &self.dead_letter_configuration {
            Some(c)
                if c.target_type.as_deref() == Some("BUILT_IN")
                    && c.max_receive_count.is_none() =>
            {
                Err(ApiError::InvalidArgument(
                    "MaxReceiveCount is required when the dead-letter TargetType is BUILT_IN."
                        .into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Where a queue starts delivering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StartingPosition {
    #[serde(rename = "Type")]
    pub(crate) kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timestamp: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamConfigurationIn {
    #[serde(rename = "StreamARN")]
    pub(crate) stream_arn: Option<String>,
    pub(crate) starting_position: Option<StartingPosition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateQueueInput {
    pub(crate) queue_name: Option<String>,
    pub(crate) stream_configuration_list: Option<Vec<StreamConfigurationIn>>,
    pub(crate) queue_attributes: Option<QueueAttributes>,
    pub(crate) tags: Option<BTreeMap<String, String>>,
}

impl CreateQueueInput {
    /// Checks the request against the model (ValidationException) and the rules its
    /// documentation gives (InvalidArgumentException).
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&self.queue_name, "queueName");
        if let Some(name) = &self.queue_name {
            v.length(name, "queueName", 1, 128);
            v.check(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
                name,
                "queueName",
                &format!("satisfy regular expression pattern: {QUEUE_NAME_PATTERN}"),
            );
        }
        v.require(&self.stream_configuration_list, "streamConfigurationList");
        for (i, config) in self.stream_configuration_list.iter().flatten().enumerate() {
            let at = format!("streamConfigurationList.{}", i + 1);
            v.require(&config.stream_arn, &format!("{at}.member.streamARN"));
            if let Some(arn) = &config.stream_arn {
                stream_arn(&mut v, arn, &format!("{at}.member.streamARN"));
            }
            if let Some(start) = &config.starting_position {
                let path = format!("{at}.member.startingPosition");
                v.require(&start.kind, &format!("{path}.type"));
                if let Some(kind) = &start.kind {
                    one_of(
                        &mut v,
                        kind,
                        &format!("{path}.type"),
                        &["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"],
                    );
                    let at_timestamp = kind == "AT_TIMESTAMP";
                    if at_timestamp && start.timestamp.is_none() {
                        v.missing(&format!("{path}.timestamp"));
                    }
                    v.check(
                        at_timestamp || start.timestamp.is_none(),
                        kind,
                        &format!("{path}.timestamp"),
                        "be null unless type is AT_TIMESTAMP",
                    );
                }
            }
        }
        if let Some(list) = &self.stream_configuration_list {
            v.check(
                !list.is_empty(),
                "[]",
                "streamConfigurationList",
                "have length greater than or equal to 1",
            );
        }
        if let Some(attributes) = &self.queue_attributes {
            attributes.check(&mut v, "queueAttributes");
        }
        if let Some(tags) = &self.tags {
            super::super::tags::check_tag_map(tags, &mut v);
        }
        v.finish()?;
        if self
            .stream_configuration_list
            .as_ref()
            .is_some_and(|l| l.len() > 1)
        {
            return Err(ApiError::InvalidArgument(
                "StreamConfigurationList must contain exactly one entry: a queue delivers records from a single data stream.".into(),
            ));
        }
        if let Some(tags) = &self.tags {
            super::super::tags::check_tag_content(tags)?;
            if tags.len() > super::super::tags::MAX_TAGS_PER_STREAM {
                return Err(ApiError::InvalidArgument(
                    "A queue cannot have more than 50 tags.".into(),
                ));
            }
        }
        self.queue_attributes
            .as_ref()
            .map_or(Ok(()), QueueAttributes::check_semantics)
    }
}

/// The request of DescribeQueue and DeleteQueue.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueRef {
    #[serde(rename = "QueueARN")]
    pub(crate) queue_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateQueueInput {
    #[serde(rename = "QueueARN")]
    pub(crate) queue_arn: Option<String>,
    pub(crate) queue_attributes: Option<QueueAttributes>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamFilter {
    #[serde(rename = "StreamARN")]
    pub(crate) stream_arn: Option<String>,
    pub(crate) stream_creation_timestamp: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListQueuesInput {
    pub(crate) max_results: Option<i64>,
    pub(crate) next_token: Option<String>,
    pub(crate) stream_filter: Option<Vec<StreamFilter>>,
}

/// The stream a queue delivers from, as a description shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StreamConfigurationOut {
    #[serde(rename = "StreamARN")]
    pub(crate) stream_arn: String,
    pub(crate) starting_position: StartingPosition,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueDescription {
    pub(crate) queue_name: String,
    #[serde(rename = "QueueARN")]
    pub(crate) queue_arn: String,
    pub(crate) queue_status: &'static str,
    pub(crate) queue_creation_timestamp: Timestamp,
    pub(crate) stream_configuration_list: Vec<StreamConfigurationOut>,
    pub(crate) queue_attributes: QueueAttributes,
}

/// The output of CreateQueue, DescribeQueue and UpdateQueue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueDescriptionOutput {
    pub(crate) queue_description: QueueDescription,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueStreamIdentifier {
    #[serde(rename = "StreamARN")]
    pub(crate) stream_arn: String,
    pub(crate) stream_creation_timestamp: Timestamp,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueSummary {
    pub(crate) queue_name: String,
    #[serde(rename = "QueueARN")]
    pub(crate) queue_arn: String,
    pub(crate) queue_status: &'static str,
    pub(crate) queue_creation_timestamp: Timestamp,
    pub(crate) streams: Vec<QueueStreamIdentifier>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListQueuesOutput {
    pub(crate) queue_summaries: Vec<QueueSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_token: Option<String>,
}

/// Checks a required QueueARN member.
pub(crate) fn queue_arn_member(v: &mut Violations, arn: Option<&str>) {
    v.require(&arn, "queueARN");
    if let Some(arn) = arn {
        v.length(arn, "queueARN", 1, 2048);
        v.check(
            is_queue_arn(arn),
            arn,
            "queueARN",
            &format!("satisfy regular expression pattern: {QUEUE_ARN_PATTERN}"),
        );
    }
}

/// Checks a stream ARN member against the model's pattern.
pub(crate) fn stream_arn(v: &mut Violations, arn: &str, path: &str) {
    v.length(arn, path, 1, 2048);
    v.check(
        arn_of(arn, "stream/").is_some(),
        arn,
        path,
        &format!("satisfy regular expression pattern: {STREAM_ARN_PATTERN}"),
    );
}

fn is_queue_arn(arn: &str) -> bool {
    arn_of(arn, "queue/").is_some()
}

/// The (region, account, resource id) of an ARN of this shape: `arn:aws*:kinesis:*:<12
/// digits>:<kind><id>`.
pub(crate) fn arn_of<'a>(arn: &'a str, kind: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let mut parts = arn.splitn(6, ':');
    let (word, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    let id = resource.strip_prefix(kind)?;
    let valid = word == "arn"
        && partition.starts_with("aws")
        && service == "kinesis"
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !id.is_empty()
        && !id.contains(char::is_whitespace);
    valid.then_some((region, account, id))
}

fn one_of(v: &mut Violations, value: &str, path: &str, allowed: &[&str]) {
    v.check(
        allowed.contains(&value),
        value,
        path,
        &format!("satisfy enum value set: [{}]", allowed.join(", ")),
    );
}

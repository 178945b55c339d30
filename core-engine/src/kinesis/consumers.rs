//! RegisterStreamConsumer, DescribeStreamConsumer, ListStreamConsumers and
//! DeregisterStreamConsumer.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::consumer::{Consumer, MAX_CONSUMERS_PER_STREAM, parse_consumer_arn};
use crate::model::stream::Stream;
use crate::protocol::json::Timestamp;

use super::Kinesis;
use super::page_token::PageToken;
use super::validate::Violations;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RegisterConsumerInput {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    consumer_name: Option<String>,
    tags: Option<std::collections::BTreeMap<String, String>>,
}

/// Names a consumer by its ARN, or by its stream's ARN and its name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConsumerRef {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN")]
    consumer_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListConsumersInput {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConsumerOut {
    consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    consumer_arn: String,
    consumer_status: &'static str,
    consumer_creation_timestamp: Timestamp,
    #[serde(rename = "StreamARN", skip_serializing_if = "Option::is_none")]
    stream_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RegisterConsumerOutput {
    consumer: ConsumerOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeConsumerOutput {
    consumer_description: ConsumerOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListConsumersOutput {
    consumers: Vec<ConsumerOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

fn check_consumer_name(name: Option<&str>, v: &mut Violations) {
    if let Some(name) = name {
        v.length(name, "consumerName", 1, 128);
        v.check(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
            name,
            "consumerName",
            "satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        );
    }
}

impl Kinesis {
    fn consumer_status(&self, consumer: &Consumer) -> &'static str {
        let creating = self.now_ms() < consumer.created_ms + self.config.consumer_create_delay_ms;
        if creating { "CREATING" } else { "ACTIVE" }
    }

    fn consumer_out(&self, stream: &Stream, consumer: &Consumer, with_stream: bool) -> ConsumerOut {
        ConsumerOut {
            consumer_name: consumer.name.clone(),
            consumer_arn: consumer.arn(&stream.arn),
            consumer_status: self.consumer_status(consumer),
            consumer_creation_timestamp: Timestamp(consumer.created_ms),
            stream_arn: with_stream.then(|| stream.arn.clone()),
        }
    }

    /// Whether the consumer has finished registering.
    pub(crate) fn consumer_is_active(&self, consumer: &Consumer) -> bool {
        self.consumer_status(consumer) == "ACTIVE"
    }

    /// Finds the stream and consumer a request names; gives the stream and the consumer's name.
    pub(crate) fn resolve_consumer(
        &self,
        reference: &ConsumerRef,
    ) -> Result<(Arc<Stream>, String), ApiError> {
        let mut v = Violations::default();
        check_consumer_name(reference.consumer_name.as_deref(), &mut v);
        let not_found =
            |what: &str| ApiError::ResourceNotFound(format!("Consumer {what} not found."));
        let (stream_arn, name, created_secs) = match (
            &reference.consumer_arn,
            &reference.stream_arn,
            &reference.consumer_name,
        ) {
            (Some(arn), _, _) => {
                std::mem::take(&mut v).finish()?;
                let (stream_arn, name, created) = parse_consumer_arn(arn).ok_or_else(|| {
                    ApiError::invalid_member(arn, "consumerARN", "satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+")
                })?;
                (stream_arn.to_owned(), name.to_owned(), Some(created))
            }
            (None, Some(stream_arn), Some(name)) => (stream_arn.clone(), name.clone(), None),
            _ => {
                return Err(ApiError::InvalidArgument(
                    "Either ConsumerARN or both StreamARN and ConsumerName must be provided."
                        .into(),
                ));
            }
        };
        let stream_name = self.stream_target(None, Some(&stream_arn), &mut v)?;
        let stream = self.stream(&stream_name)?;
        let state = stream.state.lock();
        let consumer = state.consumers.get(&name).ok_or_else(|| not_found(&name))?;
        if created_secs.is_some_and(|secs| secs != consumer.created_ms.div_euclid(1000)) {
            return Err(not_found(
                reference.consumer_arn.as_deref().unwrap_or(&name),
            ));
        }
        drop(state);
        Ok((stream, name))
    }

    pub(crate) fn register_consumer(
        &self,
        input: RegisterConsumerInput,
    ) -> Result<RegisterConsumerOutput, ApiError> {
        let mut v = Violations::default();
        v.require(&input.stream_arn, "streamARN");
        v.require(&input.consumer_name, "consumerName");
        check_consumer_name(input.consumer_name.as_deref(), &mut v);
        let tags = input.tags.unwrap_or_default();
        if !tags.is_empty() {
            super::tags::check_tag_map(&tags, &mut v);
        }
        let stream_name = self.stream_target(None, input.stream_arn.as_deref(), &mut v)?;
        super::tags::check_tag_content(&tags)?;
        super::tags::check_new_tags(&tags, 0, &stream_name)?;
        let name = input.consumer_name.unwrap_or_default();
        let stream = self.stream(&stream_name)?;
        // Queues count as registered consumers against the limit.
        let queues = self.queues_on(&stream_name);
        let consumer = self.change(|| {
            let mut state = stream.state.lock();
            if state.consumers.contains_key(&name) {
                return Err(ApiError::ResourceInUse(format!(
                    "Consumer {name} already exists on stream {}.",
                    stream.arn
                )));
            }
            if state.consumers.len() + queues >= MAX_CONSUMERS_PER_STREAM {
                return Err(ApiError::LimitExceeded(format!(
                    "Stream {} already has {MAX_CONSUMERS_PER_STREAM} consumers, the most allowed.",
                    stream.arn
                )));
            }
            let mut consumer = Consumer::new(name.clone(), self.now_ms());
            consumer.tags = tags;
            let mut out = self.consumer_out(&stream, &consumer, false);
            // Registration always answers CREATING; DescribeStreamConsumer shows it turn ACTIVE.
            out.consumer_status = "CREATING";
            state.consumers.insert(name.clone(), consumer);
            Ok(out)
        })?;
        tracing::info!(stream = %stream.name, consumer = %name, "registered consumer");
        Ok(RegisterConsumerOutput { consumer })
    }

    pub(crate) fn describe_consumer(
        &self,
        input: ConsumerRef,
    ) -> Result<DescribeConsumerOutput, ApiError> {
        let (stream, name) = self.resolve_consumer(&input)?;
        let state = stream.state.lock();
        let consumer = state
            .consumers
            .get(&name)
            .ok_or_else(|| ApiError::ResourceNotFound(format!("Consumer {name} not found.")))?;
        Ok(DescribeConsumerOutput {
            consumer_description: self.consumer_out(&stream, consumer, true),
        })
    }

    pub(crate) fn list_consumers(
        &self,
        input: ListConsumersInput,
    ) -> Result<ListConsumersOutput, ApiError> {
        let mut v = Violations::default();
        v.require(&input.stream_arn, "streamARN");
        if let Some(max) = input.max_results {
            v.range(max, "maxResults", 1, 10_000);
        }
        let stream_name = self.stream_target(None, input.stream_arn.as_deref(), &mut v)?;
        let now = self.now_ms();
        let after = match &input.next_token {
            Some(token) => {
                let parsed = PageToken::parse(token, now, &self.config.token_key)?;
                // A genuine token of another stream's listing would start this one at a foreign
                // consumer name.
                if parsed.scope != stream_name {
                    return Err(ApiError::InvalidArgument(format!(
                        "Invalid NextToken: {token}"
                    )));
                }
                Some(parsed.after)
            }
            None => None,
        };
        let stream = self.stream(&stream_name)?;
        let state = stream.state.lock();
        let limit = input.max_results.map_or(100, |m| m as usize);
        let mut page: Vec<&Consumer> = state
            .consumers
            .values()
            .filter(|c| after.as_ref().is_none_or(|a| c.name > *a))
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let next_token = more.then(|| {
            PageToken {
                issued_ms: now,
                scope: stream.name.clone(),
                filter: String::new(),
                after: page.last().map(|c| c.name.clone()).unwrap_or_default(),
            }
            .encode(&self.config.token_key)
        });
        Ok(ListConsumersOutput {
            consumers: page
                .iter()
                .map(|c| self.consumer_out(&stream, c, false))
                .collect(),
            next_token,
        })
    }

    pub(crate) fn deregister_consumer(&self, input: ConsumerRef) -> Result<(), ApiError> {
        let (stream, name) = self.resolve_consumer(&input)?;
        self.change(|| {
            // Dropping the consumer drops its subscriptions' end signals, which ends them.
            stream.state.lock().consumers.remove(&name);
            Ok(())
        })?;
        tracing::info!(stream = %stream.name, consumer = %name, "deregistered consumer");
        Ok(())
    }
}

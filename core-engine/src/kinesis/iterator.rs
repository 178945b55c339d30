//! GetShardIterator.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::iterator::ShardIterator;
use crate::model::sequence::{self, SequenceNumber};
use crate::model::shard::Shard;
use crate::model::shard::{parse_shard_id, shard_id};
use crate::model::stream::Stream;
use crate::protocol::json::Timestamp;

use super::Kinesis;
use super::validate::Violations;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetShardIteratorInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    shard_id: Option<String>,
    shard_iterator_type: Option<String>,
    starting_sequence_number: Option<String>,
    timestamp: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetShardIteratorOutput {
    shard_iterator: String,
}

const ITERATOR_TYPES: [&str; 5] = [
    "AFTER_SEQUENCE_NUMBER",
    "LATEST",
    "AT_TIMESTAMP",
    "TRIM_HORIZON",
    "AT_SEQUENCE_NUMBER",
];

impl Kinesis {
    pub(crate) fn get_shard_iterator(
        &self,
        input: GetShardIteratorInput,
    ) -> Result<GetShardIteratorOutput, ApiError> {
        let mut v = Violations::default();
        v.require(&input.shard_id, "shardId");
        v.shard_id(input.shard_id.as_deref(), "shardId");
        v.require(&input.shard_iterator_type, "shardIteratorType");
        if let Some(kind) = &input.shard_iterator_type {
            v.check(
                ITERATOR_TYPES.contains(&kind.as_str()),
                kind,
                "shardIteratorType",
                &format!("satisfy enum value set: [{}]", ITERATOR_TYPES.join(", ")),
            );
        }
        v.sequence_number(
            input.starting_sequence_number.as_deref(),
            "startingSequenceNumber",
        );
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let kind = input.shard_iterator_type.unwrap_or_default();
        let requested_shard = input.shard_id.unwrap_or_default();
        let account = &self.config.account_id;
        let no_shard = |id: &str| {
            ApiError::ResourceNotFound(format!(
                "Shard {id} in stream {name} under account {account} does not exist"
            ))
        };
        let stream = self.active_stream(&name)?;
        let index = parse_shard_id(&requested_shard).ok_or_else(|| no_shard(&requested_shard))?;
        let now = self.now_ms();
        let mut state = stream.state.lock();
        state.trim(now);
        let horizon = now - state.retention_ms();
        let shard = state
            .shard_mut(index)
            .filter(|s| s.closed_ms().is_none_or(|closed| closed >= horizon))
            .ok_or_else(|| no_shard(&shard_id(index)))?;
        if self.config.throughput_limits && !shard.throttle.admit_iterator(now) {
            return Err(self.rate_exceeded(index, &name));
        }
        let start = StartingPoint {
            kind: &kind,
            sequence_number: input.starting_sequence_number.as_deref(),
            timestamp_ms: input.timestamp.map(|t| t.0),
        };
        let position = self.start_position(&stream, shard, &start, now, "GetShardIterator")?;
        let iterator = ShardIterator {
            issued_ms: now,
            stream_id: stream.id,
            stream_name: stream.name.clone(),
            shard_index: index,
            position,
        };
        Ok(GetShardIteratorOutput {
            shard_iterator: iterator.encode(&self.config.token_key),
        })
    }
}

/// Where a reader asks to start: an iterator or starting-position type and its argument.
#[derive(Debug)]
pub(crate) struct StartingPoint<'a> {
    pub(crate) kind: &'a str,
    pub(crate) sequence_number: Option<&'a str>,
    pub(crate) timestamp_ms: Option<i64>,
}

impl Kinesis {
    /// The position (first sequence number to read) a starting point means in `shard` at
    /// `now`. `operation` names the caller in messages.
    pub(crate) fn start_position(
        &self,
        stream: &Stream,
        shard: &Shard,
        start: &StartingPoint<'_>,
        now: i64,
        operation: &str,
    ) -> Result<u128, ApiError> {
        let (kind, name, account) = (start.kind, &stream.name, &self.config.account_id);
        let wrong_combination = |has: &str| {
            ApiError::InvalidArgument(format!(
                "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and \
                 StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no \
                 StartingSequenceNumber. Request specified {kind} and {has} StartingSequenceNumber."
            ))
        };
        match (kind, start.sequence_number) {
            ("TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP", Some(_)) => {
                Err(wrong_combination("also a"))
            }
            ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", None) => Err(wrong_combination("no")),
            ("TRIM_HORIZON", None) => Ok(shard.starting_seq),
            ("LATEST", None) => Ok(shard.latest_position()),
            ("AT_TIMESTAMP", None) => {
                let Some(at) = start.timestamp_ms else {
                    return Err(ApiError::InvalidArgument(
                        "Must specify timestampInMillis parameter for iterator of type \
                         AT_TIMESTAMP. Current request has no timestamp parameter."
                            .into(),
                    ));
                };
                if at > now {
                    return Err(ApiError::InvalidArgument(format!(
                        "The timestampInMillis parameter cannot be greater than the \
                         currentTimestampInMillis. timestampInMillis: {at}, \
                         currentTimestampInMillis: {now}"
                    )));
                }
                Ok(shard.position_at_timestamp(at))
            }
            ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", Some(text)) => {
                let invalid = || {
                    ApiError::InvalidArgument(format!(
                        "StartingSequenceNumber {text} used in {operation} on shard {} in \
                         stream {name} under account {account} is invalid.",
                        shard.id()
                    ))
                };
                let number = sequence::parse(text).ok_or_else(invalid)?;
                let parts = SequenceNumber::from_u128(number).ok_or_else(invalid)?;
                if parts.shard_index != shard.index {
                    return Err(ApiError::InvalidArgument(format!(
                        "Invalid StartingSequenceNumber. It encodes {}, while it was used in a \
                         call to a shard with {}",
                        shard_id(parts.shard_index),
                        shard.id()
                    )));
                }
                if number < shard.starting_seq || parts.time_ms < stream.created_ms {
                    return Err(ApiError::InvalidArgument(format!(
                        "StartingSequenceNumber {text} used in {operation} on shard {} in \
                         stream {name} under account {account} is invalid because it did not \
                         come from this stream.",
                        shard.id()
                    )));
                }
                Ok(if kind == "AT_SEQUENCE_NUMBER" {
                    number
                } else {
                    number + 1
                })
            }
            (other, _) => Err(ApiError::InvalidArgument(format!(
                "Unknown starting position type {other}."
            ))),
        }
    }
}

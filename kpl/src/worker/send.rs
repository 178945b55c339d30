//! Collecting Kinesis records into PutRecords calls, sending them, and settling the answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::operation::put_records::PutRecordsOutput;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, PutRecordsResultEntry};
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::Config;
use crate::error::PutError;
use crate::metrics::ProducerMetrics;
use crate::producer::StreamTarget;

use super::Worker;
use super::shard::{Container, ShardBuffer};

/// Error codes worth retrying: throttling and server-side failures.
const RETRYABLE_CODES: [&str; 7] = [
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "InternalFailure",
    "InternalFailureException",
    "ServiceUnavailable",
    "KMSThrottlingException",
    "ThrottlingException",
];

/// Kinesis records on their way in one PutRecords call.
#[derive(Debug)]
pub(super) struct Batch {
    containers: Vec<Container>,
}

/// How a whole PutRecords call failed.
#[derive(Debug)]
pub(super) struct CallError {
    code: String,
    message: String,
    retryable: bool,
}

/// A finished call: the records it carried, and the answer for those its task could not settle.
#[derive(Debug)]
pub(super) struct BatchOutcome {
    /// The predicted shard of every Kinesis record the call carried.
    shards: Vec<Arc<str>>,
    /// The Kinesis records left for the worker to settle: failed, or landed on another shard
    /// than predicted.
    containers: Vec<Container>,
    sent_at: Instant,
    duration: Duration,
    /// The answer for each of `containers`, or how the whole call failed.
    result: Result<Vec<PutRecordsResultEntry>, CallError>,
}

impl Batch {
    /// Takes the Kinesis records to send now, within the request limits and the shards' rate
    /// limits. Nothing is sent until a record is due, a full request's worth is ready or the
    /// producer flushes; then the call takes every ready record it can hold.
    pub(super) fn collect(
        shards: &mut HashMap<Arc<str>, ShardBuffer>,
        config: &Config,
        now: Instant,
        flush: bool,
    ) -> Option<Self> {
        let (ready_count, ready_bytes) = shards
            .values()
            .flat_map(|s| s.ready.iter())
            .fold((0, 0), |(n, b), c| (n + 1, b + c.size()));
        // Only a record that could go now makes the call due: not one of a closed shard, nor
        // one waiting for its retry time.
        let any_due = shards.values().filter(|s| !s.closed).any(|s| {
            s.ready
                .front()
                .is_some_and(|c| c.deadline <= now && c.not_before.is_none_or(|t| t <= now))
        });
        if ready_count == 0 {
            return None;
        }
        // As the KPL's collector: once the oldest record is due, the call takes whatever else
        // is ready too, rather than leaving it for a call of its own a moment later.
        let take_all = flush
            || any_due
            || ready_count >= config.collection_max_count
            || ready_bytes >= config.collection_max_size;
        let mut containers = Vec::new();
        let mut bytes = 0;
        'shards: for buffer in shards.values_mut() {
            if buffer.closed {
                continue; // its records wait to be routed to the open shards
            }
            let mut taken_here = 0;
            while let Some(front) = buffer.ready.front() {
                let due = take_all || front.deadline <= now;
                let waiting = front.not_before.is_some_and(|t| t > now);
                let ordered_busy = config.preserve_order
                    && (buffer.in_flight > 0 || buffer.awaiting_map > 0 || taken_here > 0);
                if !due || waiting || ordered_busy {
                    break;
                }
                if containers.len() >= config.collection_max_count {
                    break 'shards;
                }
                if !containers.is_empty() && bytes + front.size() > config.collection_max_size {
                    break 'shards;
                }
                if !buffer.limiter.try_take(front.size(), now) {
                    break;
                }
                let container = buffer.ready.pop_front().expect("front exists");
                bytes += container.size();
                buffer.in_flight += 1;
                taken_here += 1;
                containers.push(container);
            }
        }
        (!containers.is_empty()).then_some(Self { containers })
    }

    /// Kinesis records in the call.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.containers.len()
    }

    /// Sends the call; never fails, the outcome says how it went.
    pub(super) async fn send(
        self,
        client: Client,
        stream: StreamTarget,
        timeout: Duration,
        metrics: Arc<ProducerMetrics>,
    ) -> BatchOutcome {
        let entries: Vec<PutRecordsRequestEntry> = self
            .containers
            .iter()
            .map(|c| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(c.data.clone()))
                    .partition_key(c.partition_key.clone())
                    .explicit_hash_key(c.explicit_hash_key.clone())
                    .build()
                    .expect("data and partition key are set")
            })
            .collect();
        let count = entries.len();
        metrics
            .kinesis_records_per_put_records_request
            .record(count as f64);
        let users: usize = self.containers.iter().map(|c| c.users.len()).sum();
        metrics
            .user_records_per_put_records_request
            .record(users as f64);
        let span = tracing::debug_span!("put_records", stream = stream.label(), records = count);
        let sent_at = Instant::now();
        let request = stream
            .apply_put_records(client.put_records())
            .set_records(Some(entries));
        let result = match tokio::time::timeout(timeout, request.send())
            .instrument(span)
            .await
        {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(error)) => Err(match error.as_service_error() {
                Some(service) => {
                    let code = service.code().unwrap_or("Unknown").to_owned();
                    CallError {
                        retryable: RETRYABLE_CODES.contains(&code.as_str()),
                        message: service.message().unwrap_or_default().to_owned(),
                        code,
                    }
                }
                // No answer from Kinesis (connection, timeout, unreadable response): retry.
                None => CallError {
                    code: "RequestFailed".into(),
                    message: crate::producer::describe_sdk_error(&error),
                    retryable: true,
                },
            }),
            Err(_) => Err(CallError {
                code: "RequestTimeout".into(),
                message: format!("no answer within {timeout:?}"),
                retryable: true,
            }),
        };
        let duration = sent_at.elapsed();
        metrics.request_time.record(duration.as_secs_f64() * 1000.0);
        let shards = self.containers.iter().map(|c| c.shard.clone()).collect();
        let (containers, result) = settle_landed(self.containers, result, sent_at, duration);
        BatchOutcome {
            shards,
            containers,
            sent_at,
            duration,
            result,
        }
    }
}

/// Settles the Kinesis records that landed on their predicted shard, here in the call's task
/// rather than in the worker (settling costs several allocations per user record), and returns
/// the rest with their answers.
fn settle_landed(
    containers: Vec<Container>,
    result: Result<PutRecordsOutput, CallError>,
    sent_at: Instant,
    duration: Duration,
) -> (
    Vec<Container>,
    Result<Vec<PutRecordsResultEntry>, CallError>,
) {
    let output = match result {
        Ok(output) if output.records.len() == containers.len() => output,
        Ok(_) => {
            let error = CallError {
                code: "RecordCountMismatch".into(),
                message: "the answer does not match the request".into(),
                retryable: true,
            };
            return (containers, Err(error));
        }
        Err(error) => return (containers, Err(error)),
    };
    let mut rest = Vec::new();
    let mut answers = Vec::new();
    for (mut container, entry) in containers.into_iter().zip(output.records) {
        match (&entry.error_code, &entry.shard_id, &entry.sequence_number) {
            (None, Some(shard_id), Some(sequence_number)) if *container.shard == **shard_id => {
                note_sent(&mut container, sent_at, duration);
                container.deliver(shard_id, sequence_number);
            }
            _ => {
                rest.push(container);
                answers.push(entry);
            }
        }
    }
    (rest, Ok(answers))
}

/// Records a successful attempt for each user record of a Kinesis record.
fn note_sent(container: &mut Container, sent_at: Instant, duration: Duration) {
    for user in &mut container.users {
        user.attempt(sent_at, duration, None);
        user.metrics
            .buffering_time
            .record(sent_at.saturating_duration_since(user.put_at).as_secs_f64() * 1000.0);
    }
}

impl Worker {
    /// Settles the user records of a finished call, retrying what can be retried.
    pub(super) fn on_outcome(&mut self, outcome: BatchOutcome) {
        let BatchOutcome {
            shards,
            containers,
            sent_at,
            duration,
            result,
        } = outcome;
        let now = Instant::now();
        for shard in &shards {
            if let Some(buffer) = self.shards.get_mut(shard) {
                buffer.in_flight = buffer.in_flight.saturating_sub(1);
            }
        }
        let answers = match result {
            Ok(answers) => answers,
            Err(error) => return self.fail_call(containers, &error, sent_at, duration, now),
        };
        // What landed where predicted is settled already (`settle_landed`).
        for (mut container, entry) in containers.into_iter().zip(answers) {
            match (entry.error_code, entry.shard_id, entry.sequence_number) {
                (None, Some(shard_id), Some(sequence_number)) => {
                    note_sent(&mut container, sent_at, duration);
                    // On an AUTO stream every shard is the right one.
                    let expected = self.map.is_stream_wide() || *container.shard == shard_id;
                    if container.aggregated && !expected {
                        // The shard map is stale; the aggregate may straddle the new shards.
                        if let Some(buffer) = self.shards.get_mut(&container.shard) {
                            buffer.awaiting_map += 1;
                        }
                        self.unverified.push((container, shard_id, sequence_number));
                        self.refresh_map();
                    } else {
                        if !expected {
                            self.refresh_map();
                        }
                        container.deliver(&shard_id, &sequence_number);
                    }
                }
                (code, _, _) => {
                    let code = code.unwrap_or_else(|| "MissingResult".into());
                    let message = entry.error_message.unwrap_or_default();
                    let throttled = code == "ProvisionedThroughputExceededException";
                    if throttled && self.shared.config.fail_if_throttled {
                        for mut user in container.users {
                            user.attempt(sent_at, duration, Some((&code, &message)));
                            user.fail(PutError::Throttled(message.clone()));
                        }
                    } else {
                        self.retry_container(container, (&code, &message), sent_at, duration, now);
                    }
                }
            }
        }
    }

    fn fail_call(
        &mut self,
        containers: Vec<Container>,
        error: &CallError,
        sent_at: Instant,
        duration: Duration,
        now: Instant,
    ) {
        tracing::debug!(code = %error.code, message = %error.message, "PutRecords failed");
        for container in containers {
            if error.retryable {
                self.retry_container(
                    container,
                    (&error.code, &error.message),
                    sent_at,
                    duration,
                    now,
                );
            } else {
                for mut user in container.users {
                    user.attempt(sent_at, duration, Some((&error.code, &error.message)));
                    user.fail(PutError::Rejected {
                        code: error.code.clone(),
                        message: error.message.clone(),
                    });
                }
            }
        }
    }

    /// Retries a Kinesis record's user records: in order-preserving mode the record goes back to
    /// the front of its shard's queue, without the user records that would expire before the
    /// retry (those fail now), so the survivors stay ahead of newer records of their keys;
    /// otherwise each user record is re-aggregated later.
    fn retry_container(
        &mut self,
        mut container: Container,
        error: (&str, &str),
        sent_at: Instant,
        duration: Duration,
        now: Instant,
    ) {
        for user in &mut container.users {
            user.attempt(sent_at, duration, Some(error));
        }
        if self.shared.config.preserve_order
            && let Some(buffer) = self.shards.get_mut(&container.shard)
        {
            let delay = container
                .users
                .iter_mut()
                .filter_map(|u| u.next_backoff(&self.shared.config))
                .max()
                .unwrap_or_default();
            let at = now + delay;
            container.not_before = Some(at);
            // As `retry` does: a record whose next attempt would come after its TTL fails now.
            let (rest, expired) = buffer.split_off(container, |u| u.expires <= at);
            if let Some(rest) = rest {
                buffer.ready.push_front(rest);
            }
            for user in expired {
                user.expire();
            }
            return;
        }
        for user in container.users {
            self.retry(user, now);
        }
    }
}

//! SubscribeToShard: enhanced fan-out pushed over an event stream.
//!
//! A subscription answers with an `initial-response` event at once, then a first
//! `SubscribeToShardEvent` at once (empty if the shard has nothing from the starting position),
//! then one as soon as records are appended to the shard (a put wakes the
//! subscription; nothing polls), an empty event at least every five seconds while idle, and at
//! the end of a closed shard a last event with `ChildShards` and no `ContinuationSequenceNumber`.
//! It ends after its lifetime (five minutes by default), when the consumer subscribes to the
//! same shard again at least five seconds later (the old stream gets a `ResourceInUseException`
//! exception event), or when the consumer or stream goes away.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::model::consumer::Subscription;
use crate::model::shard::{ReadLimits, parse_shard_id, shard_id};
use crate::model::stream::Stream;
use crate::model::throttle::TokenBucket;
use crate::protocol::event_stream;
use crate::protocol::json::{self, Timestamp};

use super::Kinesis;
use super::consumers::ConsumerRef;
use super::get_records::{ChildShardOut, RecordOut, child_shards};
use super::iterator::StartingPoint;
use super::validate::Violations;

/// An idle subscription sends an empty event this often.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A consumer may not take over its own subscription to a shard sooner than this.
const TAKEOVER_AFTER_MS: i64 = 5_000;
/// Fan-out throughput per consumer per shard.
const FAN_OUT_BYTES_PER_SEC: f64 = 2_097_152.0;
/// Most records and bytes in one event.
const EVENT_MAX_RECORDS: usize = 10_000;
const EVENT_MAX_BYTES: usize = 2 << 20;
/// Frames buffered between the subscription and the connection.
const FRAMES_IN_FLIGHT: usize = 2;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SubscribeInput {
    #[serde(rename = "ConsumerARN")]
    consumer_arn: Option<String>,
    shard_id: Option<String>,
    starting_position: Option<StartingPositionIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartingPositionIn {
    r#type: Option<String>,
    sequence_number: Option<String>,
    timestamp: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventOut {
    records: Vec<RecordOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation_sequence_number: Option<String>,
    millis_behind_latest: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    child_shards: Vec<ChildShardOut>,
}

/// The frames of an accepted subscription, in order.
pub(crate) type EventFrames = mpsc::Receiver<Bytes>;

/// What one subscription reads, and where it is.
struct Pump {
    kinesis: Arc<Kinesis>,
    stream: Arc<Stream>,
    consumer: String,
    consumer_arn: String,
    shard: u32,
    position: u128,
    id: u64,
    frames: mpsc::Sender<Bytes>,
    /// An injected fault: end the stream after its first event.
    end_early: bool,
}

enum Step {
    /// Sent an event; with records, more may be ready at once.
    Sent { records: bool },
    /// Caught up and no heartbeat due: nothing sent.
    Idle,
    /// The stream is over (shard end sent, or the client left).
    Done,
}

impl Kinesis {
    pub(crate) fn subscribe_to_shard(
        self: &Arc<Self>,
        input: SubscribeInput,
        end_early: bool,
    ) -> Result<EventFrames, ApiError> {
        let mut v = Violations::default();
        v.require(&input.consumer_arn, "consumerARN");
        v.require(&input.shard_id, "shardId");
        v.shard_id(input.shard_id.as_deref(), "shardId");
        v.require(&input.starting_position, "startingPosition");
        if let Some(start) = &input.starting_position {
            v.require(&start.r#type, "startingPosition.type");
        }
        std::mem::take(&mut v).finish()?;
        let consumer_arn = input.consumer_arn.unwrap_or_default();
        let reference = ConsumerRef::by_arn(consumer_arn.clone());
        let (stream, consumer_name) = self.resolve_consumer(&reference)?;
        let requested_shard = input.shard_id.unwrap_or_default();
        let start = input
            .starting_position
            .unwrap_or_else(|| unreachable!("checked above"));
        let now = self.now_ms();
        let not_found = |id: &str| {
            ApiError::ResourceNotFound(format!(
                "Shard {id} in stream {} under account {} does not exist",
                stream.name, self.config.account_id
            ))
        };
        let index = parse_shard_id(&requested_shard).ok_or_else(|| not_found(&requested_shard))?;
        let (end_rx, id, position) = {
            let mut state = stream.state.lock();
            state.trim(now);
            let horizon = now - state.retention_ms();
            let shard = state
                .shard(index)
                .filter(|s| s.closed_ms().is_none_or(|closed| closed >= horizon))
                .ok_or_else(|| not_found(&shard_id(index)))?;
            let point = StartingPoint {
                kind: start.r#type.as_deref().unwrap_or_default(),
                sequence_number: start.sequence_number.as_deref(),
                timestamp_ms: start.timestamp.map(|t| t.0),
            };
            let position = self.start_position(&stream, shard, &point, now, "SubscribeToShard")?;
            let consumer = state.consumers.get_mut(&consumer_name).ok_or_else(|| {
                ApiError::ResourceNotFound(format!("Consumer {consumer_arn} not found."))
            })?;
            if !self.consumer_is_active(consumer) {
                return Err(ApiError::ResourceInUse(format!(
                    "Consumer {consumer_arn} is not ACTIVE."
                )));
            }
            if let Some(live) = consumer.subscriptions.get(&index)
                && now - live.started_ms < TAKEOVER_AFTER_MS
            {
                return Err(ApiError::ResourceInUse(format!(
                    "Another active subscription exists for this consumer: {consumer_arn} on shard {}.",
                    shard_id(index)
                )));
            }
            let (end, end_rx) = oneshot::channel();
            let id = self.next_subscription_id();
            if let Some(previous) = consumer.subscriptions.insert(
                index,
                Subscription {
                    started_ms: now,
                    end,
                    id,
                },
            ) {
                let _ = previous.end.send(());
            }
            (end_rx, id, position)
        };
        let (frames, receiver) = mpsc::channel(FRAMES_IN_FLIGHT);
        frames
            .try_send(Bytes::from(event_stream::event("initial-response", b"{}")))
            .map_err(|_| ApiError::InternalFailure("could not start the subscription".into()))?;
        let pump = Pump {
            kinesis: self.clone(),
            stream,
            consumer: consumer_name,
            consumer_arn,
            shard: index,
            position,
            id,
            frames,
            end_early,
        };
        tokio::spawn(pump.run(end_rx));
        Ok(receiver)
    }
}

impl ConsumerRef {
    fn by_arn(arn: String) -> Self {
        serde_json::from_value(serde_json::json!({ "ConsumerARN": arn }))
            .unwrap_or_else(|_| unreachable!("a string ARN always deserialises"))
    }
}

impl Pump {
    async fn run(mut self, mut ended: oneshot::Receiver<()>) {
        let lifetime = tokio::time::sleep(self.kinesis.config.subscription_lifetime);
        tokio::pin!(lifetime);
        let mut budget = TokenBucket::new(FAN_OUT_BYTES_PER_SEC);
        let mut last_sent = tokio::time::Instant::now();
        // The first event goes out at once, records or not, as on AWS; then one at least
        // every HEARTBEAT.
        let mut sent_any = false;
        loop {
            let appended = match self.shard_signal() {
                Some(signal) => signal,
                None => {
                    break self
                        .fail(
                            "ResourceNotFoundException",
                            "The stream or shard no longer exists.",
                        )
                        .await;
                }
            };
            let notified = appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let limited = self.kinesis.config.throughput_limits;
            if limited && !budget.has_tokens(self.kinesis.now_ms()) {
                // Over 2 MiB/s for this consumer and shard: wait for the budget to refill.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let heartbeat_due = !sent_any || last_sent.elapsed() >= HEARTBEAT;
            match self.send_next(&mut budget, limited, heartbeat_due).await {
                Step::Done => break,
                Step::Sent { records } => {
                    last_sent = tokio::time::Instant::now();
                    sent_any = true;
                    if self.end_early {
                        tracing::debug!(consumer = %self.consumer_arn, "subscription ended by an injected fault");
                        break;
                    }
                    if records {
                        continue;
                    }
                }
                Step::Idle => {}
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(last_sent + HEARTBEAT) => {}
                () = &mut lifetime => break,
                result = &mut ended => {
                    let (code, message) = match result {
                        Ok(()) => ("ResourceInUseException", "Another subscription for this consumer and shard took over."),
                        Err(_) => ("ResourceNotFoundException", "The consumer was deregistered."),
                    };
                    break self.fail(code, message).await;
                }
            }
        }
        self.release();
    }

    /// The shard's append signal, or `None` if the stream or shard is gone.
    fn shard_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        let current = self.kinesis.registry.get(&self.stream.name)?;
        if current.id != self.stream.id {
            return None;
        }
        let state = self.stream.state.lock();
        state.consumers.get(&self.consumer)?;
        state.shard(self.shard).map(|s| s.appended.clone())
    }

    /// Sends the next event: records if there are any, the shard end, or an empty event when a
    /// heartbeat is due.
    async fn send_next(
        &mut self,
        budget: &mut TokenBucket,
        limited: bool,
        heartbeat_due: bool,
    ) -> Step {
        let now = self.kinesis.now_ms();
        let limits = ReadLimits {
            max_records: EVENT_MAX_RECORDS,
            max_bytes: EVENT_MAX_BYTES,
            durable_lsn: self.kinesis.durable_lsn(),
        };
        let (event, got_records, at_end) = {
            let mut state = self.stream.state.lock();
            state.trim(now);
            let Some(shard) = state.shard(self.shard) else {
                return Step::Done;
            };
            let batch = shard.read(self.position, limits, now);
            self.stream.counters.pushed(self.shard, &batch);
            let continuation = batch
                .next_position
                .saturating_sub(1)
                .max(shard.starting_seq);
            let got_records = !batch.records.is_empty();
            let bytes: usize = batch
                .records
                .iter()
                .map(|r| r.data.len() + r.partition_key.len())
                .sum();
            if limited {
                budget.take(bytes as f64, now);
            }
            self.position = batch.next_position;
            let event = EventOut {
                records: batch.records.into_iter().map(RecordOut).collect(),
                continuation_sequence_number: (!batch.at_shard_end)
                    .then(|| continuation.to_string()),
                millis_behind_latest: batch.millis_behind,
                child_shards: if batch.at_shard_end {
                    child_shards(&state, self.shard)
                } else {
                    Vec::new()
                },
            };
            (event, got_records, batch.at_shard_end)
        };
        if !got_records && !at_end && !heartbeat_due {
            return Step::Idle;
        }
        let frame = event_stream::event("SubscribeToShardEvent", &json::encode(&event));
        if self.frames.send(Bytes::from(frame)).await.is_err() {
            return Step::Done; // the client went away
        }
        if at_end {
            Step::Done
        } else {
            Step::Sent {
                records: got_records,
            }
        }
    }

    /// Ends the stream with an exception event.
    async fn fail(&self, code: &str, message: &str) {
        tracing::debug!(consumer = %self.consumer_arn, shard = self.shard, code, "subscription ended");
        let _ = self
            .frames
            .send(Bytes::from(event_stream::exception(code, message)))
            .await;
    }

    /// Frees the consumer's slot for this shard unless a newer subscription holds it.
    fn release(&self) {
        let mut state = self.stream.state.lock();
        if let Some(consumer) = state.consumers.get_mut(&self.consumer)
            && consumer
                .subscriptions
                .get(&self.shard)
                .is_some_and(|s| s.id == self.id)
        {
            consumer.subscriptions.remove(&self.shard);
        }
    }
}

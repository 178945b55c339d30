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
//!
//! Events carry batches, as AWS's do: each holds every record readable when it is built (up to
//! 10,000 records and 2 MiB), and it is built only once the connection has taken the previous
//! one, and no sooner than the engine's fan-out batch window (2 ms by default) after the last
//! event with records. Records that arrive more often than that share events instead of each
//! paying for its own; a record after a quiet spell of a window or more goes out at once.
//!
//! A durable engine reads records no longer cached back from the log as GetRecords does:
//! planned under the stream's lock, read after it, so a subscriber catching up stalls no put.
//! A record that does not read back ends an event before it, or, first in its event, the
//! subscription with an `InternalFailureException` event; the subscriber subscribes again from
//! its continuation.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::model::consumer::Subscription;
use crate::model::records::finish_read;
use crate::model::shard::{ReadLimits, parse_shard_id, shard_id};
use crate::model::stream::Stream;
use crate::model::throttle::TokenBucket;
use crate::protocol::cbor::writer as cbor;
use crate::protocol::json::{Timestamp, writer};
use crate::protocol::{cbor as cbor_wire, event_stream};
use crate::storage::StoredRecord;

use super::Kinesis;
use super::consumers::ConsumerRef;
use super::get_records::{
    ChildShardOut, child_shards, child_shards_cbor, child_shards_json, records_cbor,
    records_cbor_size_hint, records_json, records_size_hint,
};
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
/// Frames buffered between the subscription and the connection: one, so that the next event is
/// read from the shard only when the connection has taken the previous one, and holds every
/// record that arrived meanwhile.
const FRAMES_IN_FLIGHT: usize = 1;
/// The exception that ends a subscription on an internal error (a record that does not read
/// back from the log), as AWS names it in the event stream.
const INTERNAL_FAILURE: &str = "InternalFailureException";

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

/// One `SubscribeToShardEvent`, written by [`EventOut::write_json`].
#[derive(Debug)]
pub(super) struct EventOut {
    pub(super) records: Vec<StoredRecord>,
    /// Absent in the last event of a closed shard, which names its children instead.
    pub(super) continuation_sequence_number: Option<u128>,
    pub(super) millis_behind_latest: i64,
    pub(super) child_shards: Vec<ChildShardOut>,
}

impl EventOut {
    /// About how many bytes its JSON takes.
    fn size_hint(&self) -> usize {
        records_size_hint(&self.records) + 100 + self.child_shards.len() * 200
    }

    /// Appends the event's JSON payload: `{"Records":[...],"ContinuationSequenceNumber"?,
    /// "MillisBehindLatest","ChildShards"?}`.
    pub(super) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"Records\":");
        records_json(out, &self.records);
        if let Some(continuation) = self.continuation_sequence_number {
            out.extend_from_slice(b",\"ContinuationSequenceNumber\":");
            writer::u128_string(out, continuation);
        }
        out.extend_from_slice(b",\"MillisBehindLatest\":");
        writer::int(out, self.millis_behind_latest);
        child_shards_json(out, &self.child_shards);
        out.push(b'}');
    }

    /// About how many bytes its CBOR takes.
    fn cbor_size_hint(&self) -> usize {
        records_cbor_size_hint(&self.records) + 100 + self.child_shards.len() * 200
    }

    /// Appends the event's CBOR payload: the members of [`Self::write_json`], in its order.
    pub(super) fn write_cbor(&self, out: &mut Vec<u8>) {
        let members = 2
            + usize::from(self.continuation_sequence_number.is_some())
            + usize::from(!self.child_shards.is_empty());
        cbor::map(out, members);
        cbor::text(out, "Records");
        records_cbor(out, &self.records);
        if let Some(continuation) = self.continuation_sequence_number {
            cbor::text(out, "ContinuationSequenceNumber");
            cbor::u128_text(out, continuation);
        }
        cbor::text(out, "MillisBehindLatest");
        cbor::int(out, self.millis_behind_latest);
        child_shards_cbor(out, &self.child_shards);
    }
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
    /// The subscriber speaks CBOR: its events carry CBOR payloads.
    cbor: bool,
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
        cbor: bool,
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
            .try_send(in_format(
                event_stream::event("initial-response", b"{}"),
                cbor,
            ))
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
            cbor,
        };
        tokio::spawn(pump.run(end_rx));
        Ok(receiver)
    }
}

/// A rare message (the initial response, an exception) in the subscriber's format: CBOR
/// subscribers get it through the translation layer.
fn in_format(json_message: Vec<u8>, cbor: bool) -> Bytes {
    if cbor {
        match cbor_wire::event_message_to_cbor(&json_message) {
            Some(message) => return Bytes::from(message),
            // The engine wrote the message, so this is a bug; better JSON than nothing.
            None => tracing::error!("could not re-encode an event-stream message as CBOR"),
        }
    }
    Bytes::from(json_message)
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
                        // Records put within the window after this event join the next one.
                        let window = self.kinesis.fan_out_batch_window;
                        tokio::time::sleep_until(last_sent + window).await;
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
        // Read only once the connection has room for the event, so that it holds every
        // record that arrived while the previous one was being sent.
        let Ok(permit) = self.frames.reserve().await else {
            return Step::Done; // the client went away
        };
        let now = self.kinesis.now_ms();
        let limits = ReadLimits {
            max_records: EVENT_MAX_RECORDS,
            max_bytes: EVENT_MAX_BYTES,
            durable_lsn: self.kinesis.durable_lsn(),
        };
        let (plan, starting_seq, child_shards) = {
            let mut state = self.stream.state.lock();
            state.trim(now);
            let Some(shard) = state.shard(self.shard) else {
                return Step::Done;
            };
            let plan = shard.plan_read(self.position, limits, now);
            let child_shards = match plan.at_shard_end() {
                true => child_shards(&state, self.shard),
                false => Vec::new(),
            };
            (plan, shard.starting_seq, child_shards)
        };
        // Records no longer cached are read back from the log without the stream's lock (a
        // subscriber catching up holds up neither the stream's puts nor its other readers) and
        // off the async workers, as GetRecords does.
        let mut batch = match finish_read(plan.reads_log(), move || plan.finish()).await {
            Ok(batch) => batch,
            Err(error) => {
                permit.send(self.exception(INTERNAL_FAILURE, &error.to_string()));
                return Step::Done;
            }
        };
        if let Some(failure) = batch.failure.take()
            && batch.records.is_empty()
        {
            // As AWS ends a subscription on an internal error: the subscriber subscribes again
            // from its last continuation, and meets the record again.
            let message = failure.into_api_error(self.shard).to_string();
            permit.send(self.exception(INTERNAL_FAILURE, &message));
            return Step::Done;
        }
        self.stream.counters.pushed(self.shard, &batch);
        let continuation = batch.next_position.saturating_sub(1).max(starting_seq);
        let got_records = !batch.records.is_empty();
        if limited {
            let bytes: usize = batch
                .records
                .iter()
                .map(|r| r.data.len() + r.partition_key.len())
                .sum();
            budget.take(bytes as f64, now);
        }
        // After a failure with records read, the next event starts at the failed record.
        self.position = batch.next_position;
        let at_end = batch.at_shard_end;
        let event = EventOut {
            records: batch.records,
            continuation_sequence_number: (!at_end).then_some(continuation),
            millis_behind_latest: batch.millis_behind,
            child_shards: match at_end {
                true => child_shards,
                false => Vec::new(),
            },
        };
        if !got_records && !at_end && !heartbeat_due {
            return Step::Idle;
        }
        let frame = if self.cbor {
            event_stream::encode_with(
                &cbor_wire::event_headers("SubscribeToShardEvent"),
                event.cbor_size_hint(),
                |out| event.write_cbor(out),
            )
        } else {
            event_stream::event_with("SubscribeToShardEvent", event.size_hint(), |out| {
                event.write_json(out)
            })
        };
        permit.send(Bytes::from(frame));
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
        let _ = self.frames.send(self.exception(code, message)).await;
    }

    /// The exception event that ends the stream, in the subscriber's format.
    fn exception(&self, code: &str, message: &str) -> Bytes {
        tracing::debug!(consumer = %self.consumer_arn, shard = self.shard, code, "subscription ended");
        in_format(event_stream::exception(code, message), self.cbor)
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

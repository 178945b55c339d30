//! One subscription task per shard: SubscribeToShard, again and again, each event handed on in
//! order, at most a few ahead of the processor.
//!
//! The first subscription starts at the lease's checkpoint, or at the initial position of a new
//! lease. Every later one starts AFTER_SEQUENCE_NUMBER the `ContinuationSequenceNumber` of the
//! last event handed to the consumer, so a subscription that ends (after its five minutes, or
//! early) or breaks is followed by one that goes on where it stopped, with no gap and no
//! duplicate. Empty events move that position too.
//!
//! A checkpoint at sub-sequence 0 cannot tell a plain record from the first user record of a
//! KPL aggregate, so the first subscription of a checkpointed lease starts AT_SEQUENCE_NUMBER the
//! checkpoint and drops the (sub-)records the checkpoint covers, as polling does (and as the
//! Java KCL does); the cost is one record read twice.
//!
//! Failures (ResourceInUseException while an older subscription of this consumer and shard lives
//! on, LimitExceededException, InternalFailure, a dropped connection, a subscription silent for
//! longer than [`FanOutConfig::silence_timeout`](crate::config::FanOutConfig::silence_timeout))
//! are logged and retried with a jittered backoff from the same position. A shard that no longer
//! exists (ResourceNotFoundException twice in a row while DescribeStreamConsumer shows the
//! consumer active) ends like a polled one that is gone: as a shard end without children. A
//! consumer that no longer exists (deregistered by someone) is registered again under its name,
//! and the subscription goes on from the same position with the new ARN. Errors that cannot go
//! away (access denied, a refused argument, the stream deleted) stop the task with
//! [`Fetched::Failed`].

use std::time::{Duration, SystemTime};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{
    ShardIteratorType, StartingPosition, SubscribeToShardEvent, SubscribeToShardEventStream,
};
use tokio::task::JoinHandle;

use super::{Fetched, FetchedReceiver, FetchedSender, fetched_channel};
use crate::error::{self, Error, Result};
use crate::leases::Checkpoint;

/// Fan-out settings of one subscription task.
#[derive(Debug, Clone)]
pub(crate) struct SubscriberSettings {
    /// The stream's consumer, shared with the other subscribers: updated when registered again.
    pub consumer: super::ConsumerArn,
    /// Its name, to register it again.
    pub consumer_name: String,
    /// Bound on the wait for a consumer registered again to become ACTIVE.
    pub activation_timeout: Duration,
    /// The stream, to tell a deleted stream from a gone shard.
    pub stream: super::StreamRef,
    /// Bound on SubscribeToShard until its initial response.
    pub timeout: Duration,
    pub silence_timeout: Duration,
    pub max_buffered_events: usize,
    pub timestamp: Option<SystemTime>,
    /// The shard's metrics.
    pub metrics: crate::metrics::Scope,
}

/// Starts reading `shard_id` after `start` through enhanced fan-out; the task ends at shard end
/// or when the receiver is dropped (which closes the subscription).
pub(crate) fn spawn_subscriber(
    client: Client,
    shard_id: String,
    start: Checkpoint,
    deaggregator: super::Deaggregator,
    consumer_arn: String,
    settings: SubscriberSettings,
) -> (FetchedReceiver, JoinHandle<()>) {
    let (tx, rx) = fetched_channel(settings.max_buffered_events, &settings.metrics);
    let subscriber = Subscriber {
        consumer_arn,
        shard_seems_gone: false,
        client,
        shard_id,
        start,
        deaggregator,
        settings,
        continuation: None,
        got_events: false,
    };
    (rx, tokio::spawn(subscriber.run(tx)))
}

type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
>;

struct Subscriber {
    /// The consumer this task subscribes as.
    consumer_arn: String,
    /// Whether the last subscription failed with ResourceNotFoundException while the consumer
    /// was active: the shard ends only if the next one fails so too, since a consumer
    /// registered again within the same second has the old ARN (which then failed only
    /// because it was asked in between).
    shard_seems_gone: bool,
    client: Client,
    shard_id: String,
    start: Checkpoint,
    deaggregator: super::Deaggregator,
    settings: SubscriberSettings,
    /// `ContinuationSequenceNumber` of the last event handed to the consumer.
    continuation: Option<String>,
    /// Whether the current subscription delivered an event (then failures back off afresh).
    got_events: bool,
}

/// How one subscription ended.
enum Ended {
    /// The service closed it cleanly (its lifetime is over): subscribe again at once.
    Completed,
    /// It failed: subscribe again after a backoff.
    Failed(Error),
    /// The shard is read to its end, or the consumer is gone: stop.
    Done,
}

fn new_backoff() -> impl Iterator<Item = Duration> {
    super::backoff(Duration::from_millis(200), Duration::from_secs(5))
}

impl Subscriber {
    async fn run(mut self, tx: FetchedSender) {
        let mut backoff = new_backoff();
        loop {
            if tx.is_closed() {
                return;
            }
            let ended = match self.subscribe().await {
                Ok(events) => {
                    self.shard_seems_gone = false;
                    self.settings
                        .metrics
                        .counter(crate::metrics::SUBSCRIBE_SUCCESS)
                        .increment(1);
                    let ended = self.read(events, &tx).await;
                    if std::mem::take(&mut self.got_events) {
                        backoff = new_backoff();
                    }
                    ended
                }
                Err(e) => Ended::Failed(e),
            };
            match ended {
                Ended::Done => return,
                Ended::Completed => {
                    tracing::debug!(shard = %self.shard_id, "subscription completed; subscribing again");
                }
                Ended::Failed(e) if e.is_non_retryable_read() => {
                    tx.send(Fetched::Failed(e)).await;
                    return;
                }
                Ended::Failed(e)
                    if e.is_not_found()
                        && let Some(gone) = super::stream_gone(
                            &self.client,
                            &self.settings.stream,
                            self.settings.timeout,
                        )
                        .await =>
                {
                    // The stream was deleted (its consumers with it).
                    tracing::debug!(shard = %self.shard_id, error = %e, "stream gone");
                    tx.send(Fetched::Failed(gone)).await;
                    return;
                }
                Ended::Failed(e) if e.is_not_found() => match self.consumer_active().await {
                    Some(true) if std::mem::replace(&mut self.shard_seems_gone, true) => {
                        // Closed and past retention: like the Java KCL, treat it as its end, so
                        // the lease is finished and its children can start.
                        tracing::warn!(shard = %self.shard_id, "shard no longer exists; treating it as ended");
                        tx.send(Fetched::ShardEnd {
                            children: Vec::new(),
                        })
                        .await;
                        return;
                    }
                    Some(true) => {
                        tracing::debug!(shard = %self.shard_id, error = %e, "shard not found; asking once more");
                    }
                    Some(false) => {
                        if let Err(e) = self.reregister().await {
                            self.failed(e, &mut backoff, &tx).await;
                        }
                    }
                    // Nothing concluded: retried.
                    None => self.failed(e, &mut backoff, &tx).await,
                },
                Ended::Failed(e) => self.failed(e, &mut backoff, &tx).await,
            }
        }
    }

    /// Counts and logs a failure, then waits for the next attempt (or the receiver's end, which
    /// the loop then sees).
    async fn failed(
        &self,
        e: Error,
        backoff: &mut impl Iterator<Item = Duration>,
        tx: &FetchedSender,
    ) {
        self.settings
            .metrics
            .counter(crate::metrics::SUBSCRIBE_FAILURE)
            .increment(1);
        let delay = backoff.next().unwrap_or(Duration::from_secs(1));
        if e.is_resource_in_use() || e.is_throttling() {
            tracing::info!(shard = %self.shard_id, error = %e, ?delay, "subscription refused; retrying");
        } else {
            tracing::warn!(shard = %self.shard_id, error = %e, ?delay, "subscription failed; subscribing again");
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = tx.closed() => {}
        }
    }

    /// The consumer is gone: registers it again (or takes the ARN another subscriber or worker
    /// registered), to subscribe again at once from the same position.
    async fn reregister(&mut self) -> Result<()> {
        let s = &self.settings;
        self.consumer_arn = s
            .consumer
            .reregister(
                &self.client,
                &s.stream,
                &s.consumer_name,
                &self.consumer_arn,
                (s.timeout, s.activation_timeout),
                &s.metrics,
            )
            .await?;
        Ok(())
    }

    /// Where the next subscription starts.
    fn position(&self) -> Result<StartingPosition> {
        let builder = StartingPosition::builder();
        let builder = match (&self.continuation, &self.start) {
            (Some(seq), _) => builder
                .r#type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            (None, Checkpoint::Sequence(s)) => builder
                .r#type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(&s.sequence),
            (None, Checkpoint::Latest) => builder.r#type(ShardIteratorType::Latest),
            (None, Checkpoint::AtTimestamp) => match self.settings.timestamp {
                Some(t) => builder
                    .r#type(ShardIteratorType::AtTimestamp)
                    .timestamp(DateTime::from(t)),
                None => builder.r#type(ShardIteratorType::TrimHorizon),
            },
            (None, _) => builder.r#type(ShardIteratorType::TrimHorizon),
        };
        builder.build().map_err(|e| Error::Kinesis {
            op: "SubscribeToShard",
            code: None,
            message: format!("bad starting position: {e}"),
            retryable: false,
        })
    }

    /// One SubscribeToShard call, bounded until its initial response.
    async fn subscribe(&self) -> Result<Events> {
        let position = self.position()?;
        let out = error::kinesis_call(
            self.settings.timeout,
            "SubscribeToShard",
            self.client
                .subscribe_to_shard()
                .consumer_arn(&self.consumer_arn)
                .shard_id(&self.shard_id)
                .starting_position(position)
                .send(),
        )
        .await?;
        Ok(out.event_stream)
    }

    /// Reads one subscription's events, one at a time and only when the consumer has room.
    async fn read(&mut self, mut events: Events, tx: &FetchedSender) -> Ended {
        loop {
            // Flow control: a slot first, then the next event. Until then the connection is not
            // read, so its window fills and the service holds back.
            let Some(permit) = tx.reserve().await else {
                return Ended::Done;
            };
            let next = tokio::time::timeout(self.settings.silence_timeout, events.recv()).await;
            let event = match next {
                Err(_) => {
                    self.settings
                        .metrics
                        .counter(crate::metrics::SUBSCRIBE_SILENT)
                        .increment(1);
                    return Ended::Failed(Error::Timeout {
                        service: "Kinesis",
                        op: "SubscribeToShard (next event)",
                        after: self.settings.silence_timeout,
                    });
                }
                Ok(Ok(None)) => return Ended::Completed,
                Ok(Err(e)) => return Ended::Failed(error::kinesis("SubscribeToShard", e)),
                Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event)))) => event,
                Ok(Ok(Some(other))) => {
                    tracing::debug!(shard = %self.shard_id, event = ?other, "ignoring an unknown event");
                    continue;
                }
            };
            self.got_events = true;
            match self.hand_on(event, permit, tx).await {
                Some(ended) => return ended,
                None => continue,
            }
        }
    }

    /// Hands an event's records on; `Some` when the subscription is over.
    async fn hand_on(
        &mut self,
        event: SubscribeToShardEvent,
        permit: super::FetchedPermit<'_>,
        tx: &FetchedSender,
    ) -> Option<Ended> {
        let SubscribeToShardEvent {
            records,
            continuation_sequence_number,
            millis_behind_latest,
            child_shards,
            ..
        } = event;
        let records = self
            .deaggregator
            .user_records(records, self.start.sequence())
            .await;
        if continuation_sequence_number.is_empty() {
            let children = child_shards.unwrap_or_default();
            if children.is_empty() {
                // Neither a position nor children: the service broke the protocol. Retry from
                // the last good position rather than guess.
                return Some(Ended::Failed(Error::Kinesis {
                    op: "SubscribeToShard",
                    code: None,
                    message: "an event with neither a continuation nor child shards".into(),
                    retryable: true,
                }));
            }
            if !records.is_empty() {
                permit.send(Fetched::Batch {
                    records,
                    millis_behind_latest: Some(millis_behind_latest),
                });
                if !tx.send(Fetched::ShardEnd { children }).await {
                    return Some(Ended::Done);
                }
            } else {
                permit.send(Fetched::ShardEnd { children });
            }
            return Some(Ended::Done);
        }
        self.continuation = Some(continuation_sequence_number);
        permit.send(Fetched::Batch {
            records,
            millis_behind_latest: Some(millis_behind_latest),
        });
        None
    }
}

impl Subscriber {
    /// Whether the enhanced fan-out consumer exists and is active, asked of Kinesis: a
    /// ResourceNotFoundException from SubscribeToShard names either the consumer or the shard,
    /// and only its message (whose wording is not part of the API) says which. With the
    /// consumer there, it is the shard that is gone. `None` when the question itself fails:
    /// nothing is concluded and the subscription is retried, since ending a shard that is
    /// still there would skip its records.
    async fn consumer_active(&self) -> Option<bool> {
        let answer = crate::error::kinesis_call(
            self.settings.timeout,
            "DescribeStreamConsumer",
            self.client
                .describe_stream_consumer()
                .consumer_arn(&self.consumer_arn)
                .send(),
        )
        .await;
        match answer {
            Ok(out) => Some(out.consumer_description.is_some_and(|c| {
                c.consumer_status == aws_sdk_kinesis::types::ConsumerStatus::Active
            })),
            Err(e) if e.is_not_found() => Some(false),
            Err(e) => {
                tracing::debug!(shard = %self.shard_id, error = %e, "cannot tell whether the consumer exists");
                None
            }
        }
    }
}

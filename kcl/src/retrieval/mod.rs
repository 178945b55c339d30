//! Reading shards: polling with GetRecords or enhanced fan-out with SubscribeToShard (see
//! [`Retrieval`](crate::Retrieval)). Both run one task per held lease that hands the shard
//! consumer the same messages through a small bounded channel, so the consumer has one code
//! path whatever the retrieval.

mod deaggregation;
mod fanout;
mod polling;
mod registration;

pub(crate) use deaggregation::{Deaggregator, Distribution};
pub(crate) use fanout::{SubscriberSettings, spawn_subscriber};
pub(crate) use polling::{FetcherSettings, spawn_fetcher};
pub(crate) use registration::{ConsumerArn, register_consumer};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_kinesis::types::ChildShard;
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::mpsc;

use crate::processor::Record;

/// What the fetch task hands to the shard consumer.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// Records after the checkpoint, in order (may be empty).
    Batch {
        records: Vec<Record>,
        millis_behind_latest: Option<i64>,
    },
    /// The shard is closed and fully read.
    ShardEnd { children: Vec<ChildShard> },
    /// Reading failed with an error trying again cannot fix; the retrieval task has stopped.
    Failed(crate::Error),
}

/// The sending half of a shard's retrieval channel; counts the records it holds.
#[derive(Debug, Clone)]
pub(crate) struct FetchedSender {
    tx: mpsc::Sender<Fetched>,
    buffered: Arc<AtomicUsize>,
    /// `RecordsBuffered` of the shard.
    gauge: metrics::Gauge,
}

/// The receiving half, read by the shard consumer.
#[derive(Debug)]
pub(crate) struct FetchedReceiver {
    rx: mpsc::Receiver<Fetched>,
    buffered: Arc<AtomicUsize>,
    gauge: metrics::Gauge,
}

/// A channel holding at most `capacity` messages.
pub(crate) fn fetched_channel(
    capacity: usize,
    metrics: &crate::metrics::Scope,
) -> (FetchedSender, FetchedReceiver) {
    let gauge = metrics.gauge(crate::metrics::RECORDS_BUFFERED);
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let buffered = Arc::new(AtomicUsize::new(0));
    (
        FetchedSender {
            tx,
            buffered: buffered.clone(),
            gauge: gauge.clone(),
        },
        FetchedReceiver {
            rx,
            buffered,
            gauge,
        },
    )
}

fn records_of(fetched: &Fetched) -> usize {
    match fetched {
        Fetched::Batch { records, .. } => records.len(),
        Fetched::ShardEnd { .. } | Fetched::Failed(_) => 0,
    }
}

impl FetchedSender {
    /// Waits for a free slot; `None` once the consumer is gone.
    pub(crate) async fn reserve(&self) -> Option<FetchedPermit<'_>> {
        let permit = self.tx.reserve().await.ok()?;
        Some(FetchedPermit {
            permit,
            sender: self,
        })
    }

    /// Sends, waiting for a free slot; `false` once the consumer is gone.
    pub(crate) async fn send(&self, fetched: Fetched) -> bool {
        match self.reserve().await {
            Some(permit) => {
                permit.send(fetched);
                true
            }
            None => false,
        }
    }

    /// Whether the consumer is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Waits until the consumer is gone.
    pub(crate) async fn closed(&self) {
        self.tx.closed().await
    }

    fn add(&self, records: usize) {
        let now = self.buffered.fetch_add(records, Ordering::SeqCst) + records;
        buffered_gauge(&self.gauge, now);
    }
}

/// A reserved slot of the channel.
pub(crate) struct FetchedPermit<'a> {
    permit: mpsc::Permit<'a, Fetched>,
    sender: &'a FetchedSender,
}

impl FetchedPermit<'_> {
    pub(crate) fn send(self, fetched: Fetched) {
        self.sender.add(records_of(&fetched));
        self.permit.send(fetched);
    }
}

impl FetchedReceiver {
    /// The next message; `None` when the retrieval task stopped.
    pub(crate) async fn recv(&mut self) -> Option<Fetched> {
        let fetched = self.rx.recv().await?;
        let n = records_of(&fetched);
        let now = self.buffered.fetch_sub(n, Ordering::SeqCst) - n;
        buffered_gauge(&self.gauge, now);
        Some(fetched)
    }
}

/// `RecordsBuffered`: records read from Kinesis that wait for the processor (the batch being
/// processed is not counted).
fn buffered_gauge(gauge: &metrics::Gauge, records: usize) {
    gauge.set(records as f64);
}

/// The error to stop reading with when a read got ResourceNotFoundException and the stream
/// itself is gone (deleted or being deleted); `None` when it exists (then the shard is gone) or
/// cannot be asked about right now.
pub(crate) async fn stream_gone(
    client: &aws_sdk_kinesis::Client,
    stream: &StreamRef,
    timeout: Duration,
) -> Option<crate::Error> {
    let answer = crate::error::kinesis_call(
        timeout,
        "DescribeStreamSummary",
        client
            .describe_stream_summary()
            .set_stream_name(stream.name())
            .set_stream_arn(stream.arn())
            .send(),
    )
    .await;
    match answer {
        Err(e) if e.is_not_found() => Some(e),
        Ok(out)
            if out.stream_description_summary.as_ref().is_some_and(|d| {
                d.stream_status == aws_sdk_kinesis::types::StreamStatus::Deleting
            }) =>
        {
            Some(crate::Error::Kinesis {
                op: "DescribeStreamSummary",
                code: Some("ResourceNotFoundException".into()),
                message: "the stream is being deleted".into(),
                retryable: false,
            })
        }
        _ => None,
    }
}

/// A jittered exponential backoff between `min` and `max`, without an attempt limit.
pub(crate) fn backoff(min: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(min)
        .with_max_delay(max)
        .without_max_times()
        .build()
}

/// A stream named by name or by ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRef {
    /// By name.
    Name(String),
    /// By ARN.
    Arn(String),
}

impl StreamRef {
    /// An ARN if it starts with `arn:`, else a name.
    pub fn parse(stream: &str) -> Self {
        if stream.starts_with("arn:") {
            StreamRef::Arn(stream.to_owned())
        } else {
            StreamRef::Name(stream.to_owned())
        }
    }

    /// The name or ARN, as given.
    pub fn as_str(&self) -> &str {
        match self {
            StreamRef::Name(s) | StreamRef::Arn(s) => s,
        }
    }

    pub(crate) fn name(&self) -> Option<String> {
        match self {
            StreamRef::Name(n) => Some(n.clone()),
            StreamRef::Arn(_) => None,
        }
    }

    pub(crate) fn arn(&self) -> Option<String> {
        match self {
            StreamRef::Arn(a) => Some(a.clone()),
            StreamRef::Name(_) => None,
        }
    }
}

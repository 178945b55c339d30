//! Splitting Kinesis records into user records, with or without the Java KCL's shard-range
//! check, by the stream's record distribution strategy.
//!
//! On a `USER_PARTITION_KEY` stream (the default, and what a missing field means) a KPL
//! aggregate whose user records' hash keys leave the shard's range is dropped, as the Java KCL
//! does. On an `AUTO` stream the service places records whatever their keys, so every
//! aggregate is delivered whole: there the check would drop valid records.
//!
//! A change of strategy while the worker runs: the worker asks at start-up and at each shard
//! sync, and once it has seen `AUTO` it keeps reading the stream without the check until it
//! restarts, since aggregates put under `AUTO` stay in the shards after a switch back. Before
//! dropping an aggregate on a stream it believes `USER_PARTITION_KEY`, it asks again (at most
//! once a second per stream), so a switch to `AUTO` since the last sync loses nothing; when
//! that question fails it delivers the aggregate rather than risk losing it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::RecordDistributionStrategy;
use bytes::Bytes;
use tokio::time::Instant;

use super::StreamRef;
use crate::error::{self, Result};
use crate::leases::SequenceNumber;
use crate::processor::Record;

/// The least time between two questions about one stream's strategy before a drop.
const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Whether a stream is read as `AUTO` (without the shard-range check), as the worker last
/// learned; shared by the scheduler and the stream's retrieval tasks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Distribution {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    auto: AtomicBool,
    /// When a retrieval task last asked before a drop, and whether that question failed.
    rechecked: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl Distribution {
    /// Whether the stream is read without the shard-range check.
    pub(crate) fn is_auto(&self) -> bool {
        self.inner.auto.load(Ordering::Acquire)
    }

    /// Notes the strategy DescribeStreamSummary gave (`None` when the answer has no such field,
    /// as older APIs): `AUTO` sticks (see the module documentation).
    pub(crate) fn note(&self, strategy: Option<&RecordDistributionStrategy>) {
        if strategy == Some(&RecordDistributionStrategy::Auto) && !self.is_auto() {
            tracing::info!(
                "the stream distributes records itself (AUTO): KPL aggregates are read without the shard hash-range check"
            );
            self.inner.auto.store(true, Ordering::Release);
        }
    }

    /// Asks DescribeStreamSummary for the strategy and notes it; whether it got an answer. A
    /// failure (throttling, say) is logged and keeps the last answer: the question asked before
    /// a drop covers it, so a shard sync need not fail for it.
    pub(crate) async fn refresh(
        &self,
        client: &Client,
        stream: &StreamRef,
        timeout: Duration,
    ) -> bool {
        match strategy(client, stream, timeout).await {
            Ok(strategy) => {
                self.note(strategy.as_ref());
                true
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "could not ask for the stream's record distribution strategy"
                );
                false
            }
        }
    }

    /// Before a drop: whether to deliver the aggregates unchecked after all. Asks again unless
    /// asked less than [`RECHECK_INTERVAL`] ago (tasks racing here wait for the one asking).
    /// When the question fails it delivers: a record the Java KCL would drop is better
    /// delivered than a valid one lost.
    async fn recheck(&self, client: &Client, stream: &StreamRef, timeout: Duration) -> bool {
        let mut rechecked = self.inner.rechecked.lock().await;
        if self.is_auto() {
            return true;
        }
        if let Some((at, failed)) = *rechecked
            && at.elapsed() < RECHECK_INTERVAL
        {
            return failed;
        }
        let failed = !self.refresh(client, stream, timeout).await;
        *rechecked = Some((Instant::now(), failed));
        failed || self.is_auto()
    }
}

/// The stream's `RecordDistributionStrategy` from DescribeStreamSummary; `None` when absent.
pub(crate) async fn strategy(
    client: &Client,
    stream: &StreamRef,
    timeout: Duration,
) -> Result<Option<RecordDistributionStrategy>> {
    let out = error::kinesis_call(
        timeout,
        "DescribeStreamSummary",
        client
            .describe_stream_summary()
            .set_stream_name(stream.name())
            .set_stream_arn(stream.arn())
            .send(),
    )
    .await?;
    Ok(out
        .stream_description_summary
        .and_then(|s| s.record_distribution_strategy))
}

/// How a shard's retrieval task splits what it reads.
#[derive(Debug, Clone)]
pub(crate) struct Deaggregator {
    pub client: Client,
    pub stream: StreamRef,
    /// Bound on DescribeStreamSummary.
    pub timeout: Duration,
    /// The shard's hash keys, inclusive.
    pub hash_range: (u128, u128),
    pub distribution: Distribution,
    /// Counts the aggregates dropped (`AggregatedRecordsDropped`).
    pub dropped: metrics::Counter,
}

/// A Kinesis record, its data taken without a copy.
struct Read {
    partition_key: String,
    sequence_number: String,
    arrival: Option<SystemTime>,
    data: Bytes,
}

impl Deaggregator {
    /// The user records of `records` (KPL aggregates split into their user records; on a
    /// `USER_PARTITION_KEY` stream, aggregates with a hash key outside the shard dropped as the
    /// Java KCL does), without those at or before `after` (a checkpoint that may fall inside an
    /// aggregate).
    pub(crate) async fn user_records(
        &self,
        records: Vec<aws_sdk_kinesis::types::Record>,
        after: Option<&SequenceNumber>,
    ) -> Vec<Record> {
        let read: Vec<Read> = records
            .into_iter()
            .map(|r| Read {
                partition_key: r.partition_key.unwrap_or_default(),
                arrival: r
                    .approximate_arrival_timestamp
                    .and_then(|t| SystemTime::try_from(t).ok()),
                sequence_number: r.sequence_number,
                data: Bytes::from(r.data.into_inner()),
            })
            .collect();
        if self.distribution.is_auto() {
            return split(&read, None, after).0;
        }
        let (out, dropped) = split(&read, Some(self.hash_range), after);
        if dropped == 0 {
            return out;
        }
        if self
            .distribution
            .recheck(&self.client, &self.stream, self.timeout)
            .await
        {
            return split(&read, None, after).0;
        }
        self.dropped.increment(dropped as u64);
        tracing::warn!(
            aggregates = dropped,
            "dropped KPL aggregates holding user records whose hash keys lie outside the shard"
        );
        out
    }
}

/// The user records of `read` after `after`, and how many aggregates the range check dropped.
fn split(
    read: &[Read],
    range: Option<(u128, u128)>,
    after: Option<&SequenceNumber>,
) -> (Vec<Record>, usize) {
    let mut out = Vec::with_capacity(read.len());
    let mut dropped = 0;
    for record in read {
        let aggregated = record.data.starts_with(&kpl::aggregation::MAGIC);
        let users = match range {
            Some((start, end)) => {
                let users = kpl::aggregation::deaggregate_for_shard(
                    &record.partition_key,
                    None,
                    &record.data,
                    start,
                    end,
                );
                // Empty is a drop unless the aggregate holds no records at all.
                if aggregated
                    && users.is_empty()
                    && !kpl::aggregation::deaggregate(&record.partition_key, None, &record.data)
                        .is_empty()
                {
                    dropped += 1;
                }
                users
            }
            None => kpl::aggregation::deaggregate(&record.partition_key, None, &record.data),
        };
        for user in users {
            let position = SequenceNumber::new(&*record.sequence_number, user.sub_sequence_number);
            if after.is_some_and(|a| position <= *a) {
                continue;
            }
            out.push(Record {
                partition_key: user.partition_key,
                explicit_hash_key: user.explicit_hash_key,
                data: user.data,
                sequence_number: record.sequence_number.clone(),
                sub_sequence_number: user.sub_sequence_number,
                approximate_arrival_timestamp: record.arrival,
                aggregated,
            });
        }
    }
    (out, dropped)
}

//! One fetch task per shard: GetRecords in a loop, ahead of the processor by at most a few batches.
//!
//! Throttling, 5xx and transport errors are retried with backoff; an expired iterator is
//! replaced. A shard that is gone (ResourceNotFoundException while its stream exists) ends like
//! a closed one. Errors that cannot go away (access denied, the stream deleted, an iterator or
//! position refused again after a fresh iterator) stop the task with [`Fetched::Failed`].

use std::time::{Duration, SystemTime};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use tokio::task::JoinHandle;

use super::{Deaggregator, Fetched, FetchedReceiver, FetchedSender, StreamRef, fetched_channel};
use crate::error::{self, Result};
use crate::leases::Checkpoint;
use crate::processor::Record;

/// Polling settings.
#[derive(Debug, Clone)]
pub(crate) struct FetcherSettings {
    pub max_records: i32,
    pub idle_time_between_reads: Duration,
    pub max_prefetch_batches: usize,
    pub timestamp: Option<SystemTime>,
    /// Bound on each Kinesis call.
    pub timeout: Duration,
    /// The shard's metrics.
    pub metrics: crate::metrics::Scope,
}

/// Starts reading `shard_id` after `start`; the task ends at shard end or when the receiver is
/// dropped.
pub(crate) fn spawn_fetcher(
    client: Client,
    stream: StreamRef,
    shard_id: String,
    start: Checkpoint,
    deaggregator: Deaggregator,
    settings: FetcherSettings,
) -> (FetchedReceiver, JoinHandle<()>) {
    let (tx, rx) = fetched_channel(settings.max_prefetch_batches, &settings.metrics);
    let fetcher = Fetcher {
        get_records_time: settings.metrics.histogram(crate::metrics::GET_RECORDS_TIME),
        get_records_success: settings
            .metrics
            .histogram(crate::metrics::GET_RECORDS_SUCCESS),
        get_shard_iterator_time: settings
            .metrics
            .histogram(crate::metrics::GET_SHARD_ITERATOR_TIME),
        get_shard_iterator_success: settings
            .metrics
            .histogram(crate::metrics::GET_SHARD_ITERATOR_SUCCESS),
        client,
        stream,
        shard_id,
        start,
        deaggregator,
        settings,
        last_read: None,
    };
    (rx, tokio::spawn(fetcher.run(tx)))
}

struct Fetcher {
    client: Client,
    stream: StreamRef,
    shard_id: String,
    start: Checkpoint,
    deaggregator: Deaggregator,
    settings: FetcherSettings,
    /// Sequence number of the last Kinesis record read (whole aggregate).
    last_read: Option<String>,
    /// The duration of each GetRecords call, in ms.
    get_records_time: metrics::Histogram,
    /// 1 for each GetRecords call that succeeded, 0 for each that failed (the KCL's `Success`).
    get_records_success: metrics::Histogram,
    /// The same for GetShardIterator.
    get_shard_iterator_time: metrics::Histogram,
    get_shard_iterator_success: metrics::Histogram,
}

impl Fetcher {
    async fn run(mut self, tx: FetchedSender) {
        let mut backoff = super::backoff(Duration::from_millis(200), Duration::from_secs(10));
        let mut iterator: Option<String> = None;
        // Whether the current iterator replaces one GetRecords refused as invalid; refused again,
        // the error is final.
        let mut refreshed = false;
        loop {
            if tx.is_closed() {
                return;
            }
            let current = match iterator.take() {
                Some(it) => it,
                None => match self.iterator().await {
                    Ok(it) => it,
                    Err(e) if e.is_non_retryable_read() => {
                        tx.send(Fetched::Failed(e)).await;
                        return;
                    }
                    Err(e) if e.is_not_found() => {
                        if let Some(gone) = self.stream_gone().await {
                            tx.send(Fetched::Failed(gone)).await;
                            return;
                        }
                        // The shard is gone: closed and past retention. Like the Java KCL,
                        // treat it as its end, so the lease is finished and its children
                        // (which shard sync finds) can start instead of waiting forever.
                        tracing::warn!(shard = %self.shard_id, "shard no longer exists; treating it as ended");
                        tx.send(Fetched::ShardEnd {
                            children: Vec::new(),
                        })
                        .await;
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(shard = %self.shard_id, error = %e, "GetShardIterator failed");
                        tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(1))).await;
                        continue;
                    }
                },
            };
            let started = std::time::Instant::now();
            let out = error::kinesis_call(
                self.settings.timeout,
                "GetRecords",
                self.client
                    .get_records()
                    .shard_iterator(&current)
                    .limit(self.settings.max_records)
                    .send(),
            )
            .await;
            self.get_records_time
                .record(started.elapsed().as_secs_f64() * 1000.0);
            self.get_records_success
                .record(if out.is_ok() { 1.0 } else { 0.0 });
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    if e.is_expired_iterator() {
                        // A fresh iterator after the last record read (or at the checkpoint).
                        self.settings
                            .metrics
                            .counter(crate::metrics::EXPIRED_ITERATOR)
                            .increment(1);
                        tracing::info!(shard = %self.shard_id, "shard iterator expired");
                        continue;
                    }
                    let code = match &e {
                        crate::Error::Kinesis { code, .. } => code.as_deref(),
                        _ => None,
                    };
                    if e.is_not_found()
                        || (code == Some("InvalidArgumentException")
                            && !std::mem::take(&mut refreshed))
                    {
                        // The shard or the stream is gone, or the iterator is refused: a fresh
                        // iterator tells which (GetShardIterator fails for good then).
                        tracing::warn!(shard = %self.shard_id, error = %e, "GetRecords failed; getting a new iterator");
                        refreshed = code == Some("InvalidArgumentException");
                        tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(1))).await;
                        continue;
                    }
                    if e.is_non_retryable_read() {
                        tx.send(Fetched::Failed(e)).await;
                        return;
                    }
                    if !e.is_throttling() {
                        tracing::warn!(shard = %self.shard_id, error = %e, "GetRecords failed");
                    }
                    iterator = Some(current);
                    tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(1))).await;
                    continue;
                }
            };
            backoff = super::backoff(Duration::from_millis(200), Duration::from_secs(10));
            refreshed = false;
            let records = self.user_records(out.records).await;
            let empty = records.is_empty();
            if (!empty || out.next_shard_iterator.is_some())
                && !tx
                    .send(Fetched::Batch {
                        records,
                        millis_behind_latest: out.millis_behind_latest,
                    })
                    .await
            {
                return;
            }
            match out.next_shard_iterator {
                Some(next) => iterator = Some(next),
                None => {
                    let children = out.child_shards.unwrap_or_default();
                    tx.send(Fetched::ShardEnd { children }).await;
                    return;
                }
            }
            if empty {
                tokio::time::sleep(self.settings.idle_time_between_reads).await;
            }
        }
    }

    async fn stream_gone(&self) -> Option<crate::Error> {
        super::stream_gone(&self.client, &self.stream, self.settings.timeout).await
    }

    async fn iterator(&self) -> Result<String> {
        let request = self
            .client
            .get_shard_iterator()
            .set_stream_name(self.stream.name())
            .set_stream_arn(self.stream.arn())
            .shard_id(&self.shard_id);
        let request = match (&self.last_read, &self.start) {
            (Some(seq), _) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            (None, Checkpoint::Sequence(s)) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(&s.sequence),
            (None, Checkpoint::Latest) => request.shard_iterator_type(ShardIteratorType::Latest),
            (None, Checkpoint::AtTimestamp) => match self.settings.timestamp {
                Some(t) => request
                    .shard_iterator_type(ShardIteratorType::AtTimestamp)
                    .timestamp(DateTime::from(t)),
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            },
            (None, _) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let started = std::time::Instant::now();
        let out =
            error::kinesis_call(self.settings.timeout, "GetShardIterator", request.send()).await;
        self.get_shard_iterator_time
            .record(started.elapsed().as_secs_f64() * 1000.0);
        self.get_shard_iterator_success
            .record(if out.is_ok() { 1.0 } else { 0.0 });
        let out = out?;
        out.shard_iterator.ok_or_else(|| crate::Error::Kinesis {
            op: "GetShardIterator",
            code: None,
            message: "no iterator in the answer".into(),
            retryable: true,
        })
    }

    /// Deaggregates, drops what the checkpoint already covers, remembers the read position.
    async fn user_records(&mut self, records: Vec<aws_sdk_kinesis::types::Record>) -> Vec<Record> {
        if let Some(last) = records.last() {
            self.last_read = Some(last.sequence_number.clone());
        }
        self.deaggregator
            .user_records(records, self.start.sequence())
            .await
    }
}

//! The worker's metrics: the KCL's names and levels, labelled with the application (and the
//! stream and shard, or the worker, where they apply; the KCL's CloudWatch dimensions).
//!
//! Every metric goes through the [`metrics`] facade, so any recorder installed in the process
//! (Prometheus, CloudWatch, a test's) receives them. [`MetricsLevel`] decides which are
//! emitted, as the KCL's `MetricsConfig.metricsLevel`. The full list, with labels and levels,
//! is in `docs/metrics.md`.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Label};

/// Which metrics are emitted (the KCL's `MetricsLevel`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricsLevel {
    /// No metrics at all.
    None,
    /// Progress, lag, lease counts and errors (RecordsProcessed, MillisBehindLatest,
    /// CurrentLeases, LostLeases, ProcessRecordsFailures, ...).
    Summary,
    /// Everything (the KCL's default).
    #[default]
    Detailed,
}

/// A metric's name and the lowest level that emits it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Metric {
    name: &'static str,
    level: MetricsLevel,
}

const fn metric(name: &'static str, level: MetricsLevel) -> Metric {
    Metric { name, level }
}

use MetricsLevel::{Detailed, Summary};

// Per shard: labels application, stream, shard.
pub(crate) const RECORDS_PROCESSED: Metric = metric("RecordsProcessed", Summary);
pub(crate) const DATA_BYTES_PROCESSED: Metric = metric("DataBytesProcessed", Summary);
pub(crate) const MILLIS_BEHIND_LATEST: Metric = metric("MillisBehindLatest", Summary);
pub(crate) const PROCESS_RECORDS_TIME: Metric =
    metric("RecordProcessor.processRecords.Time", Summary);
pub(crate) const PROCESS_RECORDS_FAILURES: Metric = metric("ProcessRecordsFailures", Summary);
pub(crate) const PROCESSING_TIMEOUTS: Metric = metric("ProcessingTimeouts", Summary);
pub(crate) const BISECTED_BATCHES: Metric = metric("BisectedBatches", Detailed);
pub(crate) const RECORDS_GIVEN_UP: Metric = metric("RecordsGivenUp", Summary);
pub(crate) const FAILURE_SINK_ERRORS: Metric = metric("FailureSinkErrors", Summary);
pub(crate) const READ_FAILURES: Metric = metric("ReadFailures.NonRetryable", Summary);
pub(crate) const EXPIRED_ITERATOR: Metric = metric("ExpiredIterator", Summary);
pub(crate) const RECORDS_BUFFERED: Metric = metric("RecordsBuffered", Detailed);
pub(crate) const SUBSCRIBE_SUCCESS: Metric = metric("SubscribeToShard.Success", Detailed);
pub(crate) const SUBSCRIBE_FAILURE: Metric = metric("SubscribeToShard.Failure", Detailed);
pub(crate) const SUBSCRIBE_SILENT: Metric = metric("SubscribeToShard.Silent", Detailed);
pub(crate) const CONSUMER_REREGISTRATIONS: Metric = metric("ConsumerReregistrations", Summary);
pub(crate) const AGGREGATED_RECORDS_DROPPED: Metric = metric("AggregatedRecordsDropped", Summary);
pub(crate) const INITIALIZE_TIME: Metric = metric("RecordProcessor.initialize.Time", Summary);
pub(crate) const SHUTDOWN_TIME: Metric = metric("RecordProcessor.shutdown.Time", Summary);
pub(crate) const GET_RECORDS_TIME: Metric = metric("KinesisDataFetcher.getRecords.Time", Detailed);
pub(crate) const GET_RECORDS_SUCCESS: Metric =
    metric("KinesisDataFetcher.getRecords.Success", Detailed);
pub(crate) const GET_SHARD_ITERATOR_TIME: Metric =
    metric("KinesisDataFetcher.getShardIterator.Time", Detailed);
pub(crate) const GET_SHARD_ITERATOR_SUCCESS: Metric =
    metric("KinesisDataFetcher.getShardIterator.Success", Detailed);

// Per worker: labels application, worker.
pub(crate) const CURRENT_LEASES: Metric = metric("CurrentLeases", Summary);
pub(crate) const TAKEN_LEASES: Metric = metric("TakenLeases", Summary);
pub(crate) const STOLEN_LEASES: Metric = metric("StolenLeases", Summary);
pub(crate) const LOST_LEASES: Metric = metric("LostLeases", Summary);
pub(crate) const UNTAKEN_LEASES: Metric = metric("UntakenLeases", Summary);
pub(crate) const HANDOFFS_INITIATED: Metric = metric("HandoffsInitiated", Detailed);
pub(crate) const HANDOFFS_REQUESTED: Metric = metric("HandoffsRequested", Detailed);
pub(crate) const NUM_WORKERS: Metric = metric("NumWorkers", Summary);
pub(crate) const TOTAL_LEASES: Metric = metric("TotalLeases", Detailed);
pub(crate) const EXPIRED_LEASES: Metric = metric("ExpiredLeases", Summary);
pub(crate) const NEEDED_LEASES: Metric = metric("NeededLeases", Detailed);
pub(crate) const LEASES_TO_TAKE: Metric = metric("LeasesToTake", Detailed);
pub(crate) const ACTIVE_STREAMS: Metric = metric("ActiveStreams.Count", Summary);
pub(crate) const STREAMS_PENDING_DELETION: Metric = metric("StreamsPendingDeletion.Count", Summary);
pub(crate) const DELETED_STREAMS: Metric = metric("DeletedStreams.Count", Summary);
pub(crate) const LEASE_SPILLOVER: Metric = metric("LeaseSpillover", Summary);

/// A label set (application, then stream and shard or worker) and the level: what every
/// metric of one part of the worker is emitted with.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    level: MetricsLevel,
    labels: Arc<[Label]>,
}

impl Scope {
    /// The scope of application `application`.
    pub(crate) fn application(application: &str, level: MetricsLevel) -> Self {
        Self {
            level,
            labels: Arc::new([Label::new("application", application.to_owned())]),
        }
    }

    /// A scope emitting nothing (for tests of the worker's parts).
    #[cfg(test)]
    pub(crate) fn disabled() -> Self {
        Self::application("test", MetricsLevel::None)
    }

    fn with(&self, more: &[(&'static str, &str)]) -> Self {
        let mut labels = self.labels.to_vec();
        labels.extend(more.iter().map(|(k, v)| Label::new(*k, (*v).to_owned())));
        Self {
            level: self.level,
            labels: labels.into(),
        }
    }

    /// The scope of one shard of `stream` (a name, an ARN or a multi-stream identifier: the
    /// label is the stream's name).
    pub(crate) fn shard(&self, stream: &str, shard: &str) -> Self {
        self.with(&[("stream", stream_name(stream)), ("shard", shard)])
    }

    /// The scope of worker `worker`.
    pub(crate) fn worker(&self, worker: &str) -> Self {
        self.with(&[("worker", worker)])
    }

    /// A counter, or a no-op one above the level.
    pub(crate) fn counter(&self, m: Metric) -> Counter {
        if self.level >= m.level {
            metrics::counter!(m.name, self.labels.to_vec())
        } else {
            Counter::noop()
        }
    }

    /// A gauge, or a no-op one above the level.
    pub(crate) fn gauge(&self, m: Metric) -> Gauge {
        if self.level >= m.level {
            metrics::gauge!(m.name, self.labels.to_vec())
        } else {
            Gauge::noop()
        }
    }

    /// A histogram, or a no-op one above the level.
    pub(crate) fn histogram(&self, m: Metric) -> Histogram {
        if self.level >= m.level {
            metrics::histogram!(m.name, self.labels.to_vec())
        } else {
            Histogram::noop()
        }
    }
}

/// One shard's consumer's metric handles, registered when the consumer starts rather than
/// looked up for each batch.
#[derive(Clone, Debug)]
pub(crate) struct ShardMetrics {
    pub(crate) records_processed: Counter,
    pub(crate) data_bytes_processed: Counter,
    pub(crate) millis_behind_latest: Gauge,
    pub(crate) process_records_time: Histogram,
    pub(crate) process_records_failures: Counter,
    pub(crate) processing_timeouts: Counter,
    pub(crate) bisected_batches: Counter,
    pub(crate) records_given_up: Counter,
    pub(crate) failure_sink_errors: Counter,
    pub(crate) read_failures: Counter,
    pub(crate) initialize_time: Histogram,
    pub(crate) shutdown_time: Histogram,
    pub(crate) aggregated_records_dropped: Counter,
}

impl ShardMetrics {
    /// The handles of the shard of `scope` (see [`Scope::shard`]).
    pub(crate) fn register(scope: &Scope) -> Self {
        Self {
            records_processed: scope.counter(RECORDS_PROCESSED),
            data_bytes_processed: scope.counter(DATA_BYTES_PROCESSED),
            millis_behind_latest: scope.gauge(MILLIS_BEHIND_LATEST),
            process_records_time: scope.histogram(PROCESS_RECORDS_TIME),
            process_records_failures: scope.counter(PROCESS_RECORDS_FAILURES),
            processing_timeouts: scope.counter(PROCESSING_TIMEOUTS),
            bisected_batches: scope.counter(BISECTED_BATCHES),
            records_given_up: scope.counter(RECORDS_GIVEN_UP),
            failure_sink_errors: scope.counter(FAILURE_SINK_ERRORS),
            read_failures: scope.counter(READ_FAILURES),
            initialize_time: scope.histogram(INITIALIZE_TIME),
            shutdown_time: scope.histogram(SHUTDOWN_TIME),
            aggregated_records_dropped: scope.counter(AGGREGATED_RECORDS_DROPPED),
        }
    }
}

/// The stream's name in a name, an ARN (`arn:...:stream/NAME`) or a multi-stream identifier
/// (`account:NAME:epoch`).
fn stream_name(stream: &str) -> &str {
    if stream.starts_with("arn:") {
        return stream.rsplit('/').next().unwrap_or(stream);
    }
    match stream.split(':').collect::<Vec<_>>()[..] {
        [_, name, _] => name,
        _ => stream,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_labelled_by_name() {
        assert_eq!(stream_name("orders"), "orders");
        assert_eq!(
            stream_name("arn:aws:kinesis:us-east-1:123456789012:stream/orders"),
            "orders"
        );
        assert_eq!(stream_name("123456789012:orders:1700000000"), "orders");
    }

    #[test]
    fn levels_are_ordered_as_in_the_kcl() {
        assert!(MetricsLevel::None < MetricsLevel::Summary);
        assert!(MetricsLevel::Summary < MetricsLevel::Detailed);
        assert_eq!(MetricsLevel::default(), MetricsLevel::Detailed);
    }
}

//! The producer's metrics: the KPL's names and levels, labelled with the stream (and the shard).
//!
//! Every metric goes through the [`metrics`] facade, so any recorder installed in the process
//! (Prometheus, CloudWatch, a test's) receives them. Each carries the label `stream`; at
//! [`MetricsGranularity::Shard`] (the default, as in the KPL) the metrics the KPL keeps per shard
//! carry `shard` too. [`MetricsLevel`] decides which are emitted, as the KPL's `MetricsLevel`.
//!
//! Handles are registered when the producer starts, so install the recorder before creating
//! producers. The full list, with labels and levels, is in `docs/metrics.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Label, SharedString};

/// Which metrics are emitted (the KPL's `MetricsLevel`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricsLevel {
    /// No metrics at all.
    None,
    /// The main counts and errors: UserRecordsPut, KinesisRecordsPut, AllErrors, ErrorsByCode,
    /// UserRecordExpired, BufferingTime.
    Summary,
    /// Everything (the KPL's default).
    #[default]
    Detailed,
}

/// How finely metrics are labelled (the KPL's `MetricsGranularity`, without `global`: every
/// metric names its stream, and a sum over `stream` gives the global figure).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MetricsGranularity {
    /// Label `stream` only.
    Stream,
    /// Label `stream`, and `shard` on the metrics the KPL keeps per shard (the KPL's default).
    #[default]
    Shard,
}

/// A metric's name and the lowest level that emits it.
#[derive(Clone, Copy, Debug)]
struct Metric {
    name: &'static str,
    level: MetricsLevel,
}

const fn metric(name: &'static str, level: MetricsLevel) -> Metric {
    Metric { name, level }
}

use MetricsLevel::{Detailed, Summary};

const USER_RECORDS_RECEIVED: Metric = metric("UserRecordsReceived", Detailed);
const USER_RECORDS_PENDING: Metric = metric("UserRecordsPending", Detailed);
const USER_RECORDS_PUT: Metric = metric("UserRecordsPut", Summary);
const USER_RECORDS_DATA_PUT: Metric = metric("UserRecordsDataPut", Detailed);
const KINESIS_RECORDS_PUT: Metric = metric("KinesisRecordsPut", Summary);
const KINESIS_RECORDS_DATA_PUT: Metric = metric("KinesisRecordsDataPut", Detailed);
const ERRORS_BY_CODE: Metric = metric("ErrorsByCode", Summary);
const ALL_ERRORS: Metric = metric("AllErrors", Summary);
const RETRIES_PER_RECORD: Metric = metric("RetriesPerRecord", Detailed);
const USER_RECORD_EXPIRED: Metric = metric("UserRecordExpired", Summary);
const BUFFERING_TIME: Metric = metric("BufferingTime", Summary);
const REQUEST_TIME: Metric = metric("RequestTime", Detailed);
const USER_RECORDS_PER_KINESIS_RECORD: Metric = metric("UserRecordsPerKinesisRecord", Detailed);
const KINESIS_RECORDS_PER_PUT_RECORDS_REQUEST: Metric =
    metric("KinesisRecordsPerPutRecordsRequest", Detailed);
const USER_RECORDS_PER_PUT_RECORDS_REQUEST: Metric =
    metric("UserRecordsPerPutRecordsRequest", Detailed);

/// Registers handles for one label set, emitting nothing for metrics above `level`.
#[derive(Debug)]
struct Registrar<'a> {
    level: MetricsLevel,
    labels: &'a [Label],
}

impl Registrar<'_> {
    fn counter(&self, m: Metric) -> Counter {
        if self.level >= m.level {
            metrics::counter!(m.name, self.labels.to_vec())
        } else {
            Counter::noop()
        }
    }

    fn gauge(&self, m: Metric) -> Gauge {
        if self.level >= m.level {
            metrics::gauge!(m.name, self.labels.to_vec())
        } else {
            Gauge::noop()
        }
    }

    fn histogram(&self, m: Metric) -> Histogram {
        if self.level >= m.level {
            metrics::histogram!(m.name, self.labels.to_vec())
        } else {
            Histogram::noop()
        }
    }
}

/// The metrics the KPL keeps per shard, for one shard (or for the stream, at stream
/// granularity).
#[derive(Debug)]
pub(crate) struct ShardMetrics {
    pub(crate) user_records_put: Counter,
    pub(crate) user_records_data_put: Counter,
    pub(crate) retries_per_record: Histogram,
    pub(crate) kinesis_records_put: Counter,
    pub(crate) kinesis_records_data_put: Counter,
    pub(crate) user_records_per_kinesis_record: Histogram,
}

impl ShardMetrics {
    fn register(r: &Registrar<'_>) -> Self {
        Self {
            user_records_put: r.counter(USER_RECORDS_PUT),
            user_records_data_put: r.counter(USER_RECORDS_DATA_PUT),
            retries_per_record: r.histogram(RETRIES_PER_RECORD),
            kinesis_records_put: r.counter(KINESIS_RECORDS_PUT),
            kinesis_records_data_put: r.counter(KINESIS_RECORDS_DATA_PUT),
            user_records_per_kinesis_record: r.histogram(USER_RECORDS_PER_KINESIS_RECORD),
        }
    }
}

/// One producer's metric handles, labelled with its stream.
#[derive(Debug)]
pub(crate) struct ProducerMetrics {
    level: MetricsLevel,
    granularity: MetricsGranularity,
    stream: SharedString,
    pub(crate) user_records_received: Counter,
    /// User records put and not yet settled (delivered or failed): buffered, in flight or
    /// waiting for a retry. The KPL samples this every 200 ms; here it moves with each record.
    pub(crate) user_records_pending: Gauge,
    pub(crate) all_errors: Counter,
    pub(crate) user_record_expired: Counter,
    pub(crate) buffering_time: Histogram,
    pub(crate) request_time: Histogram,
    pub(crate) kinesis_records_per_put_records_request: Histogram,
    pub(crate) user_records_per_put_records_request: Histogram,
    /// The per-shard metrics at stream granularity.
    whole_stream: Arc<ShardMetrics>,
    /// The per-shard metrics of each shard seen, at shard granularity.
    shards: Mutex<HashMap<String, Arc<ShardMetrics>>>,
}

impl ProducerMetrics {
    /// Registers the handles of a producer writing to `stream`.
    pub(crate) fn new(
        stream: &str,
        level: MetricsLevel,
        granularity: MetricsGranularity,
    ) -> Arc<Self> {
        let stream = SharedString::from(Arc::<str>::from(stream));
        let labels = [Label::new("stream", stream.clone())];
        let r = Registrar {
            level,
            labels: &labels,
        };
        Arc::new(Self {
            level,
            granularity,
            user_records_received: r.counter(USER_RECORDS_RECEIVED),
            user_records_pending: r.gauge(USER_RECORDS_PENDING),
            all_errors: r.counter(ALL_ERRORS),
            user_record_expired: r.counter(USER_RECORD_EXPIRED),
            buffering_time: r.histogram(BUFFERING_TIME),
            request_time: r.histogram(REQUEST_TIME),
            kinesis_records_per_put_records_request: r
                .histogram(KINESIS_RECORDS_PER_PUT_RECORDS_REQUEST),
            user_records_per_put_records_request: r.histogram(USER_RECORDS_PER_PUT_RECORDS_REQUEST),
            // Registered only where used: an idle series without a shard would be misleading.
            whole_stream: Arc::new(ShardMetrics::register(&Registrar {
                level: match granularity {
                    MetricsGranularity::Stream => level,
                    MetricsGranularity::Shard => MetricsLevel::None,
                },
                labels: &labels,
            })),
            shards: Mutex::default(),
            stream,
        })
    }

    /// Handles that record nothing, for tests of the producer's parts.
    #[cfg(test)]
    pub(crate) fn disabled() -> Arc<Self> {
        Self::new("test", MetricsLevel::None, MetricsGranularity::Stream)
    }

    /// The per-shard metrics of `shard` (those of the stream at stream granularity).
    pub(crate) fn shard(&self, shard: &str) -> Arc<ShardMetrics> {
        if self.granularity == MetricsGranularity::Stream || self.level == MetricsLevel::None {
            return self.whole_stream.clone();
        }
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = shards.get(shard) {
            return found.clone();
        }
        let labels = [
            Label::new("stream", self.stream.clone()),
            Label::new("shard", shard.to_owned()),
        ];
        let r = Registrar {
            level: self.level,
            labels: &labels,
        };
        let registered = Arc::new(ShardMetrics::register(&r));
        shards.insert(shard.to_owned(), registered.clone());
        registered
    }

    /// Counts a failed attempt: AllErrors, and ErrorsByCode labelled with its `ErrorCode`.
    pub(crate) fn error(&self, code: &str) {
        self.all_errors.increment(1);
        if self.level >= ERRORS_BY_CODE.level {
            metrics::counter!(ERRORS_BY_CODE.name, "stream" => self.stream.clone(), "ErrorCode" => code.to_owned())
                .increment(1);
        }
    }
}

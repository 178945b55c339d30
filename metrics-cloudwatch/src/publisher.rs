//! The publisher: drains the recorder's cells every interval into CloudWatch data and sends
//! them in PutMetricData requests of at most [`MAX_DATA_PER_REQUEST`] data, each with a timeout.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::PublishError;
use crate::mapping;
use crate::recorder::{CloudWatchRecorder, Kind, Registry, Stats};

/// The most data CloudWatch accepts in one PutMetricData.
pub const MAX_DATA_PER_REQUEST: usize = 1000;

/// What one flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// PutMetricData requests that succeeded.
    pub requests: u64,
    /// Requests that failed (timed out, could not connect, or were refused).
    pub failed_requests: u64,
    /// Data CloudWatch accepted.
    pub data_sent: u64,
    /// Data given up: refused as invalid, or pushed out of the full buffer.
    pub data_dropped: u64,
    /// Data kept for the next flush after a transient failure.
    pub data_pending: u64,
}

/// Totals since the publisher started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// PutMetricData requests that succeeded.
    pub requests: u64,
    /// Requests that failed.
    pub failed_requests: u64,
    /// Data CloudWatch accepted.
    pub data_sent: u64,
    /// Data given up.
    pub data_dropped: u64,
    /// The most data one request carried.
    pub largest_request: u64,
    /// The last failure, if any.
    pub last_error: Option<PublishError>,
}

#[derive(Debug, Default)]
struct Totals {
    requests: AtomicU64,
    failed_requests: AtomicU64,
    data_sent: AtomicU64,
    data_dropped: AtomicU64,
    largest_request: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    client: Client,
    config: Config,
    registry: Arc<Registry>,
    /// Data waiting to be sent, oldest first; the lock also keeps flushes one at a time.
    pending: tokio::sync::Mutex<VecDeque<(String, MetricDatum)>>,
    totals: Totals,
    last_error: parking_lot::Mutex<Option<PublishError>>,
}

/// Publishes what its [`CloudWatchRecorder`] records to CloudWatch every
/// [`Config::interval`], until [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct CloudWatchPublisher {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl CloudWatchPublisher {
    /// Starts publishing with `client` (on the current Tokio runtime).
    pub fn start(client: Client, config: Config) -> Self {
        let shared = Arc::new(Shared {
            client,
            config,
            registry: Arc::new(Registry::default()),
            pending: tokio::sync::Mutex::new(VecDeque::new()),
            totals: Totals::default(),
            last_error: parking_lot::Mutex::new(None),
        });
        let (stop, mut stopped) = oneshot::channel();
        let every = shared.config.interval;
        let background = shared.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {
                        flush(&background).await;
                    }
                    _ = &mut stopped => return,
                }
            }
        });
        Self {
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The recorder to install; every clone feeds this publisher.
    pub fn recorder(&self) -> CloudWatchRecorder {
        CloudWatchRecorder {
            registry: self.shared.registry.clone(),
        }
    }

    /// Installs the recorder as the process-wide [`metrics`] recorder.
    ///
    /// # Errors
    /// If a global recorder is already installed.
    pub fn install(&self) -> Result<(), metrics::SetRecorderError<CloudWatchRecorder>> {
        metrics::set_global_recorder(self.recorder())
    }

    /// Sends what was recorded since the last flush (and any data kept from failed requests)
    /// now, without waiting for the interval.
    pub async fn flush(&self) -> FlushReport {
        flush(&self.shared).await
    }

    /// Totals since the start.
    pub fn stats(&self) -> PublisherStats {
        let totals = &self.shared.totals;
        PublisherStats {
            requests: totals.requests.load(Ordering::Relaxed),
            failed_requests: totals.failed_requests.load(Ordering::Relaxed),
            data_sent: totals.data_sent.load(Ordering::Relaxed),
            data_dropped: totals.data_dropped.load(Ordering::Relaxed),
            largest_request: totals.largest_request.load(Ordering::Relaxed),
            last_error: self.shared.last_error.lock().clone(),
        }
    }

    /// Stops the interval and flushes what is left, once; returns what that flush did.
    pub async fn shutdown(mut self) -> FlushReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        flush(&self.shared).await
    }
}

impl Drop for CloudWatchPublisher {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Drains the cells into data, then sends all pending data, namespace by namespace, in requests
/// of at most [`MAX_DATA_PER_REQUEST`]. After a transient failure the rest waits for the next
/// flush, so a dead endpoint costs one timeout per flush, not one per request.
async fn flush(shared: &Shared) -> FlushReport {
    let mut pending = shared.pending.lock().await;
    let mut report = FlushReport::default();
    pending.extend(collect(shared));
    report.data_dropped += trim(&mut pending, shared.config.max_buffered_data);

    let mut by_namespace: BTreeMap<String, Vec<MetricDatum>> = BTreeMap::new();
    for (namespace, datum) in pending.drain(..) {
        by_namespace.entry(namespace).or_default().push(datum);
    }
    let mut keep: VecDeque<(String, MetricDatum)> = VecDeque::new();
    let mut halted = false;
    for (namespace, data) in by_namespace {
        for chunk in data.chunks(MAX_DATA_PER_REQUEST) {
            if halted {
                keep.extend(chunk.iter().map(|d| (namespace.clone(), d.clone())));
                continue;
            }
            let count = chunk.len() as u64;
            match send(shared, &namespace, chunk).await {
                Ok(()) => {
                    report.requests += 1;
                    report.data_sent += count;
                    shared
                        .totals
                        .largest_request
                        .fetch_max(count, Ordering::Relaxed);
                }
                Err(error) => {
                    report.failed_requests += 1;
                    tracing::warn!(namespace, data = count, %error, "PutMetricData failed");
                    if error.is_retryable() {
                        halted = true;
                        keep.extend(chunk.iter().map(|d| (namespace.clone(), d.clone())));
                    } else {
                        report.data_dropped += count;
                    }
                    *shared.last_error.lock() = Some(error);
                }
            }
        }
    }
    report.data_dropped += trim(&mut keep, shared.config.max_buffered_data);
    report.data_pending = keep.len() as u64;
    *pending = keep;
    let totals = &shared.totals;
    totals
        .requests
        .fetch_add(report.requests, Ordering::Relaxed);
    totals
        .failed_requests
        .fetch_add(report.failed_requests, Ordering::Relaxed);
    totals
        .data_sent
        .fetch_add(report.data_sent, Ordering::Relaxed);
    totals
        .data_dropped
        .fetch_add(report.data_dropped, Ordering::Relaxed);
    if report.data_dropped > 0 {
        tracing::warn!(
            dropped = report.data_dropped,
            "CloudWatch metric data dropped"
        );
    }
    report
}

/// Drops the oldest data beyond `limit`; returns how many.
fn trim(pending: &mut VecDeque<(String, MetricDatum)>, limit: usize) -> u64 {
    let excess = pending.len().saturating_sub(limit);
    pending.drain(..excess);
    excess as u64
}

/// The data of one interval: each cell's samples, mapped to its targets and merged per target.
fn collect(shared: &Shared) -> Vec<(String, MetricDatum)> {
    type Series = (String, String, Vec<(String, String)>);
    let mut merged: BTreeMap<Series, (Stats, Option<&'static str>)> = BTreeMap::new();
    for (kind, key, cell) in shared.registry.cells() {
        let Some(stats) = cell.drain() else {
            continue;
        };
        let name = key.name();
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        let unit = mapping::unit(name, shared.registry.unit(name), kind == Kind::Counter);
        for target in mapping::targets(name, &labels, &shared.config) {
            let series = (target.namespace, name.to_owned(), target.dimensions);
            merged
                .entry(series)
                .and_modify(|(total, _)| *total = total.merge(stats))
                .or_insert((stats, unit));
        }
    }
    let now = DateTime::from(SystemTime::now());
    merged
        .into_iter()
        .map(|((namespace, name, dimensions), (stats, unit))| {
            let dimensions = dimensions
                .into_iter()
                .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                .collect();
            let datum = MetricDatum::builder()
                .metric_name(name)
                .set_dimensions(Some(dimensions))
                .timestamp(now)
                .statistic_values(
                    StatisticSet::builder()
                        .sample_count(stats.count)
                        .sum(stats.sum)
                        .minimum(stats.min)
                        .maximum(stats.max)
                        .build(),
                )
                .set_unit(unit.map(StandardUnit::from))
                .build();
            (namespace, datum)
        })
        .collect()
}

async fn send(shared: &Shared, namespace: &str, data: &[MetricDatum]) -> Result<(), PublishError> {
    let timeout = shared.config.request_timeout;
    let request = shared
        .client
        .put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data.to_vec()))
        .send();
    match tokio::time::timeout(timeout, request).await {
        Err(_) => Err(PublishError::Timeout(timeout)),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(SdkError::ServiceError(failure))) => {
            let status = failure.raw().status().as_u16();
            let error = failure.err();
            let code = error.code().unwrap_or("Unknown").to_owned();
            Err(PublishError::Refused {
                transient: status >= 500 || status == 429 || code.contains("Throttl"),
                message: error.message().unwrap_or_default().to_owned(),
                code,
            })
        }
        Ok(Err(other)) => Err(PublishError::Transport(
            DisplayErrorContext(&other).to_string(),
        )),
    }
}

//! The data points the engine keeps, per series, for a while.
//!
//! A series is a namespace, a metric name and a dimension set. Each keeps its points of the last
//! [`RETENTION_MS`] (by their timestamps, against the engine clock) and at most
//! [`MAX_POINTS_PER_SERIES`] of them; at most [`MAX_SERIES`] series are kept, the one updated
//! longest ago making room for a new one. So memory stays bounded whatever clients send.

use std::collections::{HashMap, VecDeque};

use super::model::{PutMetricData, Statistics};

/// How long points are kept: one hour.
pub const RETENTION_MS: i64 = 3_600_000;
/// The most points kept per series.
pub const MAX_POINTS_PER_SERIES: usize = 1_000;
/// The most series kept.
pub const MAX_SERIES: usize = 10_000;

/// A series' identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    namespace: String,
    metric_name: String,
    dimensions: Vec<(String, String)>,
}

/// One stored point.
#[derive(Debug, Clone, Copy)]
struct Point {
    timestamp_ms: i64,
    statistics: Statistics,
}

#[derive(Debug)]
struct Series {
    unit: Option<String>,
    storage_resolution: u32,
    points: VecDeque<Point>,
    /// When the series last received a point (engine clock), for eviction.
    updated_ms: i64,
}

/// What the engine holds of one series: see [`crate::EngineHandle::cloudwatch_series`].
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSnapshot {
    /// The namespace (`KinesisProducerLibrary`, a KCL application name, ...).
    pub namespace: String,
    /// The metric name.
    pub metric_name: String,
    /// The dimensions, sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// The unit of the latest point, if one was given.
    pub unit: Option<String>,
    /// 1 (high resolution) or 60 (standard), as the latest point asked.
    pub storage_resolution: u32,
    /// How many points are kept.
    pub points: usize,
    /// The statistics of the latest point (by timestamp).
    pub latest: Statistics,
    /// The timestamp of the latest point, epoch milliseconds.
    pub latest_timestamp_ms: i64,
    /// The statistics of every kept point together.
    pub total: Statistics,
}

impl SeriesSnapshot {
    /// The value of the dimension `name`, if the series has it.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One series' unit and points (epoch milliseconds, statistics), oldest first.
#[derive(Debug)]
pub(crate) struct SeriesPoints {
    pub(crate) unit: Option<String>,
    pub(crate) points: Vec<(i64, Statistics)>,
}

/// The series and their points.
#[derive(Debug, Default)]
pub(crate) struct Store {
    series: HashMap<Key, Series>,
}

impl Store {
    /// Adds the data of one PutMetricData, received at `now_ms`.
    pub(crate) fn put(&mut self, request: PutMetricData, now_ms: i64) {
        for datum in request.data {
            if datum.statistics.sample_count == 0.0 {
                continue;
            }
            let key = Key {
                namespace: request.namespace.clone(),
                metric_name: datum.metric_name,
                dimensions: datum.dimensions,
            };
            if !self.series.contains_key(&key) && self.series.len() >= MAX_SERIES {
                self.evict_one();
            }
            let series = self.series.entry(key).or_insert_with(|| Series {
                unit: None,
                storage_resolution: 60,
                points: VecDeque::new(),
                updated_ms: now_ms,
            });
            series.unit = datum.unit.or(series.unit.take());
            series.storage_resolution = datum.storage_resolution;
            series.updated_ms = now_ms;
            let point = Point {
                timestamp_ms: datum.timestamp_ms.unwrap_or(now_ms),
                statistics: datum.statistics,
            };
            // Points usually come in time order; keep them sorted when they do not.
            let at = series
                .points
                .iter()
                .rposition(|p| p.timestamp_ms <= point.timestamp_ms)
                .map_or(0, |i| i + 1);
            series.points.insert(at, point);
            while series.points.len() > MAX_POINTS_PER_SERIES {
                series.points.pop_front();
            }
        }
        self.prune(now_ms);
    }

    /// Drops points older than the retention, and series left without points.
    pub(crate) fn prune(&mut self, now_ms: i64) {
        let oldest = now_ms.saturating_sub(RETENTION_MS);
        self.series.retain(|_, series| {
            while series
                .points
                .front()
                .is_some_and(|p| p.timestamp_ms < oldest)
            {
                series.points.pop_front();
            }
            !series.points.is_empty()
        });
    }

    fn evict_one(&mut self) {
        let stalest = self
            .series
            .iter()
            .min_by_key(|(_, s)| s.updated_ms)
            .map(|(k, _)| k.clone());
        if let Some(key) = stalest {
            self.series.remove(&key);
        }
    }

    /// The unit and points of the series with exactly these dimensions (sorted by name).
    pub(crate) fn points(
        &self,
        namespace: &str,
        metric_name: &str,
        dimensions: &[(String, String)],
    ) -> Option<SeriesPoints> {
        let key = Key {
            namespace: namespace.to_owned(),
            metric_name: metric_name.to_owned(),
            dimensions: dimensions.to_vec(),
        };
        let series = self.series.get(&key)?;
        let points = series
            .points
            .iter()
            .map(|p| (p.timestamp_ms, p.statistics))
            .collect();
        Some(SeriesPoints {
            unit: series.unit.clone(),
            points,
        })
    }

    /// Every series, sorted by namespace, metric name and dimensions.
    pub(crate) fn snapshot(&self) -> Vec<SeriesSnapshot> {
        let mut keys: Vec<&Key> = self.series.keys().collect();
        keys.sort();
        keys.into_iter()
            .filter_map(|key| {
                let series = &self.series[key];
                let latest = series.points.back()?;
                let total = series
                    .points
                    .iter()
                    .map(|p| p.statistics)
                    .reduce(Statistics::merge)?;
                Some(SeriesSnapshot {
                    namespace: key.namespace.clone(),
                    metric_name: key.metric_name.clone(),
                    dimensions: key.dimensions.clone(),
                    unit: series.unit.clone(),
                    storage_resolution: series.storage_resolution,
                    points: series.points.len(),
                    latest: latest.statistics,
                    latest_timestamp_ms: latest.timestamp_ms,
                    total,
                })
            })
            .collect()
    }
}

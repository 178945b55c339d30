//! The publisher's settings.

use std::time::Duration;

/// The levels at which KPL metrics are published, as the KPL's `MetricsGranularity`: each
/// level includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Granularity {
    /// Only across all streams (no `StreamName` or `ShardId` dimension).
    Global,
    /// Also per stream (`StreamName`).
    Stream,
    /// Also per shard (`StreamName`, `ShardId`): the KPL's default.
    Shard,
}

/// How and where the publisher sends metrics.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often the recorded metrics are aggregated and sent (the KPL's `MetricsUploadDelay`,
    /// 60 s by default).
    pub interval: Duration,
    /// The longest one PutMetricData may take, retries included.
    pub request_timeout: Duration,
    /// The most data kept waiting to be sent (after failed requests); beyond it the oldest are
    /// dropped.
    pub max_buffered_data: usize,
    /// The namespace of KPL metrics.
    pub kpl_namespace: String,
    /// The levels KPL metrics are published at.
    pub granularity: Granularity,
    /// The KCL application (namespace) for metrics without an `application` label; `None`
    /// sends them to the KPL namespace.
    pub default_application: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            max_buffered_data: 10_000,
            kpl_namespace: "KinesisProducerLibrary".to_owned(),
            granularity: Granularity::Shard,
            default_application: None,
        }
    }
}

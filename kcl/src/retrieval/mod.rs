//! Reading shards: polling with GetRecords, prefetching a bounded number of batches.

mod polling;

pub(crate) use polling::{Fetched, FetcherSettings, spawn_fetcher};

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

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

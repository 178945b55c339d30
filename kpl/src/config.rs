//! Producer configuration, named and defaulted after the KPL's options.
//!
//! | field | KPL option | default | range |
//! |---|---|---|---|
//! | `record_max_buffered_time` | RecordMaxBufferedTime | 100 ms | any |
//! | `record_ttl` | RecordTtl | 30 s | ≥ 100 ms |
//! | `aggregation_enabled` | AggregationEnabled | true | |
//! | `aggregation_max_count` | AggregationMaxCount | 4,294,967,295 | ≥ 1 |
//! | `aggregation_max_size` | AggregationMaxSize | 51,200 B | 64 B – 1 MiB |
//! | `collection_max_count` | CollectionMaxCount | 500 | 1 – 500 |
//! | `collection_max_size` | CollectionMaxSize | 5 MiB | 52,224 B – 10 MiB |
//! | `rate_limit` | RateLimit | 150 (% of a shard's limits) | 1 – 1000 |
//! | `fail_if_throttled` | FailIfThrottled | false | |
//! | `max_connections` | MaxConnections | 24 | 1 – 256 |
//! | `request_timeout` | RequestTimeout | 6 s | ≥ 100 ms |
//! | `max_outstanding_records` | (new) | 100,000 | ≥ 1 |
//! | `max_outstanding_bytes` | (new) | 256 MiB | ≥ 1 MiB; bigger records are refused |
//! | `preserve_order` | (new) | false | |
//! | `retry_min_delay` / `retry_max_delay` | (new) | 100 ms / 5 s | min ≤ max |
//! | `metrics_level` | MetricsLevel | detailed | none, summary, detailed |
//! | `metrics_granularity` | MetricsGranularity | shard | stream, shard |
//!
//! `rate_limit` keeps the KPL's meaning: each shard's token buckets refill at that percentage
//! of 1,000 records/s and 1 MiB/s; above 100 the producer lets Kinesis throttle the excess and
//! retries it, which the KPL's authors found gives the best throughput.

use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::ConfigError;
use crate::metrics::{MetricsGranularity, MetricsLevel};

/// How the producer buffers, batches, limits and retries. Build with `..Config::default()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Longest a user record waits in buffers before it is sent.
    pub record_max_buffered_time: Duration,
    /// Longest a user record may take to be delivered, retries included; then it fails with
    /// [`PutError::Expired`](crate::PutError::Expired).
    pub record_ttl: Duration,
    /// Pack user records bound for the same shard into KPL aggregates.
    pub aggregation_enabled: bool,
    /// Most user records in one aggregate.
    pub aggregation_max_count: u64,
    /// Most bytes in one aggregate; a bigger user record is sent on its own.
    pub aggregation_max_size: usize,
    /// Most Kinesis records in one PutRecords call.
    pub collection_max_count: usize,
    /// Most bytes (data plus partition keys) in one PutRecords call.
    pub collection_max_size: usize,
    /// Per-shard sending rate, as a percentage of the shard's write limits.
    pub rate_limit: u32,
    /// Fail a throttled record at once instead of retrying it.
    pub fail_if_throttled: bool,
    /// Most PutRecords calls in flight.
    pub max_connections: usize,
    /// Time after which a PutRecords call is abandoned and its records retried (a call that
    /// timed out may still have succeeded, which gives duplicates, as with the KPL).
    pub request_timeout: Duration,
    /// Most user records buffered or in flight; `put` waits and `try_put` fails beyond it.
    pub max_outstanding_records: usize,
    /// Most bytes of user records buffered or in flight. A record bigger than this is refused
    /// with [`PutError::LargerThanBuffer`](crate::PutError::LargerThanBuffer): keep it at least
    /// the stream's maximum record size to accept every record the stream does.
    pub max_outstanding_bytes: usize,
    /// Keep records with the same partition key in order even across retries and resharding,
    /// by having at most one Kinesis record in flight per shard (slower). When some records of
    /// an aggregate expire, they fail and the rest keep their place, ahead of newer records.
    /// Without it, a retried record can land after newer records of its key, as with the KPL.
    pub preserve_order: bool,
    /// First retry delay; later ones grow exponentially, with jitter.
    pub retry_min_delay: Duration,
    /// Longest retry delay.
    pub retry_max_delay: Duration,
    /// Which metrics are emitted (see [`MetricsLevel`]).
    pub metrics_level: MetricsLevel,
    /// Whether the per-shard metrics carry a `shard` label besides `stream`.
    pub metrics_granularity: MetricsGranularity,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            record_max_buffered_time: Duration::from_millis(100),
            record_ttl: Duration::from_secs(30),
            aggregation_enabled: true,
            aggregation_max_count: u64::from(u32::MAX),
            aggregation_max_size: 51_200,
            collection_max_count: 500,
            collection_max_size: 5 * 1024 * 1024,
            rate_limit: 150,
            fail_if_throttled: false,
            max_connections: 24,
            request_timeout: Duration::from_secs(6),
            max_outstanding_records: 100_000,
            max_outstanding_bytes: 256 * 1024 * 1024,
            preserve_order: false,
            retry_min_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(5),
            metrics_level: MetricsLevel::Detailed,
            metrics_granularity: MetricsGranularity::Shard,
        }
    }
}

impl Config {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, field: &'static str, range: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError { field, range })
            }
        };
        check(
            self.record_ttl >= Duration::from_millis(100),
            "record_ttl",
            "at least 100 ms",
        )?;
        check(
            self.aggregation_max_count >= 1,
            "aggregation_max_count",
            "at least 1",
        )?;
        check(
            (64..=1 << 20).contains(&self.aggregation_max_size),
            "aggregation_max_size",
            "64 B to 1 MiB",
        )?;
        check(
            (1..=500).contains(&self.collection_max_count),
            "collection_max_count",
            "1 to 500",
        )?;
        check(
            (52_224..=10 << 20).contains(&self.collection_max_size),
            "collection_max_size",
            "52,224 B to 10 MiB",
        )?;
        check(
            (1..=1000).contains(&self.rate_limit),
            "rate_limit",
            "1 to 1000 (%)",
        )?;
        check(
            (1..=256).contains(&self.max_connections),
            "max_connections",
            "1 to 256",
        )?;
        check(
            self.request_timeout >= Duration::from_millis(100),
            "request_timeout",
            "at least 100 ms",
        )?;
        // Both are semaphore sizes, which tokio caps (a bigger one would panic).
        check(
            (1..=Semaphore::MAX_PERMITS).contains(&self.max_outstanding_records),
            "max_outstanding_records",
            "at least 1 and at most usize::MAX / 8",
        )?;
        check(
            ((1 << 20)..=Semaphore::MAX_PERMITS).contains(&self.max_outstanding_bytes),
            "max_outstanding_bytes",
            "at least 1 MiB and at most usize::MAX / 8",
        )?;
        check(
            self.retry_min_delay <= self.retry_max_delay,
            "retry_min_delay",
            "at most retry_max_delay",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_kpl_and_validate() {
        let config = Config::default();
        assert_eq!(config.record_max_buffered_time, Duration::from_millis(100));
        assert_eq!(config.aggregation_max_size, 51_200);
        assert_eq!(config.collection_max_count, 500);
        assert_eq!(config.rate_limit, 150);
        config.validate().unwrap();
        let bad = Config {
            collection_max_count: 501,
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "collection_max_count");
        // A semaphore this big would panic when the producer starts.
        let huge = Config {
            max_outstanding_bytes: usize::MAX,
            ..Config::default()
        };
        assert_eq!(huge.validate().unwrap_err().field, "max_outstanding_bytes");
    }
}

//! Worker configuration, with the Java KCL's defaults.

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::failure::FailurePolicy;
use crate::metrics::MetricsLevel;

/// Where a worker starts reading a shard that has no checkpoint yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialPosition {
    /// At the tip: only records written after the lease is created (the Java KCL's default).
    #[default]
    Latest,
    /// At the oldest record still retained.
    TrimHorizon,
    /// At the first record written at or after this instant.
    AtTimestamp(SystemTime),
}

/// How a worker reads its shards.
///
/// * **Polling** (the default): one GetRecords loop per shard. Every application reading the
///   stream shares the shard's 2 MiB/s and 5 reads/s, and a record waits up to
///   [`Config::idle_time_between_reads`] before it is read. Needs nothing but the stream.
/// * **Enhanced fan-out**: the worker registers a stream consumer (once, for the whole fleet;
///   it is never deregistered) and holds one SubscribeToShard subscription per held lease. The
///   service pushes records as they arrive (tens of milliseconds), each application gets its own
///   2 MiB/s per shard, and the worker calls neither GetRecords nor GetShardIterator. On AWS a
///   registered consumer is billed per shard-hour and per GB read, and SubscribeToShard is
///   served only over HTTP/2.
///
/// Polling stays the library default so that a fleet never creates a billed AWS resource
/// unasked and an upgrade does not change how an existing fleet reads; choose fan-out with
/// [`Retrieval::fan_out`] (the examples default to it). Both deliver the same records to the
/// same [`RecordProcessor`](crate::RecordProcessor) contract: KPL deaggregation, checkpoints,
/// shard ends, failover and shutdown do not depend on the choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Retrieval {
    /// GetRecords polling, tuned by [`Config::max_records`],
    /// [`Config::idle_time_between_reads`] and [`Config::max_prefetch_batches`].
    #[default]
    Polling,
    /// Enhanced fan-out through SubscribeToShard.
    FanOut(FanOutConfig),
}

impl Retrieval {
    /// Enhanced fan-out with the default settings (consumer named after the application).
    pub fn fan_out() -> Self {
        Retrieval::FanOut(FanOutConfig::default())
    }

    /// Whether this is enhanced fan-out.
    pub fn is_fan_out(&self) -> bool {
        matches!(self, Retrieval::FanOut(_))
    }
}

/// Enhanced fan-out settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOutConfig {
    /// Name of the stream consumer (default: the application name, as the Java KCL does). Every
    /// worker of one application must use the same name; two applications must not share one,
    /// since a consumer holds one subscription per shard and a second subscriber evicts the
    /// first.
    pub consumer_name: Option<String>,
    /// A subscription that delivers no event for this long is cut and made again from where it
    /// was (default 30 s). The service sends an event at least every 5 s even when the shard is
    /// idle, so silence means a dead connection. Time the processor spends on earlier batches
    /// does not count: the clock runs only while the worker is waiting for the next event.
    pub silence_timeout: Duration,
    /// Events received ahead of the processor per shard (default 2). The next event is read
    /// from the connection only when one of these slots is free; the connection's flow control
    /// then holds the service back. So a shard's records in memory are at most this many events
    /// plus the batch being processed, whatever the processor's speed (an event carries at most
    /// 10,000 records).
    pub max_buffered_events: usize,
    /// How long start-up waits for a newly registered consumer to become ACTIVE (default 60 s).
    pub activation_timeout: Duration,
}

impl Default for FanOutConfig {
    fn default() -> Self {
        Self {
            consumer_name: None,
            silence_timeout: Duration::from_secs(30),
            max_buffered_events: 2,
            activation_timeout: Duration::from_secs(60),
        }
    }
}

/// How a batch is retried when `process_records` fails. The batch is never skipped: it is
/// delivered again, with a jittered exponential backoff between attempts, until it succeeds or
/// the lease is lost or the worker shuts down.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First backoff (default 500 ms, the Java KCL's `taskBackoffTimeMillis`).
    pub initial_backoff: Duration,
    /// Largest backoff (default 30 s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Worker configuration. Every field has the Java KCL 2.x default unless noted.
#[derive(Debug, Clone)]
pub struct Config {
    /// Lease table name (default: the application name).
    pub table_name: Option<String>,
    /// A lease whose counter has not moved for this long is expired (default 10 s,
    /// `failoverTimeMillis`).
    pub failover_time: Duration,
    /// Heartbeat period (default failover/3 − 25 ms = 3 308 ms).
    pub renewal_interval: Option<Duration>,
    /// How often the lease table is scanned to take expired leases and balance (default: the
    /// renewal interval, so a dead worker's shards are resumed within failover time plus one
    /// renewal interval; the Java KCL uses 2 × (failover + 25 ms) = 20 s).
    pub lease_taker_interval: Option<Duration>,
    /// Most leases this worker holds (default unlimited).
    pub max_leases_for_worker: usize,
    /// Most leases stolen in one taker run (default 1).
    pub max_leases_to_steal_at_one_time: usize,
    /// Graceful handoff (KCL 3.x's `checkpointOwner` protocol) when a lease is moved to balance
    /// the fleet: the worker that wants a lease writes itself as `leaseOwner` and the holder as
    /// `checkpointOwner`; the holder sees it at its next renewal, calls `shutdown_requested` (the
    /// processor may checkpoint), and clears `checkpointOwner`; the new owner then starts at once
    /// from that checkpoint, so a planned move repeats no record the processor checkpointed. If
    /// the holder has not finished within this time (or is gone: its counter stood still for
    /// failover time), the lease is taken by force as without handoff (default 30 s, KCL 3.x's
    /// `gracefulLeaseHandoffTimeoutMillis`). `None` steals as the KCL 2.x does (the holder
    /// learns at its next renewal and gets `lease_lost`); use that in a fleet that includes Java
    /// KCL 2.x workers, which do not know the protocol. A worker shutting down gives its leases
    /// up after `shutdown_requested` either way.
    pub graceful_handoff_timeout: Option<Duration>,
    /// Least time a worker waits before processing a lease it stole (default: the renewal
    /// interval plus 100 ms). Whatever this says, a worker that takes a lease from another worker
    /// (stolen, or expired) starts processing only once the lease would have expired on its own:
    /// failover time after it first saw the counter it took, by its own clock. The previous owner
    /// stops before that (see [`Config::lease_safety_margin`]), so the two never process the
    /// shard at the same time (the Java KCL starts at once and overlaps).
    pub stolen_lease_start_delay: Option<Duration>,
    /// How much earlier than the rest of the fleet a worker gives its own lease up when it cannot
    /// renew it (default failover time / 10). A holder counts validity from the moment it *sent*
    /// its last successful renewal (or take, or checkpoint): its lease is valid until that moment
    /// plus failover time minus this margin. Every other worker counts from when it first saw
    /// the resulting counter, which is later, and waits the whole failover time. Past its
    /// deadline the holder stops delivering records and checkpointing (the processor gets
    /// `lease_lost`). The margin absorbs scheduling delays and clock rate drift between hosts.
    /// Must be shorter than failover time minus the renewal interval.
    pub lease_safety_margin: Option<Duration>,
    /// Timeout of every DynamoDB call (default 5 s). A call without an answer by then fails with
    /// a retryable [`Error::Timeout`]. Renewals use the smaller of this and
    /// the renewal interval, so a hung call never eats a lease's validity.
    pub dynamodb_timeout: Duration,
    /// Timeout of every Kinesis call (default 10 s; GetRecords answers can be 10 MiB). With
    /// fan-out it bounds SubscribeToShard until its first (initial-response) event, and each
    /// registration call.
    pub kinesis_timeout: Duration,
    /// Attempts of each start-up step of [`Scheduler::run`](crate::Scheduler::run) (creating or
    /// describing the lease table, the first shard listing) that fails with a retryable error,
    /// with a jittered exponential backoff from 200 ms to 5 s in between (default 10 attempts,
    /// about 30 s). Non-retryable errors end `run` at once.
    pub startup_attempts: usize,
    /// How often shards are listed to find new ones (default 60 s).
    pub shard_sync_interval: Duration,
    /// Where new leases start.
    pub initial_position: InitialPosition,
    /// Polling or enhanced fan-out (default polling; see [`Retrieval`]).
    pub retrieval: Retrieval,
    /// GetRecords `Limit` (default 10 000; polling only).
    pub max_records: i32,
    /// Pause after a read that returned no records (default 1 500 ms; the service allows 5
    /// reads/s; polling only).
    pub idle_time_between_reads: Duration,
    /// Batches fetched ahead of the processor per shard (default 3; polling only, fan-out has
    /// [`FanOutConfig::max_buffered_events`]).
    pub max_prefetch_batches: usize,
    /// Whether `process_records` is called with empty batches (default false).
    pub call_process_records_even_for_empty: bool,
    /// Backoff between attempts of failed `process_records` / `shard_ended` calls (and of a
    /// failing [`FailureSink`](crate::failure::FailureSink)).
    pub processing_retry: RetryPolicy,
    /// Retry limit, record age limit, bisection and the sink of given-up records (default:
    /// retry forever, give nothing up; see [`FailurePolicy`]).
    pub failure_policy: FailurePolicy,
    /// Longest one call of the processor (`initialize`, `process_records`, `shard_ended`) may
    /// run (default `None`: no limit). A call still running then is cancelled at its next await
    /// point, the processor gets `lease_lost`, the lease is given up so another worker takes it
    /// at once (this worker does not take it back for one failover time), and
    /// `ProcessingTimeouts` is counted with a warning. A call blocking its thread without
    /// awaiting cannot be cancelled. Off by default because a call cut short may leave its side
    /// effects half done and a slow downstream is not a hang; set it above the slowest
    /// legitimate batch (Lambda's function timeout plays this part for its Kinesis trigger).
    pub max_processing_time: Option<Duration>,
    /// Upper bound of graceful shutdown (default 30 s); processors still running afterwards are
    /// aborted without a final checkpoint.
    pub shutdown_timeout: Duration,
    /// How long a finished lease stays after all its children have leases (default 5 min).
    pub finished_lease_retention: Duration,
    /// Wait for a newly created lease table to become ACTIVE (default 60 s).
    pub table_creation_timeout: Duration,
    /// Multi-stream applications: how long the leases of a stream the
    /// [`StreamTracker`](crate::StreamTracker) no longer returns are kept before they are
    /// deleted (default 1 h; the Java KCL's deferred deletion of former streams' leases). A
    /// stream returned again before then resumes from its checkpoints.
    pub former_stream_lease_retention: Duration,
    /// Which metrics are emitted (default [`MetricsLevel::Detailed`], as the Java KCL's
    /// `MetricsConfig`).
    pub metrics_level: MetricsLevel,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            table_name: None,
            failover_time: Duration::from_secs(10),
            renewal_interval: None,
            lease_taker_interval: None,
            max_leases_for_worker: usize::MAX,
            max_leases_to_steal_at_one_time: 1,
            stolen_lease_start_delay: None,
            graceful_handoff_timeout: Some(Duration::from_secs(30)),
            lease_safety_margin: None,
            dynamodb_timeout: Duration::from_secs(5),
            kinesis_timeout: Duration::from_secs(10),
            startup_attempts: 10,
            shard_sync_interval: Duration::from_secs(60),
            initial_position: InitialPosition::Latest,
            retrieval: Retrieval::Polling,
            max_records: 10_000,
            idle_time_between_reads: Duration::from_millis(1_500),
            max_prefetch_batches: 3,
            call_process_records_even_for_empty: false,
            processing_retry: RetryPolicy::default(),
            failure_policy: FailurePolicy::default(),
            max_processing_time: None,
            shutdown_timeout: Duration::from_secs(30),
            finished_lease_retention: Duration::from_secs(300),
            table_creation_timeout: Duration::from_secs(60),
            former_stream_lease_retention: Duration::from_secs(3600),
            metrics_level: MetricsLevel::Detailed,
        }
    }
}

const EPSILON: Duration = Duration::from_millis(25);

impl Config {
    /// The effective renewal interval.
    pub fn renewal_interval(&self) -> Duration {
        self.renewal_interval.unwrap_or_else(|| {
            // Whole milliseconds, as the Java KCL computes it: 10 000 / 3 - 25 = 3 308.
            Duration::from_millis((self.failover_time.as_millis() / 3) as u64)
                .saturating_sub(EPSILON)
                .max(Duration::from_millis(10))
        })
    }

    /// The effective start delay for stolen leases.
    pub fn stolen_lease_start_delay(&self) -> Duration {
        self.stolen_lease_start_delay
            .unwrap_or_else(|| self.renewal_interval() + Duration::from_millis(100))
    }

    /// The effective lease safety margin.
    pub fn lease_safety_margin(&self) -> Duration {
        self.lease_safety_margin
            .unwrap_or_else(|| self.failover_time / 10)
    }

    /// How long after sending a successful renewal this worker may process the shard.
    pub fn lease_validity(&self) -> Duration {
        self.failover_time
            .saturating_sub(self.lease_safety_margin())
    }

    /// Timeout of one renewal: the DynamoDB timeout, at most the renewal interval.
    pub fn renewal_timeout(&self) -> Duration {
        self.dynamodb_timeout.min(self.renewal_interval())
    }

    /// Checks every field against its range and the timings against each other. The error
    /// ([`Error::InvalidConfig`]) names the first field that is wrong. Called when a
    /// [`Scheduler`](crate::Scheduler) is built.
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, field: &'static str, reason: &dyn Fn() -> String| {
            if ok {
                Ok(())
            } else {
                Err(Error::InvalidConfig {
                    field,
                    reason: reason(),
                })
            }
        };
        check(
            self.table_name.as_ref().is_none_or(|n| !n.is_empty()),
            "table_name",
            &|| "must not be empty".into(),
        )?;
        check(!self.failover_time.is_zero(), "failover_time", &|| {
            "must be positive".into()
        })?;
        check(
            self.renewal_interval.is_none_or(|r| !r.is_zero()),
            "renewal_interval",
            &|| "must be positive".into(),
        )?;
        check(
            self.lease_taker_interval.is_none_or(|t| !t.is_zero()),
            "lease_taker_interval",
            &|| "must be positive".into(),
        )?;
        check(
            self.lease_safety_margin() < self.failover_time,
            "lease_safety_margin",
            &|| {
                format!(
                    "{:?} must be shorter than failover_time {:?}",
                    self.lease_safety_margin(),
                    self.failover_time
                )
            },
        )?;
        check(
            self.renewal_interval() < self.lease_validity(),
            "renewal_interval",
            &|| {
                format!(
                    "{:?} must be shorter than failover_time {:?} minus lease_safety_margin {:?}",
                    self.renewal_interval(),
                    self.failover_time,
                    self.lease_safety_margin()
                )
            },
        )?;
        check(
            self.max_leases_for_worker > 0,
            "max_leases_for_worker",
            &|| "must be at least 1".into(),
        )?;
        check(
            !self.dynamodb_timeout.is_zero(),
            "dynamodb_timeout",
            &|| "must be positive".into(),
        )?;
        check(!self.kinesis_timeout.is_zero(), "kinesis_timeout", &|| {
            "must be positive".into()
        })?;
        check(
            !self.shard_sync_interval.is_zero(),
            "shard_sync_interval",
            &|| "must be positive".into(),
        )?;
        check(
            (1..=10_000).contains(&self.max_records),
            "max_records",
            &|| {
                format!(
                    "{} is not in 1..=10000 (the GetRecords limit)",
                    self.max_records
                )
            },
        )?;
        check(
            self.max_prefetch_batches > 0,
            "max_prefetch_batches",
            &|| "must be at least 1".into(),
        )?;
        check(
            self.processing_retry.initial_backoff <= self.processing_retry.max_backoff,
            "processing_retry",
            &|| "initial_backoff must not exceed max_backoff".into(),
        )?;
        check(
            self.failure_policy
                .max_record_age
                .is_none_or(|age| !age.is_zero()),
            "failure_policy",
            &|| "max_record_age must be positive".into(),
        )?;
        check(
            self.max_processing_time.is_none_or(|t| !t.is_zero()),
            "max_processing_time",
            &|| "must be positive".into(),
        )?;
        check(
            self.graceful_handoff_timeout.is_none_or(|t| !t.is_zero()),
            "graceful_handoff_timeout",
            &|| "must be positive (None turns handoff off)".into(),
        )?;
        if let Retrieval::FanOut(f) = &self.retrieval {
            check(
                f.consumer_name.as_ref().is_none_or(|n| !n.is_empty()),
                "retrieval",
                &|| "the fan-out consumer_name must not be empty".into(),
            )?;
            check(!f.silence_timeout.is_zero(), "retrieval", &|| {
                "the fan-out silence_timeout must be positive".into()
            })?;
            check(f.max_buffered_events > 0, "retrieval", &|| {
                "the fan-out max_buffered_events must be at least 1".into()
            })?;
        }
        Ok(())
    }

    /// The effective taker interval.
    pub fn lease_taker_interval(&self) -> Duration {
        self.lease_taker_interval
            .unwrap_or_else(|| self.renewal_interval())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_java_kcl() {
        let c = Config::default();
        assert_eq!(c.renewal_interval(), Duration::from_millis(3_308));
        assert_eq!(c.failover_time, Duration::from_secs(10));
        assert_eq!(c.initial_position, InitialPosition::Latest);
    }

    #[test]
    fn validity_leaves_the_margin_and_outlasts_a_renewal() {
        let c = Config::default();
        assert_eq!(c.lease_validity(), Duration::from_secs(9));
        assert_eq!(c.renewal_timeout(), Duration::from_millis(3_308));
        assert!(c.validate().is_ok());
        let bad = Config {
            lease_safety_margin: Some(Duration::from_secs(7)),
            ..Config::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidConfig {
                field: "renewal_interval",
                ..
            })
        ));
        let zero = Config {
            failover_time: Duration::ZERO,
            ..Config::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(Error::InvalidConfig {
                field: "failover_time",
                ..
            })
        ));
    }
}

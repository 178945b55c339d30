//! Per-shard token buckets: the producer's own rate limit, below the point where Kinesis
//! throttles, so most records go through on the first attempt.

use tokio::time::Instant;

/// A shard's write limits: 1,000 records/s and 1 MiB/s.
const RECORDS_PER_SEC: f64 = 1_000.0;
const BYTES_PER_SEC: f64 = 1_048_576.0;

/// Two token buckets (records and bytes) refilling at `rate_limit` percent of a shard's limits,
/// each holding one second's worth.
#[derive(Debug, Clone)]
pub(crate) struct ShardLimiter {
    records: f64,
    bytes: f64,
    records_rate: f64,
    bytes_rate: f64,
    updated: Instant,
}

impl ShardLimiter {
    pub(crate) fn new(rate_limit_percent: u32, now: Instant) -> Self {
        let factor = f64::from(rate_limit_percent) / 100.0;
        Self {
            records: RECORDS_PER_SEC * factor,
            bytes: BYTES_PER_SEC * factor,
            records_rate: RECORDS_PER_SEC * factor,
            bytes_rate: BYTES_PER_SEC * factor,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.records = (self.records + elapsed * self.records_rate).min(self.records_rate);
        self.bytes = (self.bytes + elapsed * self.bytes_rate).min(self.bytes_rate);
        self.updated = now.max(self.updated);
    }

    /// Takes tokens for one Kinesis record of `bytes` if there are enough (a record bigger than
    /// a full bucket passes when the bucket is full).
    pub(crate) fn try_take(&mut self, bytes: usize, now: Instant) -> bool {
        self.refill(now);
        let bytes = bytes as f64;
        let enough_bytes = self.bytes >= bytes || self.bytes >= self.bytes_rate;
        if self.records >= 1.0 && enough_bytes {
            self.records -= 1.0;
            self.bytes -= bytes;
            true
        } else {
            false
        }
    }

    /// When a record of `bytes` could next pass.
    pub(crate) fn ready_at(&self, bytes: usize, now: Instant) -> Instant {
        let records_wait = (1.0 - self.records).max(0.0) / self.records_rate;
        let needed = (bytes as f64).min(self.bytes_rate);
        let bytes_wait = (needed - self.bytes).max(0.0) / self.bytes_rate;
        now + std::time::Duration::from_secs_f64(records_wait.max(bytes_wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_the_configured_share_of_a_shard_per_second() {
        let start = Instant::now();
        let mut limiter = ShardLimiter::new(100, start);
        let passed = (0..1_500).filter(|_| limiter.try_take(10, start)).count();
        assert_eq!(passed, 1_000);
        assert!(limiter.ready_at(10, start) > start);
        let later = start + Duration::from_millis(100);
        assert_eq!(
            (0..500).filter(|_| limiter.try_take(10, later)).count(),
            100
        );
        let mut fast = ShardLimiter::new(150, start);
        assert_eq!(
            (0..2_000).filter(|_| fast.try_take(10, start)).count(),
            1_500
        );
    }

    #[test]
    fn bytes_are_limited_too() {
        let start = Instant::now();
        let mut limiter = ShardLimiter::new(100, start);
        assert_eq!(
            (0..10).filter(|_| limiter.try_take(300_000, start)).count(),
            3
        );
        let at = limiter.ready_at(300_000, start);
        assert!(limiter.try_take(300_000, at + Duration::from_millis(1)));
    }
}

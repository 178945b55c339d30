//! Per-shard throughput limits, as token buckets that read the time from their caller.
//!
//! Kinesis limits each shard to 1 MiB/s and 1,000 records/s of writes, 2 MiB/s and 5
//! GetRecords calls/s of shared reads, and 5 GetShardIterator calls/s. Each limit is a bucket
//! holding one second's worth of tokens that refills continuously. A request larger than a full
//! bucket (a 10 MiB GetRecords, a large record) is allowed when the bucket is full and drives it
//! negative, so the calls after it wait until the debt is repaid, as Kinesis does after a 10 MiB
//! read.

/// Write bytes per second per shard.
pub(crate) const WRITE_BYTES_PER_SEC: f64 = 1_048_576.0;
/// Write records per second per shard.
pub(crate) const WRITE_RECORDS_PER_SEC: f64 = 1_000.0;
/// Shared read bytes per second per shard.
pub(crate) const READ_BYTES_PER_SEC: f64 = 2_097_152.0;
/// GetRecords calls per second per shard.
pub(crate) const READ_CALLS_PER_SEC: f64 = 5.0;
/// GetShardIterator calls per second per shard.
pub(crate) const ITERATOR_CALLS_PER_SEC: f64 = 5.0;

/// A token bucket that refills at `rate` tokens per second up to one second's worth.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    rate_per_sec: f64,
    tokens: f64,
    updated_ms: Option<i64>,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate_per_sec: f64) -> Self {
        Self {
            rate_per_sec,
            tokens: rate_per_sec,
            updated_ms: None,
        }
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed_ms = self.updated_ms.map_or(0, |t| (now_ms - t).max(0));
        self.tokens =
            (self.tokens + self.rate_per_sec * elapsed_ms as f64 / 1000.0).min(self.rate_per_sec);
        self.updated_ms = Some(now_ms.max(self.updated_ms.unwrap_or(now_ms)));
    }

    /// Whether `amount` tokens are available at `now_ms` (or the bucket is full), without
    /// taking them.
    pub(crate) fn allows(&mut self, amount: f64, now_ms: i64) -> bool {
        self.refill(now_ms);
        self.tokens >= amount || self.tokens >= self.rate_per_sec
    }

    /// Takes `amount` tokens; the bucket may go into debt.
    pub(crate) fn take(&mut self, amount: f64, now_ms: i64) {
        self.refill(now_ms);
        self.tokens -= amount;
    }

    /// Takes `amount` tokens if [`allows`](Self::allows) says so.
    pub(crate) fn try_take(&mut self, amount: f64, now_ms: i64) -> bool {
        let allowed = self.allows(amount, now_ms);
        if allowed {
            self.tokens -= amount;
        }
        allowed
    }

    /// Whether the bucket has anything left (reads may start only without debt).
    pub(crate) fn has_tokens(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        self.tokens > 0.0
    }
}

/// The throughput state of one shard.
#[derive(Clone, Debug)]
pub(crate) struct ShardThrottle {
    write_bytes: TokenBucket,
    write_records: TokenBucket,
    read_bytes: TokenBucket,
    read_calls: TokenBucket,
    iterator_calls: TokenBucket,
    /// When the shard started rejecting writes without a quiet second since (for on-demand
    /// scaling).
    pub(crate) write_overload_since_ms: Option<i64>,
    last_write_throttle_ms: i64,
}

impl Default for ShardThrottle {
    fn default() -> Self {
        Self {
            write_bytes: TokenBucket::new(WRITE_BYTES_PER_SEC),
            write_records: TokenBucket::new(WRITE_RECORDS_PER_SEC),
            read_bytes: TokenBucket::new(READ_BYTES_PER_SEC),
            read_calls: TokenBucket::new(READ_CALLS_PER_SEC),
            iterator_calls: TokenBucket::new(ITERATOR_CALLS_PER_SEC),
            write_overload_since_ms: None,
            last_write_throttle_ms: i64::MIN,
        }
    }
}

impl ShardThrottle {
    /// Admits one record of `bytes` (data plus partition key), or says it is throttled.
    pub(crate) fn admit_write(&mut self, bytes: usize, now_ms: i64) -> bool {
        let admitted =
            self.write_records.allows(1.0, now_ms) && self.write_bytes.allows(bytes as f64, now_ms);
        if admitted {
            self.write_records.take(1.0, now_ms);
            self.write_bytes.take(bytes as f64, now_ms);
            if now_ms.saturating_sub(self.last_write_throttle_ms) > 1_000 {
                self.write_overload_since_ms = None;
            }
        } else {
            if now_ms.saturating_sub(self.last_write_throttle_ms) > 1_000 {
                self.write_overload_since_ms = Some(now_ms);
            } else {
                self.write_overload_since_ms.get_or_insert(now_ms);
            }
            self.last_write_throttle_ms = now_ms;
        }
        admitted
    }

    /// Admits a GetRecords call: within 5 calls/s and with no read debt outstanding.
    pub(crate) fn admit_read(&mut self, now_ms: i64) -> bool {
        self.read_bytes.has_tokens(now_ms) && self.read_calls.try_take(1.0, now_ms)
    }

    /// Charges the bytes a GetRecords call returned.
    pub(crate) fn charge_read(&mut self, bytes: usize, now_ms: i64) {
        self.read_bytes.take(bytes as f64, now_ms);
    }

    /// Admits a GetShardIterator call.
    pub(crate) fn admit_iterator(&mut self, now_ms: i64) -> bool {
        self.iterator_calls.try_take(1.0, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_continuously_up_to_one_second() {
        let mut bucket = TokenBucket::new(10.0);
        for _ in 0..10 {
            assert!(bucket.try_take(1.0, 0));
        }
        assert!(!bucket.try_take(1.0, 0));
        assert!(!bucket.try_take(1.0, 99));
        assert!(bucket.try_take(1.0, 100));
        // A long pause refills only to capacity.
        assert!(bucket.allows(10.0, 60_000));
        bucket.take(10.0, 60_000);
        assert!(!bucket.allows(1.0, 60_000));
    }

    #[test]
    fn oversized_requests_pass_when_full_and_leave_a_debt() {
        let mut bucket = TokenBucket::new(READ_BYTES_PER_SEC);
        bucket.take(10.0 * 1_048_576.0, 0);
        assert!(!bucket.has_tokens(0));
        assert!(!bucket.has_tokens(4_000));
        assert!(bucket.has_tokens(4_001));
    }

    #[test]
    fn writes_are_limited_by_records_and_by_bytes() {
        let mut shard = ShardThrottle::default();
        let admitted = (0..1_500).filter(|_| shard.admit_write(10, 0)).count();
        assert_eq!(admitted, 1_000);
        let mut shard = ShardThrottle::default();
        let admitted = (0..20).filter(|_| shard.admit_write(100_000, 0)).count();
        assert_eq!(admitted, 10);
        assert!(shard.write_overload_since_ms.is_some());
        // A second later there is room again.
        assert!(shard.admit_write(100_000, 1_000));
    }

    #[test]
    fn reads_are_limited_by_calls_and_by_bytes() {
        let mut shard = ShardThrottle::default();
        assert_eq!((0..8).filter(|_| shard.admit_read(0)).count(), 5);
        let mut shard = ShardThrottle::default();
        assert!(shard.admit_read(0));
        shard.charge_read(10 << 20, 0);
        assert!(!shard.admit_read(1_000));
        assert!(shard.admit_read(5_000));
    }
}

//! The counters behind `/metrics` and the page: atomics that the request paths bump with
//! relaxed adds (no lock, no allocation per record), read by a scrape.
//!
//! Each stream owns a [`StreamCounters`] (one [`ShardCounters`] per shard, grown when shards
//! are added) and each DynamoDB table a [`TableCounters`]. They live and die with their stream
//! or table, so a stream deleted and created again under the same name starts from zero, as a
//! Prometheus counter of a new target does. Live subscriptions and item counts are not counted
//! here: a scrape reads them from the state itself.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::kinesis::Kinesis;
use crate::model::shard::ReadBatch;
use crate::storage::{ShardRecord, StoredRecord};

/// What one kind of reader (GetRecords, or fan-out) took from a shard.
#[derive(Debug, Default)]
pub(crate) struct ReadCounters {
    records: AtomicU64,
    bytes: AtomicU64,
    /// `MillisBehindLatest` of the last read; -1 before the first.
    age_ms: AtomicI64,
}

/// Cumulative reads of one kind, as a scrape sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReadTotals {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    /// `None` before the first read.
    pub(crate) age_ms: Option<i64>,
}

impl ReadCounters {
    fn new() -> Self {
        Self {
            age_ms: AtomicI64::new(-1),
            ..Self::default()
        }
    }

    fn add(&self, batch: &ReadBatch) {
        let bytes: usize = batch.records.iter().map(record_bytes).sum();
        self.records
            .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.age_ms.store(batch.millis_behind, Ordering::Relaxed);
    }

    fn totals(&self) -> ReadTotals {
        let age = self.age_ms.load(Ordering::Relaxed);
        ReadTotals {
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            age_ms: (age >= 0).then_some(age),
        }
    }
}

/// One shard's counters.
#[derive(Debug)]
pub(crate) struct ShardCounters {
    records_in: AtomicU64,
    bytes_in: AtomicU64,
    throttled: AtomicU64,
    polled: ReadCounters,
    pushed: ReadCounters,
}

impl Default for ShardCounters {
    fn default() -> Self {
        Self {
            records_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            polled: ReadCounters::new(),
            pushed: ReadCounters::new(),
        }
    }
}

/// One shard's counters as a scrape sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ShardTotals {
    /// Records and bytes (data plus partition key, as Kinesis meters them) appended.
    pub(crate) records_in: u64,
    pub(crate) bytes_in: u64,
    /// Requests (a PutRecords record counts as one) refused for the shard's throughput.
    pub(crate) throttled: u64,
    /// Read through GetRecords.
    pub(crate) polled: ReadTotals,
    /// Pushed to fan-out subscriptions.
    pub(crate) pushed: ReadTotals,
}

/// The counters of a stream's shards, by shard index.
#[derive(Debug, Default)]
pub(crate) struct StreamCounters {
    shards: RwLock<Vec<ShardCounters>>,
}

impl StreamCounters {
    /// The shards' counters, with at least `index + 1` of them.
    fn at_least(&self, index: u32) -> RwLockReadGuard<'_, Vec<ShardCounters>> {
        let want = index as usize + 1;
        let shards = self.shards.read();
        if shards.len() >= want {
            return shards;
        }
        drop(shards);
        // Only when a shard is touched for the first time.
        let mut shards = self.shards.write();
        if shards.len() < want {
            shards.resize_with(want, ShardCounters::default);
        }
        RwLockWriteGuard::downgrade(shards)
    }

    fn with(&self, index: u32, f: impl FnOnce(&ShardCounters)) {
        let shards = self.at_least(index);
        if let Some(shard) = shards.get(index as usize) {
            f(shard);
        }
    }

    /// Counts appended records (hook: PutRecord, PutRecords).
    pub(crate) fn wrote(&self, batch: &[ShardRecord]) {
        let Some(highest) = batch.iter().map(|r| r.shard_index).max() else {
            return;
        };
        let shards = self.at_least(highest);
        for item in batch {
            if let Some(shard) = shards.get(item.shard_index as usize) {
                shard.records_in.fetch_add(1, Ordering::Relaxed);
                shard
                    .bytes_in
                    .fetch_add(record_bytes(&item.record) as u64, Ordering::Relaxed);
            }
        }
    }

    /// Counts a GetRecords read of shard `index` (hook: GetRecords).
    pub(crate) fn polled(&self, index: u32, batch: &ReadBatch) {
        self.with(index, |shard| shard.polled.add(batch));
    }

    /// Counts a fan-out read of shard `index` (hook: SubscribeToShard).
    pub(crate) fn pushed(&self, index: u32, batch: &ReadBatch) {
        self.with(index, |shard| shard.pushed.add(batch));
    }

    /// Counts a request refused for shard `index`'s throughput.
    pub(crate) fn throttled(&self, index: u32) {
        self.with(index, |shard| {
            shard.throttled.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// Shard `index`'s counters now (zero for a shard never touched).
    pub(crate) fn totals(&self, index: u32) -> ShardTotals {
        let shards = self.shards.read();
        let Some(shard) = shards.get(index as usize) else {
            return ShardTotals::default();
        };
        ShardTotals {
            records_in: shard.records_in.load(Ordering::Relaxed),
            bytes_in: shard.bytes_in.load(Ordering::Relaxed),
            throttled: shard.throttled.load(Ordering::Relaxed),
            polled: shard.polled.totals(),
            pushed: shard.pushed.totals(),
        }
    }
}

/// A DynamoDB table's counters.
#[derive(Debug, Default)]
pub(crate) struct TableCounters {
    conditional_failures: AtomicU64,
}

impl TableCounters {
    /// Counts a write whose condition failed (hook: PutItem, UpdateItem, DeleteItem, and each
    /// write of a TransactWriteItems).
    pub(crate) fn conditional_failed(&self) {
        self.conditional_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes refused by their condition so far.
    pub(crate) fn conditional_failures(&self) -> u64 {
        self.conditional_failures.load(Ordering::Relaxed)
    }
}

/// The bytes Kinesis meters for a record: data plus partition key.
fn record_bytes(record: &StoredRecord) -> usize {
    record.data.len() + record.partition_key.len()
}

impl Kinesis {
    /// Counts a request refused for the throughput of `shard` of stream `stream` (hook: every
    /// ProvisionedThroughputExceeded answer goes through `rate_exceeded_message`). Not on the
    /// hot path: the refused request is answered with an error anyway.
    pub(crate) fn count_throttled(&self, shard: u32, stream: &str) {
        if let Some(stream) = self.registry.get(stream) {
            stream.counters.throttled(shard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record(shard_index: u32, key: &str, data: usize) -> ShardRecord {
        ShardRecord {
            shard_index,
            record: StoredRecord {
                sequence_number: 1,
                arrival_ms: 0,
                partition_key: key.into(),
                data: Bytes::from(vec![0; data]),
                encrypted: false,
            },
        }
    }

    #[test]
    fn counts_per_shard_and_grows_with_new_shards() {
        let counters = StreamCounters::default();
        counters.wrote(&[record(0, "a", 10), record(2, "bb", 20), record(0, "c", 1)]);
        counters.throttled(3);
        let batch = ReadBatch {
            records: vec![record(0, "a", 10).record],
            millis_behind: 42,
            ..ReadBatch::default()
        };
        counters.polled(0, &batch);
        let zero = counters.totals(0);
        assert_eq!((zero.records_in, zero.bytes_in), (2, 13));
        assert_eq!(
            zero.polled,
            ReadTotals {
                records: 1,
                bytes: 11,
                age_ms: Some(42)
            }
        );
        assert_eq!(zero.pushed.age_ms, None);
        assert_eq!(counters.totals(2).bytes_in, 22);
        assert_eq!(counters.totals(3).throttled, 1);
        assert_eq!(counters.totals(9), ShardTotals::default());
    }
}

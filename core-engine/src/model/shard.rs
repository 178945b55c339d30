//! One shard: its hash range, lineage and records.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::storage::{Lsn, StoredRecord};

use super::hash::HashRange;
use super::records::{PlannedRead, ShardRecords};
use super::sequence::SequenceNumber;
use super::throttle::ShardThrottle;

/// A shard of a stream.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) index: u32,
    pub(crate) hash_range: HashRange,
    pub(crate) parent: Option<u32>,
    pub(crate) adjacent_parent: Option<u32>,
    /// Lower bound of the shard's sequence numbers; every record's number is above it.
    pub(crate) starting_seq: u128,
    /// Set once the shard is closed by resharding; no record is added after it.
    pub(crate) ending_seq: Option<u128>,
    /// The highest sequence number handed out (or `starting_seq`).
    pub(crate) last_seq: u128,
    /// The retained records, each tagged with the log position that makes it durable.
    pub(crate) records: ShardRecords,
    /// Throughput accounting; not persisted, so a restart starts with full buckets.
    pub(crate) throttle: ShardThrottle,
    /// Woken when records become readable or the shard closes, so fan-out pushes at once.
    pub(crate) appended: Arc<Notify>,
}

/// The result of reading a shard.
#[derive(Debug, Default)]
pub(crate) struct ReadBatch {
    pub(crate) records: Vec<StoredRecord>,
    /// Where the next read starts.
    pub(crate) next_position: u128,
    /// Milliseconds between now and the arrival of the oldest record not yet read; 0 when caught up.
    pub(crate) millis_behind: i64,
    /// The shard is closed and every record in it has been read.
    pub(crate) at_shard_end: bool,
    /// Reading a record back from the log failed: the batch ends before it, and
    /// `next_position` is that record, so the next read meets the failure again.
    pub(crate) failure: Option<ReadFailure>,
}

/// A record that could not be read back from the log (an I/O error, a frame failing its CRC,
/// a sealed batch that does not open).
#[derive(Debug)]
pub(crate) struct ReadFailure {
    /// The record's sequence number.
    pub(crate) seq: u128,
    pub(crate) error: crate::storage::StorageError,
}

impl ReadFailure {
    /// What a reader is told when this record of shard `shard` was the first it needed:
    /// InternalFailure (HTTP 500), which SDKs retry (and a fan-out subscriber resubscribes on).
    /// Not one of the KMS exceptions reads may return: those describe the state of a
    /// customer's key, while a sealed batch that fails to open is damage on the engine's side.
    pub(crate) fn into_api_error(self, shard: u32) -> crate::error::ApiError {
        crate::error::ApiError::InternalFailure(format!(
            "Internal service failure reading the record with sequence number {} of shard {} \
             back from the log: {}",
            self.seq,
            shard_id(shard),
            self.error
        ))
    }
}

/// Limits on one read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadLimits {
    pub(crate) max_records: usize,
    pub(crate) max_bytes: usize,
    /// Records whose log position is above this are not durable yet and stay invisible.
    pub(crate) durable_lsn: Lsn,
}

impl Shard {
    pub(crate) fn new(index: u32, hash_range: HashRange, created_ms: i64) -> Self {
        let starting_seq = SequenceNumber {
            time_ms: created_ms,
            shard_index: index,
            counter: 0,
        }
        .to_u128();
        Self {
            index,
            hash_range,
            parent: None,
            adjacent_parent: None,
            starting_seq,
            ending_seq: None,
            last_seq: starting_seq,
            records: ShardRecords::default(),
            throttle: ShardThrottle::default(),
            appended: Arc::default(),
        }
    }

    pub(crate) fn id(&self) -> String {
        shard_id(self.index)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.ending_seq.is_none()
    }

    /// When the shard was created, epoch ms.
    pub(crate) fn created_ms(&self) -> i64 {
        SequenceNumber::from_u128(self.starting_seq).map_or(0, |s| s.time_ms)
    }

    /// When the shard was closed, epoch ms.
    pub(crate) fn closed_ms(&self) -> Option<i64> {
        self.ending_seq
            .and_then(SequenceNumber::from_u128)
            .map(|s| s.time_ms)
    }

    /// Hands out the next sequence number at `now_ms`.
    pub(crate) fn next_sequence(&mut self, now_ms: i64) -> SequenceNumber {
        let next = SequenceNumber::next_after(self.last_seq, now_ms);
        self.last_seq = next.to_u128();
        next
    }

    /// Adds a record whose sequence number came from [`Shard::next_sequence`] (or from the log).
    pub(crate) fn push(&mut self, record: StoredRecord, lsn: Lsn) {
        debug_assert!(
            self.records
                .last_seq()
                .is_none_or(|last| last < record.sequence_number)
        );
        self.last_seq = self.last_seq.max(record.sequence_number);
        self.records.push(&record, lsn);
    }

    /// Drops records that arrived before `cutoff_ms`; returns how many.
    pub(crate) fn trim(&mut self, cutoff_ms: i64) -> usize {
        self.records.trim(cutoff_ms)
    }

    /// Position of the first record that arrived at or after `timestamp_ms`, or the tip.
    pub(crate) fn position_at_timestamp(&self, timestamp_ms: i64) -> u128 {
        self.records
            .seq_at_timestamp(timestamp_ms)
            .unwrap_or(self.last_seq + 1)
    }

    /// Position just after the newest record.
    pub(crate) fn latest_position(&self) -> u128 {
        self.last_seq + 1
    }

    /// Reads records at or after `position`.
    pub(crate) fn read(&self, position: u128, limits: ReadLimits, now_ms: i64) -> ReadBatch {
        self.records
            .read(position, limits, now_ms, self.ending_seq.is_some())
    }

    /// [`Shard::read`] in two steps: this one under the stream's lock, then
    /// [`PlannedRead::finish`] without it (it may read the log).
    pub(crate) fn plan_read(&self, position: u128, limits: ReadLimits, now_ms: i64) -> PlannedRead {
        self.records
            .plan(position, limits, now_ms, self.ending_seq.is_some())
    }
}

/// The id Kinesis gives the shard with this index.
pub(crate) fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// Parses a shard id the way Kinesis accepts it: `shardId-000000000007`, or the bare number.
pub(crate) fn parse_shard_id(id: &str) -> Option<u32> {
    let digits = id.strip_prefix("shardId-").unwrap_or(id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn shard_with(arrivals: &[i64]) -> Shard {
        let mut shard = Shard::new(
            0,
            HashRange {
                start: 0,
                end: u128::MAX,
            },
            1_000,
        );
        for (i, &arrival) in arrivals.iter().enumerate() {
            let seq = shard.next_sequence(arrival).to_u128();
            let record = StoredRecord {
                sequence_number: seq,
                arrival_ms: arrival,
                partition_key: format!("k{i}"),
                data: Bytes::from(vec![0u8; 10]),
                encrypted: false,
            };
            shard.push(record, i as Lsn + 1);
        }
        shard
    }

    const ALL: ReadLimits = ReadLimits {
        max_records: 10_000,
        max_bytes: 10 << 20,
        durable_lsn: Lsn::MAX,
    };

    #[test]
    fn reads_respect_count_bytes_and_durability() {
        let shard = shard_with(&[1_000, 1_001, 1_002, 1_003]);
        let first = shard.read(0, ALL, 1_010).records[0].sequence_number;
        let two = shard.read(
            first,
            ReadLimits {
                max_records: 2,
                ..ALL
            },
            1_010,
        );
        assert_eq!(two.records.len(), 2);
        assert_eq!(two.millis_behind, 1_010 - 1_002);
        let rest = shard.read(two.next_position, ALL, 1_010);
        assert_eq!(rest.records.len(), 2);
        assert_eq!(rest.millis_behind, 0);
        // Each record is 12 bytes (10 data + 2 key): 30 bytes fit two.
        let by_bytes = shard.read(
            first,
            ReadLimits {
                max_bytes: 30,
                ..ALL
            },
            1_010,
        );
        assert_eq!(by_bytes.records.len(), 2);
        // Only LSNs 1 and 2 are durable.
        let durable = shard.read(
            first,
            ReadLimits {
                durable_lsn: 2,
                ..ALL
            },
            1_010,
        );
        assert_eq!(durable.records.len(), 2);
        assert_eq!(durable.millis_behind, 0);
        assert!(!durable.at_shard_end);
    }

    #[test]
    fn trimming_drops_only_expired_prefix() {
        let mut shard = shard_with(&[1_000, 2_000, 3_000]);
        assert_eq!(shard.trim(2_000), 1);
        assert_eq!(shard.records.len(), 2);
        assert_eq!(
            shard.position_at_timestamp(2_500),
            shard.read(0, ALL, 3_000).records[1].sequence_number
        );
        assert_eq!(shard.position_at_timestamp(9_999), shard.latest_position());
    }

    #[test]
    fn closed_shard_reports_its_end_once_drained() {
        let mut shard = shard_with(&[1_000, 1_001]);
        shard.ending_seq = Some(shard.next_sequence(1_002).to_u128());
        let first = shard.read(
            0,
            ReadLimits {
                max_records: 1,
                ..ALL
            },
            1_005,
        );
        assert!(!first.at_shard_end);
        let last = shard.read(first.next_position, ALL, 1_005);
        assert!(last.at_shard_end);
        assert_eq!(shard.closed_ms(), Some(1_002));
    }

    #[test]
    fn shard_ids_parse_like_kinesis() {
        assert_eq!(shard_id(7), "shardId-000000000007");
        assert_eq!(parse_shard_id("shardId-000000000007"), Some(7));
        assert_eq!(parse_shard_id("7"), Some(7));
        assert_eq!(parse_shard_id("shardId-"), None);
        assert_eq!(parse_shard_id("shard-x"), None);
    }
}

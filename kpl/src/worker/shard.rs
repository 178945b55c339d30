//! One predicted shard's buffers: the aggregate being built, and sealed Kinesis records waiting
//! for the collector and the shard's rate limit.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use crate::aggregation::Aggregator;
use crate::config::Config;
use crate::limiter::ShardLimiter;

use super::pending::Pending;

/// A Kinesis record: one user record sent as is, or an aggregate of several.
#[derive(Debug)]
pub(crate) struct Container {
    pub(crate) users: Vec<Pending>,
    pub(crate) data: Bytes,
    pub(crate) partition_key: String,
    pub(crate) explicit_hash_key: String,
    pub(crate) aggregated: bool,
    /// The earliest deadline of its user records.
    pub(crate) deadline: Instant,
    /// The shard it is predicted to land on.
    pub(crate) shard: Arc<str>,
    /// Not to be sent before this (a retry in order-preserving mode).
    pub(crate) not_before: Option<Instant>,
}

impl Container {
    /// Bytes it counts for against Kinesis' limits: data plus partition key.
    pub(crate) fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }

    fn earliest_expiry(&self) -> Option<Instant> {
        self.users.iter().map(|u| u.expires).min()
    }

    /// Settles every user record as delivered in this Kinesis record.
    pub(crate) fn deliver(self, shard_id: &str, sequence_number: &str) {
        metrics::counter!("KinesisRecordsPut").increment(1);
        metrics::counter!("KinesisRecordsDataPut").increment(self.data.len() as u64);
        metrics::histogram!("UserRecordsPerKinesisRecord").record(self.users.len() as f64);
        let aggregated = self.aggregated;
        for (index, user) in self.users.into_iter().enumerate() {
            user.deliver(
                shard_id,
                sequence_number,
                aggregated.then_some(index as u64),
            );
        }
    }
}

/// Buffers of one shard.
#[derive(Debug)]
pub(crate) struct ShardBuffer {
    id: Arc<str>,
    building: Vec<Pending>,
    aggregator: Aggregator,
    building_deadline: Option<Instant>,
    pub(crate) ready: VecDeque<Container>,
    pub(crate) limiter: ShardLimiter,
    /// Kinesis records of this shard in flight (order-preserving mode sends one at a time).
    pub(crate) in_flight: usize,
    /// Aggregates of this shard that landed elsewhere and wait for a fresh shard map; in
    /// order-preserving mode nothing newer is sent meanwhile.
    pub(crate) awaiting_map: usize,
    /// The shard closed; its records are routed again once none is in flight or awaiting the
    /// map, so none of them can be overtaken by newer ones.
    pub(crate) closed: bool,
}

impl ShardBuffer {
    pub(crate) fn new(id: Arc<str>, rate_limit: u32, now: Instant) -> Self {
        Self {
            id,
            building: Vec::new(),
            aggregator: Aggregator::new(),
            building_deadline: None,
            ready: VecDeque::new(),
            limiter: ShardLimiter::new(rate_limit, now),
            in_flight: 0,
            awaiting_map: 0,
            closed: false,
        }
    }

    /// Adds a user record: to the aggregate being built, or on its own.
    pub(crate) fn add(&mut self, pending: Pending, config: &Config) {
        let record = &pending.record;
        if !config.aggregation_enabled || !fits_alone(record, config.aggregation_max_size) {
            self.ready.push_back(self.single(pending));
            return;
        }
        let grown = self.aggregator.size_with(
            &record.partition_key,
            record.explicit_hash_key.as_deref(),
            record.data.len(),
        );
        if !self.building.is_empty()
            && (grown > config.aggregation_max_size
                || self.building.len() as u64 >= config.aggregation_max_count)
        {
            self.seal();
        }
        let record = &pending.record;
        self.aggregator.push(
            &record.partition_key,
            record.explicit_hash_key.as_deref(),
            &record.data,
        );
        self.building_deadline = Some(
            self.building_deadline
                .map_or(pending.deadline, |d| d.min(pending.deadline)),
        );
        self.building.push(pending);
    }

    fn single(&self, pending: Pending) -> Container {
        Container {
            data: pending.record.data.clone(),
            partition_key: pending.record.partition_key.clone(),
            explicit_hash_key: pending.hash.to_string(),
            aggregated: false,
            deadline: pending.deadline,
            shard: self.id.clone(),
            not_before: None,
            users: vec![pending],
        }
    }

    /// Turns the aggregate being built into a Kinesis record.
    fn seal(&mut self) {
        let mut users = std::mem::take(&mut self.building);
        let aggregator = std::mem::take(&mut self.aggregator);
        self.building_deadline = None;
        match users.len() {
            0 => {}
            1 => {
                let single = self.single(users.pop().expect("one record"));
                self.ready.push_back(single);
            }
            _ => {
                let deadline = users.iter().map(|u| u.deadline).min().expect("records");
                let first_hash = users[0].hash;
                self.ready.push_back(Container {
                    data: Bytes::from(aggregator.finish()),
                    // Kinesis routes by the explicit hash key; one byte of key keeps requests small.
                    partition_key: "a".into(),
                    explicit_hash_key: first_hash.to_string(),
                    aggregated: true,
                    deadline,
                    shard: self.id.clone(),
                    not_before: None,
                    users,
                });
            }
        }
    }

    /// Seals the aggregate being built if its deadline came, or if flushing.
    pub(crate) fn seal_due(&mut self, now: Instant, flush: bool, _config: &Config) {
        if self.building_deadline.is_some_and(|d| flush || d <= now) {
            self.seal();
        }
    }

    /// Removes user records past their TTL from sealed Kinesis records (rebuilding those), and
    /// gives them back.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<Pending> {
        if !self
            .ready
            .iter()
            .any(|c| c.earliest_expiry().is_some_and(|e| e <= now))
        {
            return Vec::new();
        }
        let mut expired = Vec::new();
        let mut survivors = Vec::new();
        let mut kept = VecDeque::new();
        for container in self.ready.drain(..) {
            if container.earliest_expiry().is_some_and(|e| e <= now) {
                for user in container.users {
                    if user.expires <= now {
                        expired.push(user)
                    } else {
                        survivors.push(user)
                    }
                }
            } else {
                kept.push_back(container);
            }
        }
        self.ready = kept;
        survivors.into_iter().for_each(|user| self.requeue(user));
        expired
    }

    /// Puts a user record back as its own Kinesis record at the back of the queue.
    fn requeue(&mut self, pending: Pending) {
        let single = self.single(pending);
        self.ready.push_back(single);
    }

    /// The next time something in this buffer becomes due.
    pub(crate) fn next_due(&self, config: &Config, now: Instant) -> Option<Instant> {
        let building = self.building_deadline;
        let ready = self.ready.front().map(|c| {
            let due = c.deadline.max(c.not_before.unwrap_or(c.deadline));
            due.max(self.limiter.ready_at(c.size(), now))
        });
        let _ = config;
        [building, ready].into_iter().flatten().min()
    }

    /// Whether a closed shard's buffer can hand its records over to the open shards.
    pub(crate) fn can_reroute(&self) -> bool {
        self.closed && self.in_flight == 0 && self.awaiting_map == 0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.building.is_empty() && self.ready.is_empty() && self.in_flight == 0
    }

    /// Every user record held, for re-routing or shutdown.
    /// Oldest first: sealed records, in queue order, then the aggregate being built.
    pub(crate) fn into_pending(self) -> Vec<Pending> {
        let mut all: Vec<Pending> = self.ready.into_iter().flat_map(|c| c.users).collect();
        all.extend(self.building);
        all
    }
}

/// Whether a record fits in an aggregate of at most `max` bytes on its own. The cheap bound
/// settles almost every record; only records near the limit are measured exactly.
fn fits_alone(record: &crate::record::Record, max: usize) -> bool {
    // Magic, digest, table entries, indexes and length prefixes take well under 64 bytes.
    const SLACK: usize = 64;
    let key_bytes =
        record.partition_key.len() + record.explicit_hash_key.as_ref().map_or(0, String::len);
    if record.data.len() + key_bytes + SLACK <= max {
        return true;
    }
    Aggregator::new().size_with(
        &record.partition_key,
        record.explicit_hash_key.as_deref(),
        record.data.len(),
    ) <= max
}

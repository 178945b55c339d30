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
        if let Some(first) = self.users.first() {
            let metrics = first.metrics.shard(shard_id);
            metrics.kinesis_records_put.increment(1);
            metrics
                .kinesis_records_data_put
                .increment(self.data.len() as u64);
            metrics
                .user_records_per_kinesis_record
                .record(self.users.len() as f64);
        }
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

    /// An aggregate of `users` (two or more), whose encoding `aggregator` holds.
    fn aggregate(&self, users: Vec<Pending>, aggregator: Aggregator) -> Container {
        let deadline = users.iter().map(|u| u.deadline).min().expect("records");
        Container {
            data: Bytes::from(aggregator.finish()),
            // Kinesis routes by the explicit hash key; one byte of key keeps requests small.
            partition_key: "a".into(),
            explicit_hash_key: users[0].hash.to_string(),
            aggregated: true,
            deadline,
            shard: self.id.clone(),
            not_before: None,
            users,
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
                let aggregate = self.aggregate(users, aggregator);
                self.ready.push_back(aggregate);
            }
        }
    }

    /// Seals the aggregate being built if its deadline came, or if flushing.
    pub(crate) fn seal_due(&mut self, now: Instant, flush: bool, _config: &Config) {
        if self.building_deadline.is_some_and(|d| flush || d <= now) {
            self.seal();
        }
    }

    /// Takes the user records `gone` selects out of a Kinesis record and packs the rest into
    /// one record again (a subset of an aggregate fits where the whole did), with the original's
    /// retry time; the original is kept as is when nothing is taken.
    pub(crate) fn split_off(
        &self,
        mut container: Container,
        gone: impl Fn(&Pending) -> bool,
    ) -> (Option<Container>, Vec<Pending>) {
        if !container.users.iter().any(&gone) {
            return (Some(container), Vec::new());
        }
        let (taken, users): (Vec<_>, Vec<_>) = std::mem::take(&mut container.users)
            .into_iter()
            .partition(|user| gone(user));
        let mut rest = match users.len() {
            0 => return (None, taken),
            1 => self.single(users.into_iter().next().expect("one record")),
            _ => {
                let mut aggregator = Aggregator::new();
                for user in &users {
                    let record = &user.record;
                    aggregator.push(
                        &record.partition_key,
                        record.explicit_hash_key.as_deref(),
                        &record.data,
                    );
                }
                self.aggregate(users, aggregator)
            }
        };
        rest.not_before = container.not_before;
        (Some(rest), taken)
    }

    /// Removes user records past their TTL from sealed Kinesis records, and gives them back.
    /// What is left of a Kinesis record keeps its place in the queue: its records are older than
    /// everything behind it, so under `preserve_order` nothing newer may overtake them.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<Pending> {
        if !self
            .ready
            .iter()
            .any(|c| c.earliest_expiry().is_some_and(|e| e <= now))
        {
            return Vec::new();
        }
        let mut expired = Vec::new();
        let mut kept = VecDeque::with_capacity(self.ready.len());
        for container in std::mem::take(&mut self.ready) {
            let (rest, gone) = self.split_off(container, |user| user.expires <= now);
            expired.extend(gone);
            kept.extend(rest);
        }
        self.ready = kept;
        expired
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{Semaphore, oneshot};

    use super::*;
    use crate::aggregation::deaggregate;
    use crate::record::Record;

    fn pending(data: &str, expires: Instant) -> Pending {
        let semaphore = Arc::new(Semaphore::new(2));
        let permits = (
            semaphore.clone().try_acquire_owned().unwrap(),
            semaphore.try_acquire_owned().unwrap(),
        );
        let (reply, _) = oneshot::channel();
        let mut pending = Pending::new(
            Record::new("k", data.to_owned()),
            7,
            &Config::default(),
            reply,
            permits,
            crate::metrics::ProducerMetrics::disabled(),
        );
        pending.expires = expires;
        pending
    }

    fn data(buffer: &ShardBuffer) -> Vec<Vec<String>> {
        buffer
            .ready
            .iter()
            .map(|c| {
                let users: Vec<String> = c
                    .users
                    .iter()
                    .map(|u| String::from_utf8(u.record.data.to_vec()).unwrap())
                    .collect();
                if c.aggregated {
                    let packed: Vec<String> = deaggregate("a", None, &c.data)
                        .iter()
                        .map(|u| String::from_utf8(u.data.to_vec()).unwrap())
                        .collect();
                    assert_eq!(packed, users, "the aggregate holds exactly its records");
                }
                users
            })
            .collect()
    }

    #[tokio::test]
    async fn what_is_left_of_a_partly_expired_aggregate_keeps_its_place() {
        let now = Instant::now();
        let (soon, later) = (now + Duration::from_secs(1), now + Duration::from_secs(9));
        let config = Config::default();
        let mut buffer = ShardBuffer::new("shardId-0".into(), 100, now);
        for (data, expires) in [("0", soon), ("1", later), ("2", soon), ("3", later)] {
            buffer.add(pending(data, expires), &config);
        }
        buffer.seal_due(now, true, &config);
        buffer.add(pending("4", later), &config);
        buffer.seal_due(now, true, &config);
        buffer.ready[0].not_before = Some(now + Duration::from_secs(2));
        assert_eq!(data(&buffer), [vec!["0", "1", "2", "3"], vec!["4"]]);

        let expired = buffer.take_expired(soon);
        let expired: Vec<_> = expired.iter().map(|p| p.record.data.clone()).collect();
        assert_eq!(expired, ["0", "2"]);
        // Ahead of the newer record, in their order, still waiting for their retry.
        assert_eq!(data(&buffer), [vec!["1", "3"], vec!["4"]]);
        assert_eq!(
            buffer.ready[0].not_before,
            Some(now + Duration::from_secs(2))
        );
        assert!(buffer.take_expired(soon).is_empty());
    }
}

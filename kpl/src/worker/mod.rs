//! The producer's one background task: buffers user records per predicted shard, aggregates
//! them, collects Kinesis records into PutRecords calls within the shard rate limits, and settles
//! each user record's future from the answers.
//!
//! Every decision reads `tokio::time::Instant`, so tests can run it on paused, virtual time.

mod pending;
mod send;
mod shard;

use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::error::PutError;
use crate::producer::Shared;
use crate::record::Record;
use crate::shard_map::ShardMap;

pub(crate) use pending::Pending;
use send::{Batch, BatchOutcome};
use shard::{Container, ShardBuffer};

/// Most commands handled between two pumps.
const COMMANDS_PER_PUMP: usize = 4096;

/// Messages from producer handles to the worker.
// Nearly every command is a Put: boxing it would add an allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Command {
    /// A new user record.
    Put(Pending),
    /// Send everything buffered now.
    Flush,
    /// Deliver what can be delivered within `timeout`, then give back the rest.
    Shutdown {
        timeout: Duration,
        reply: oneshot::Sender<Vec<Record>>,
    },
}

/// A user record waiting to be retried, ordered by when.
#[derive(Debug)]
struct Retry(Instant, Pending);

impl PartialEq for Retry {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Retry {}
impl PartialOrd for Retry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Retry {
    // Reversed: BinaryHeap is a max-heap and the earliest retry must come first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.cmp(&self.0)
    }
}

pub(crate) struct Worker {
    client: Client,
    shared: Arc<Shared>,
    map: ShardMap,
    shards: HashMap<Arc<str>, ShardBuffer>,
    /// The buffers of `shards` whose shard closed, until they are re-routed (usually none, so
    /// `accept` pays nothing for them).
    closed: Vec<Arc<str>>,
    /// Records whose shard is unknown until the map is refreshed (gaps in the hash space).
    unrouted: Vec<Pending>,
    retries: BinaryHeap<Retry>,
    in_flight: JoinSet<BatchOutcome>,
    /// Containers that landed on an unexpected shard, to check once the map is fresh.
    unverified: Vec<(Container, String, String)>,
    refreshing: Option<tokio::task::JoinHandle<Result<ShardMap, String>>>,
    /// When to read the shard map again after a failed refresh, and how many failed in a row.
    map_retry: Option<(Instant, u32)>,
    flush_requested: bool,
    closing: Option<Closing>,
}

struct Closing {
    deadline: Instant,
    reply: oneshot::Sender<Vec<Record>>,
}

impl Worker {
    pub(crate) fn new(client: Client, shared: Arc<Shared>, map: ShardMap) -> Self {
        Self {
            client,
            shared,
            map,
            shards: HashMap::new(),
            closed: Vec::new(),
            unrouted: Vec::new(),
            retries: BinaryHeap::new(),
            in_flight: JoinSet::new(),
            unverified: Vec::new(),
            refreshing: None,
            map_retry: None,
            flush_requested: false,
            closing: None,
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut commands_open = true;
        loop {
            let now = Instant::now();
            self.pump(now);
            if let Some(closing) = &self.closing
                && (self.is_idle() || (now >= closing.deadline && self.in_flight.is_empty()))
            {
                self.finish_shutdown();
                return;
            }
            if !commands_open && self.closing.is_none() && self.is_idle() {
                return; // every handle is gone and nothing is left to deliver
            }
            let wake = self.next_wake(now);
            tokio::select! {
                command = commands.recv(), if commands_open => match command {
                    Some(command) => {
                        self.on_command(command);
                        // Take what else is queued before pumping: pumping looks at every
                        // shard, so doing it per record would make the worker fall behind.
                        for _ in 0..COMMANDS_PER_PUMP {
                            match commands.try_recv() {
                                Ok(command) => self.on_command(command),
                                Err(_) => break,
                            }
                        }
                    }
                    None => commands_open = false,
                },
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    match done {
                        Ok(outcome) => {
                            self.on_outcome(outcome);
                            self.reroute_closed();
                        }
                        Err(error) => tracing::error!(%error, "a PutRecords task failed"),
                    }
                }
                refreshed = async { self.refreshing.as_mut().expect("guarded").await }, if self.refreshing.is_some() => {
                    self.refreshing = None;
                    self.on_map(refreshed.unwrap_or_else(|e| Err(e.to_string())));
                }
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Put(pending) => self.accept(pending),
            Command::Flush => self.flush_requested = true,
            Command::Shutdown { timeout, reply } => {
                self.flush_requested = true;
                self.closing = Some(Closing {
                    deadline: Instant::now() + timeout,
                    reply,
                });
            }
        }
    }

    /// Takes a new (or retried) user record: to its predicted shard's buffer, or, keeping
    /// per-key order, behind the older records of a closed shard that covered its key.
    fn accept(&mut self, pending: Pending) {
        let config = &self.shared.config;
        if config.preserve_order
            // The newest closed shard of the key: a closed child holds newer records than its
            // closed parent (ids are zero-padded, so they order as they were created).
            && let Some(id) = self
                .closed
                .iter()
                .filter(|id| self.map.find(id).is_some_and(|r| r.contains(pending.hash)))
                .max()
            && let Some(parent) = self.shards.get_mut(id)
        {
            // The key's shard closed but still holds older records of it, in flight or queued:
            // queue behind them, or a child could take this record first. They all move to the
            // children, in order, once nothing of the closed shard is in flight.
            parent.add(pending, config);
            return;
        }
        self.route(pending);
    }

    /// Routes a user record to the open shard its hash key falls in, whatever is still queued
    /// for a closed shard: for records older than everything queued there.
    fn route(&mut self, pending: Pending) {
        let config = &self.shared.config;
        let Some(range) = self.map.route(pending.hash) else {
            self.unrouted.push(pending);
            self.refresh_map();
            return;
        };
        let id = range.id.clone();
        // An AUTO stream's one buffer has the rate of all the shards it spreads over.
        let rate = self.map.buffer_rate(config.rate_limit);
        let buffer = self
            .shards
            .entry(id.clone())
            .or_insert_with(|| ShardBuffer::new(id, rate, Instant::now()));
        buffer.add(pending, config);
    }

    /// Does everything that is due at `now`: retries, expiries, sealing and sending.
    fn pump(&mut self, now: Instant) {
        while self.retries.peek().is_some_and(|r| r.0 <= now) {
            let Retry(_, pending) = self.retries.pop().expect("peeked");
            self.accept(pending);
        }
        if self.unrouted.iter().any(|p| p.expires <= now) {
            // Waiting for a shard map that keeps not covering their hash keys.
            let (expired, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unrouted)
                .into_iter()
                .partition(|p| p.expires <= now);
            self.unrouted = waiting;
            expired.into_iter().for_each(Pending::expire);
        }
        if self.map_retry.is_some_and(|(at, _)| at <= now) && self.refreshing.is_none() {
            if self.unrouted.is_empty() && self.unverified.is_empty() {
                self.map_retry = None; // nothing waits for the map any more
            } else {
                self.refresh_map();
            }
        }
        if self.map.is_stale(now) && self.refreshing.is_none() && self.map_retry.is_none() {
            self.refresh_map();
        }
        self.expire_unverified(now);
        let flush = self.flush_requested || self.closing.is_some();
        self.flush_requested = false;
        let config = self.shared.config.clone();
        for buffer in self.shards.values_mut() {
            for expired in buffer.take_expired(now) {
                expired.expire();
            }
            buffer.seal_due(now, flush, &config);
        }
        let sending_allowed = self.closing.as_ref().is_none_or(|c| now < c.deadline);
        while sending_allowed && self.in_flight.len() < config.max_connections {
            let Some(batch) = Batch::collect(&mut self.shards, &config, now, flush) else {
                break;
            };
            let client = self.client.clone();
            let stream = self.shared.stream.clone();
            let timeout = config.request_timeout;
            let metrics = self.shared.metrics.clone();
            self.in_flight
                .spawn(batch.send(client, stream, timeout, metrics));
        }
    }

    /// When the worker must look again if nothing happens before.
    fn next_wake(&self, now: Instant) -> Instant {
        let config = &self.shared.config;
        let mut wake = now + Duration::from_secs(1);
        if let Some(retry) = self.retries.peek() {
            wake = wake.min(retry.0);
        }
        if let Some((at, _)) = self.map_retry.filter(|_| self.refreshing.is_none()) {
            wake = wake.min(at);
        }
        for buffer in self.shards.values() {
            if let Some(at) = buffer.next_due(config, now) {
                wake = wake.min(at);
            }
        }
        if let Some(closing) = &self.closing {
            wake = wake.min(closing.deadline);
        }
        wake.max(now + Duration::from_micros(100))
    }

    fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
            && self.retries.is_empty()
            && self.unrouted.is_empty()
            && self.unverified.is_empty()
            && self.shards.values().all(ShardBuffer::is_empty)
    }

    /// Schedules a user record for another attempt, or fails it if it would outlive its TTL.
    fn retry(&mut self, mut pending: Pending, now: Instant) {
        let Some(delay) = pending.next_backoff() else {
            return pending.expire();
        };
        let at = now + delay;
        if at >= pending.expires {
            return pending.expire();
        }
        pending.deadline = at;
        self.retries.push(Retry(at, pending));
    }

    fn refresh_map(&mut self) {
        if self.refreshing.is_some() {
            return;
        }
        let client = self.client.clone();
        let stream = self.shared.stream.clone();
        // Bounded like a PutRecords call: records waiting for the map (unrouted, or landed
        // elsewhere) would otherwise wait for a hung ListShards forever, holding their permits.
        let timeout = self.shared.config.request_timeout;
        self.refreshing = Some(tokio::spawn(async move {
            tokio::time::timeout(timeout, ShardMap::load(&client, &stream))
                .await
                .unwrap_or_else(|_| Err(format!("ListShards: no answer within {timeout:?}")))
        }));
    }

    fn on_map(&mut self, map: Result<ShardMap, String>) {
        let map = match map {
            Ok(map) => map,
            Err(error) => {
                tracing::warn!(%error, "could not refresh the shard map; retrying");
                // Everything waiting for the map keeps waiting, within its TTL: records that
                // landed on an unexpected shard were written (sending them again would
                // duplicate them, and, under `preserve_order`, let newer records of their keys
                // go first), and records without a shard keep their order.
                let config = &self.shared.config;
                let failures = self.map_retry.map_or(0, |(_, n)| n).saturating_add(1);
                let delay = config
                    .retry_min_delay
                    .saturating_mul(1 << failures.min(16).saturating_sub(1))
                    .min(config.retry_max_delay);
                self.map_retry = Some((Instant::now() + delay, failures));
                return;
            }
        };
        self.map_retry = None;
        tracing::debug!(shards = map.open_count(), "refreshed the shard map");
        self.map = map;
        for (id, buffer) in self.shards.iter_mut() {
            if !buffer.closed && self.map.find(id).is_none_or(|s| !s.open) {
                buffer.closed = true;
                self.closed.push(id.clone());
            }
        }
        // Oldest first, so each key keeps its order: aggregates sent before anything still
        // buffered are settled (and, if they straddle shards, routed again) first; then the
        // records buffered for shards that closed; then records that had no shard.
        for (container, shard_id, sequence_number) in std::mem::take(&mut self.unverified) {
            self.release_hold(&container);
            self.verify(container, shard_id, sequence_number);
        }
        self.reroute_closed();
        for pending in std::mem::take(&mut self.unrouted) {
            self.accept(pending);
        }
    }

    /// Routes the records of closed shards' buffers to the open shards, once nothing of theirs
    /// is in flight or awaiting the map, so no older record can be overtaken by a newer one.
    pub(super) fn reroute_closed(&mut self) {
        let mut idle: Vec<Arc<str>> = self
            .shards
            .iter()
            .filter(|(_, buffer)| buffer.can_reroute())
            .map(|(id, _)| id.clone())
            .collect();
        // Parents before children (shard ids grow with each reshard): older records first.
        idle.sort();
        self.closed.retain(|id| !idle.contains(id));
        for id in idle {
            if let Some(buffer) = self.shards.remove(&id) {
                for pending in buffer.into_pending() {
                    // Not `accept`: a closed child still queued holds newer records than these.
                    self.route(pending);
                }
            }
        }
    }

    /// Fails the records waiting for the shard map to confirm where they landed once the
    /// first of them is past its TTL (the map could not be read in time). A Kinesis record is
    /// settled whole: its user records' sub-sequence numbers are their places in it.
    fn expire_unverified(&mut self, now: Instant) {
        let due = |c: &Container| c.users.iter().any(|u| u.expires <= now);
        if !self.unverified.iter().any(|(c, _, _)| due(c)) {
            return;
        }
        let (expired, waiting) = std::mem::take(&mut self.unverified)
            .into_iter()
            .partition::<Vec<_>, _>(|(c, _, _)| due(c));
        self.unverified = waiting;
        for (container, _, _) in expired {
            self.release_hold(&container);
            for mut user in container.users {
                user.note_error(
                    "ShardMapUnavailable",
                    "the record landed on a shard the producer could not check in time",
                );
                user.expire();
            }
        }
    }

    fn release_hold(&mut self, container: &Container) {
        if let Some(buffer) = self.shards.get_mut(&container.shard) {
            buffer.awaiting_map = buffer.awaiting_map.saturating_sub(1);
        }
    }

    /// Settles an aggregate that landed on an unexpected shard: delivered if every user record
    /// belongs to that shard, else retried (consumers drop an aggregate that straddles shards).
    fn verify(&mut self, container: Container, shard_id: String, sequence_number: String) {
        let fits = self
            .map
            .find(&shard_id)
            .is_some_and(|shard| container.users.iter().all(|u| shard.contains(u.hash)));
        if fits {
            container.deliver(&shard_id, &sequence_number);
        } else {
            tracing::debug!(shard = %shard_id, "aggregate landed across shards; re-aggregating");
            // Kinesis did not fail these records: they are routed again at once, ahead of
            // anything newer for their shards.
            for mut pending in container.users {
                pending.note_error(
                    "WrongShard",
                    "the aggregate landed on a shard that does not own all its records",
                );
                // Older than anything queued for the closed shard: ahead of it, not behind.
                self.route(pending);
            }
        }
    }

    fn finish_shutdown(&mut self) {
        let Some(closing) = self.closing.take() else {
            return;
        };
        let mut leftover: Vec<Pending> = std::mem::take(&mut self.unrouted);
        leftover.extend(self.retries.drain().map(|Retry(_, p)| p));
        for (container, _, _) in self.unverified.drain(..) {
            leftover.extend(container.users);
        }
        for (_, buffer) in self.shards.drain() {
            leftover.extend(buffer.into_pending());
        }
        let records = leftover
            .into_iter()
            .map(|p| p.fail_returning(PutError::Shutdown))
            .collect();
        let _ = closing.reply.send(records);
    }
}

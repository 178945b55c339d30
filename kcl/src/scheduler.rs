//! The worker: holds leases, runs a consumer per held lease, balances with the fleet.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::config::Config;
use crate::consumer::{self, Context, Exit};
use crate::error::{Error, Result};
use crate::leases::held::HeldLease;
use crate::leases::taker::{self, Observations, TakerSettings};
use crate::leases::{Lease, LeaseTable};
use crate::processor::RecordProcessorFactory;
use crate::retrieval::StreamRef;
use crate::shard_sync;

/// A worker of a consumer application. Build it with [`Scheduler::new`], drive it with
/// [`Scheduler::run`], stop it with [`Scheduler::shutdown`].
pub struct Scheduler<F: RecordProcessorFactory> {
    ctx: Context,
    worker_id: String,
    factory: Arc<F>,
    stop: watch::Sender<bool>,
    take_now: Arc<Notify>,
}

impl<F: RecordProcessorFactory> std::fmt::Debug for Scheduler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("worker_id", &self.worker_id)
            .field("table", &self.ctx.table.name())
            .field("stream", &self.ctx.stream)
            .finish_non_exhaustive()
    }
}

struct Running {
    lease: Arc<HeldLease>,
    stop: watch::Sender<bool>,
}

impl<F: RecordProcessorFactory> Scheduler<F> {
    /// A worker `worker_id` of application `application_name` (also the lease table's name unless
    /// [`Config::table_name`] says otherwise) reading `stream` (a name or an ARN).
    pub fn new(
        kinesis: aws_sdk_kinesis::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        application_name: &str,
        stream: &str,
        worker_id: &str,
        factory: F,
        config: Config,
    ) -> Result<Self> {
        if application_name.is_empty() || worker_id.is_empty() || stream.is_empty() {
            return Err(Error::Config(
                "application name, stream and worker id must not be empty".into(),
            ));
        }
        if config.failover_time.is_zero() {
            return Err(Error::Config("failover time must be positive".into()));
        }
        let table_name = config
            .table_name
            .clone()
            .unwrap_or_else(|| application_name.to_owned());
        Ok(Self {
            ctx: Context {
                kinesis,
                stream: StreamRef::parse(stream),
                table: LeaseTable::new(dynamodb, table_name),
                config: Arc::new(config),
            },
            worker_id: worker_id.to_owned(),
            factory: Arc::new(factory),
            stop: watch::channel(false).0,
            take_now: Arc::new(Notify::new()),
        })
    }

    /// This worker's id (the `leaseOwner` it writes).
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The lease table.
    pub fn lease_table(&self) -> &LeaseTable {
        &self.ctx.table
    }

    /// Asks [`run`](Self::run) to stop gracefully: no more leases are taken, every processor gets
    /// `shutdown_requested` (and may checkpoint), then the leases are given up so other workers
    /// take them at once. Bounded by [`Config::shutdown_timeout`].
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Runs the worker until [`shutdown`](Self::shutdown). Dropping the future stops everything
    /// at once without giving leases up (as a crash would: others take them after failover).
    pub async fn run(&self) -> Result<()> {
        let config = self.ctx.config.clone();
        self.ctx
            .table
            .create_if_not_exists(config.table_creation_timeout)
            .await?;
        let mut state = State {
            held: HashMap::new(),
            consumers: JoinSet::new(),
            tasks: HashMap::new(),
            seen: Observations::default(),
            finished_since: HashMap::new(),
            next_expiry: None,
        };
        let mut stop = self.stop.subscribe();
        let mut renew = tokio::time::interval(config.renewal_interval());
        renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut take = tokio::time::interval(config.lease_taker_interval());
        take.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut sync = tokio::time::interval(config.shard_sync_interval);
        sync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        renew.tick().await;
        let mut needs_sync = true;
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => break,
                _ = renew.tick() => self.renew_all(&state).await,
                Some(done) = state.consumers.join_next_with_id() => {
                    let Some((key, exit)) = state.outcome(done) else { continue };
                    self.finished(&mut state, &key, exit).await;
                    if exit == Exit::ShardEnded {
                        // Children may be ready now: look at once rather than next period.
                        self.take_now.notify_one();
                    }
                }
                _ = sync.tick() => needs_sync = true,
                _ = take.tick() => self.take_round(&mut state, &mut needs_sync).await,
                _ = self.take_now.notified() => self.take_round(&mut state, &mut needs_sync).await,
                _ = until(state.next_expiry) => self.take_round(&mut state, &mut needs_sync).await,
            }
        }
        self.graceful_stop(state).await;
        Ok(())
    }

    async fn renew_all(&self, state: &State) {
        let renewals = state.held.values().map(|r| r.lease.renew());
        let results = futures::future::join_all(renewals).await;
        let held = results.iter().filter(|ok| **ok).count();
        metrics::gauge!("CurrentLeases", "worker" => self.worker_id.clone()).set(held as f64);
    }

    async fn take_round(&self, state: &mut State, needs_sync: &mut bool) {
        let leases = match self.ctx.table.list().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing leases failed");
                return;
            }
        };
        if *needs_sync {
            match self.sync_shards(&leases).await {
                Ok(0) => *needs_sync = false,
                // New leases: take from a fresh scan right away.
                Ok(_) => {
                    *needs_sync = false;
                    self.take_now.notify_one();
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "shard sync failed"),
            }
        }
        let now = Instant::now();
        state.seen.update(&leases, now);
        let config = &self.ctx.config;
        let held: HashSet<String> = state.held.keys().cloned().collect();
        let plan = taker::plan(
            &self.worker_id,
            &held,
            &leases,
            &state.seen,
            now,
            TakerSettings {
                failover: config.failover_time,
                max_leases_for_worker: config.max_leases_for_worker,
                max_leases_to_steal_at_one_time: config.max_leases_to_steal_at_one_time,
            },
        );
        metrics::gauge!("NumWorkers").set(plan.workers as f64);
        metrics::gauge!("TotalLeases").set(plan.total as f64);
        metrics::gauge!("ExpiredLeases").set(plan.expired as f64);
        metrics::gauge!("NeededLeases").set(plan.target.saturating_sub(state.held.len()) as f64);
        state.next_expiry =
            state
                .seen
                .next_expiry(&leases, &self.worker_id, now, config.failover_time);
        let by_key: HashMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
        let mut lost_a_take = false;
        for (stolen, list) in [(false, &plan.take), (true, &plan.steal)] {
            for (key, counter) in list {
                let Some(lease) = by_key.get(key.as_str()) else {
                    continue;
                };
                match self
                    .ctx
                    .table
                    .take(key, &self.worker_id, *counter, lease.owner.as_deref())
                    .await
                {
                    Ok(true) => {
                        let name = if stolen {
                            "StolenLeases"
                        } else {
                            "TakenLeases"
                        };
                        metrics::counter!(name, "worker" => self.worker_id.clone()).increment(1);
                        tracing::info!(shard = %key, stolen, previous = ?lease.owner, worker = %self.worker_id, "took lease");
                        let mut lease = (*lease).clone();
                        lease.counter = counter + 1;
                        lease.owner = Some(self.worker_id.clone());
                        let delay = if stolen {
                            config.stolen_lease_start_delay()
                        } else {
                            Duration::ZERO
                        };
                        self.start_consumer(state, lease, delay);
                    }
                    Ok(false) => {
                        tracing::debug!(shard = %key, "lost the race for a lease");
                        lost_a_take |= !stolen;
                    }
                    Err(e) => tracing::warn!(shard = %key, error = %e, "taking a lease failed"),
                }
            }
        }
        self.clean_up(state, &leases, now).await;
        if lost_a_take {
            // Another worker took that free lease first; others expired at the same moment may
            // still be free, and `next_expiry` no longer points at them: look again at once
            // rather than a renewal interval later. Each lost race means a lease went to another
            // worker, so this ends.
            self.take_now.notify_one();
        }
    }

    async fn sync_shards(&self, leases: &[Lease]) -> Result<usize> {
        let shards = shard_sync::list_shards(&self.ctx.kinesis, &self.ctx.stream).await?;
        shard_sync::create_missing_leases(
            &self.ctx.table,
            &shards,
            leases,
            self.ctx.config.initial_position,
        )
        .await
    }

    /// Deletes finished leases once all their children have leases and the retention passed.
    async fn clean_up(&self, state: &mut State, leases: &[Lease], now: Instant) {
        let keys: HashSet<&str> = leases.iter().map(|l| l.key.as_str()).collect();
        let retention = self.ctx.config.finished_lease_retention;
        let mut still_finished = HashMap::new();
        for lease in leases.iter().filter(|l| l.is_finished()) {
            let children_ready = !lease.child_shard_ids.is_empty()
                && lease
                    .child_shard_ids
                    .iter()
                    .all(|c| keys.contains(c.as_str()));
            if !children_ready {
                continue;
            }
            let since = state.finished_since.get(&lease.key).copied().unwrap_or(now);
            if now.saturating_duration_since(since) >= retention {
                match self.ctx.table.delete(&lease.key).await {
                    Ok(()) => tracing::info!(shard = %lease.key, "deleted finished lease"),
                    Err(e) => {
                        tracing::warn!(shard = %lease.key, error = %e, "deleting lease failed")
                    }
                }
            } else {
                still_finished.insert(lease.key.clone(), since);
            }
        }
        state.finished_since = still_finished;
    }

    fn start_consumer(&self, state: &mut State, lease: Lease, delay: Duration) {
        let held = HeldLease::new(
            self.ctx.table.clone(),
            lease.key.clone(),
            self.worker_id.clone(),
            lease.counter,
            self.ctx.config.failover_time,
        );
        let (stop, stop_rx) = watch::channel(false);
        let processor = self.factory.create(&lease.key);
        let span = tracing::info_span!("shard", shard_id = %lease.key, worker = %self.worker_id);
        let key = lease.key.clone();
        let ctx = self.ctx.clone();
        let task_lease = held.clone();
        let task = state.consumers.spawn(
            async move {
                let exit = consumer::run(ctx, task_lease, lease, processor, stop_rx, delay).await;
                (key, exit)
            }
            .instrument(span),
        );
        state.tasks.insert(task.id(), held.key.clone());
        state
            .held
            .insert(held.key.clone(), Running { lease: held, stop });
    }

    async fn finished(&self, state: &mut State, key: &str, exit: Exit) {
        let Some(running) = state.held.remove(key) else {
            return;
        };
        tracing::debug!(shard = %key, ?exit, "consumer finished");
        if matches!(exit, Exit::Shutdown | Exit::Failed)
            && let Err(e) = running.lease.evict().await
        {
            tracing::warn!(shard = %key, error = %e, "giving the lease up failed");
        }
    }

    async fn graceful_stop(&self, mut state: State) {
        tracing::info!(worker = %self.worker_id, leases = state.held.len(), "shutting down");
        for running in state.held.values() {
            running.stop.send_replace(true);
        }
        let deadline = tokio::time::sleep(self.ctx.config.shutdown_timeout);
        tokio::pin!(deadline);
        let mut renew = tokio::time::interval(self.ctx.config.renewal_interval());
        renew.tick().await;
        while !state.held.is_empty() {
            tokio::select! {
                _ = &mut deadline => {
                    tracing::warn!(remaining = state.held.len(), "shutdown timed out; aborting processors");
                    state.consumers.abort_all();
                    break;
                }
                // Keep the leases alive while processors write their final checkpoints.
                _ = renew.tick() => self.renew_all(&state).await,
                done = state.consumers.join_next_with_id() => match done {
                    Some(done) => {
                        if let Some((key, exit)) = state.outcome(done) {
                            self.finished(&mut state, &key, exit).await;
                        }
                    }
                    None => break,
                },
            }
        }
        for (key, running) in state.held.drain() {
            if let Err(e) = running.lease.evict().await {
                tracing::warn!(shard = %key, error = %e, "giving the lease up failed");
            }
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

struct State {
    held: HashMap<String, Running>,
    consumers: JoinSet<(String, Exit)>,
    /// Shard of each consumer task, to release the lease of a consumer that panicked.
    tasks: HashMap<tokio::task::Id, String>,
    seen: Observations,
    finished_since: HashMap<String, Instant>,
    /// When a lease of another worker expires unless renewed.
    next_expiry: Option<Instant>,
}

impl State {
    /// The shard and exit of a finished consumer task; a panicked processor counts as failed, so
    /// its lease is given up and the shard retried rather than left renewed but idle.
    fn outcome(
        &mut self,
        done: std::result::Result<(tokio::task::Id, (String, Exit)), tokio::task::JoinError>,
    ) -> Option<(String, Exit)> {
        match done {
            Ok((id, outcome)) => {
                self.tasks.remove(&id);
                Some(outcome)
            }
            Err(e) => {
                let key = self.tasks.remove(&e.id())?;
                if e.is_panic() {
                    tracing::error!(shard = %key, "record processor panicked");
                }
                Some((key, Exit::Failed))
            }
        }
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

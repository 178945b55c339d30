//! The worker: holds leases, runs a consumer per held lease, balances with the fleet.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::builder::SchedulerBuilder;
use crate::config::{Config, Retrieval};
use crate::consumer::{self, Context, Exit};
use crate::error::{Error, Result};
use crate::leases::held::{self, HeldLease, LeaseTiming};
use crate::leases::taker::Observations;
use crate::leases::{Lease, LeaseTable};
use crate::processor::RecordProcessorFactory;
use crate::retrieval::StreamRef;
use crate::shard_sync;
use crate::streams::StreamTracker;

mod multi;
mod taking;
use multi::Multi;

/// The stream, or the streams, a scheduler reads.
pub(crate) enum Streams {
    /// One stream: leases keyed by shard id.
    One(String),
    /// A multi-stream application: leases keyed `account:stream:creationEpoch:shardId`.
    Tracked(Box<dyn StreamTracker>),
}

/// A worker of a consumer application. Build it with [`Scheduler::builder`] (or the short
/// [`Scheduler::new`]), drive it with
/// [`Scheduler::run`], stop it with [`Scheduler::shutdown`].
pub struct Scheduler<F: RecordProcessorFactory> {
    ctx: Context,
    application_name: String,
    worker_id: String,
    factory: Arc<F>,
    stop: watch::Sender<bool>,
    take_now: Arc<Notify>,
    /// `Some` in a multi-stream application.
    multi: Option<Multi>,
}

impl<F: RecordProcessorFactory> std::fmt::Debug for Scheduler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("worker_id", &self.worker_id)
            .field("table", &self.ctx.table.name())
            .field("streams", &self.streams())
            .finish_non_exhaustive()
    }
}

struct Running {
    lease: Arc<HeldLease>,
    /// The lease's stream identifier, in a multi-stream application.
    stream: Option<String>,
    stop: watch::Sender<bool>,
    /// The lease's renewal task, stopped when the lease is dropped from the running set.
    _renewal: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the main loop does next.
enum Event {
    Done(std::result::Result<(tokio::task::Id, (String, Exit)), tokio::task::JoinError>),
    Take,
}

impl<F: RecordProcessorFactory> Scheduler<F> {
    /// Starts a [`SchedulerBuilder`], which names every setting:
    /// `Scheduler::builder().application("app").stream("s").worker_id("w").kinesis(k)
    /// .dynamodb(d).processor_factory(f).config(c).build()`.
    pub fn builder() -> SchedulerBuilder<F> {
        SchedulerBuilder::default()
    }

    /// The short form of [`Scheduler::builder`]: a worker `worker_id` of application
    /// `application_name` (also the lease table's name unless [`Config::table_name`] says
    /// otherwise) reading `stream` (a name or an ARN). Checks the same as
    /// [`SchedulerBuilder::build`]; prefer the builder, whose settings are named.
    pub fn new(
        kinesis: aws_sdk_kinesis::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        application_name: &str,
        stream: &str,
        worker_id: &str,
        factory: F,
        config: Config,
    ) -> Result<Self> {
        Self::builder()
            .kinesis(kinesis)
            .dynamodb(dynamodb)
            .application(application_name)
            .stream(stream)
            .worker_id(worker_id)
            .processor_factory(factory)
            .config(config)
            .build()
    }

    /// A scheduler from settings [`SchedulerBuilder::build`] checked.
    pub(crate) fn from_parts(
        kinesis: aws_sdk_kinesis::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        application_name: String,
        streams: Streams,
        worker_id: String,
        factory: F,
        config: Config,
    ) -> Self {
        let (stream, multi) = match streams {
            Streams::One(stream) => (StreamRef::parse(&stream), None),
            Streams::Tracked(tracker) => (
                // Unused: each consumer gets its lease's stream.
                StreamRef::Name(String::new()),
                Some(Multi {
                    tracker,
                    streams: std::sync::Mutex::default(),
                }),
            ),
        };
        let table_name = config
            .table_name
            .clone()
            .unwrap_or_else(|| application_name.clone());
        let metrics = crate::metrics::Scope::application(&application_name, config.metrics_level);
        let consumer_name = match &config.retrieval {
            Retrieval::FanOut(f) => f.consumer_name.clone(),
            Retrieval::Polling => None,
        }
        .unwrap_or_else(|| application_name.clone());
        Self {
            ctx: Context {
                metrics,
                kinesis,
                stream,
                table: LeaseTable::new(dynamodb, table_name).with_timeout(config.dynamodb_timeout),
                config: Arc::new(config),
                consumer_arn: Default::default(),
                consumer_name,
                distribution: Default::default(),
            },
            application_name,
            worker_id,
            factory: Arc::new(factory),
            stop: watch::channel(false).0,
            take_now: Arc::new(Notify::new()),
            multi,
        }
    }

    /// The streams read now: the one stream, or in a multi-stream application those the tracker
    /// returned at the last shard sync (sorted).
    pub fn streams(&self) -> Vec<String> {
        match &self.multi {
            None => vec![self.ctx.stream.as_str().to_owned()],
            Some(multi) => {
                let mut names: Vec<String> = multi
                    .lock()
                    .active
                    .values()
                    .map(|t| t.name.clone())
                    .collect();
                names.sort();
                names
            }
        }
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
    /// take them at once. `run` returns within [`Config::shutdown_timeout`] plus one
    /// [`Config::dynamodb_timeout`], even when DynamoDB does not answer at all (the leases are
    /// then left to expire).
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Runs the worker until [`shutdown`](Self::shutdown). Dropping the future stops everything
    /// at once without giving leases up (as a crash would: others take them after failover).
    ///
    /// Start-up (creating or describing the lease table, the first shard listing) is retried
    /// with backoff, [`Config::startup_attempts`] times, when it fails with a retryable error.
    ///
    /// A shard whose reads fail with an error trying again cannot fix (access denied, the stream
    /// deleted, a refused argument) has its consumer stopped (the processor gets
    /// [`read_failed`](crate::RecordProcessor::read_failed), `ReadFailures.NonRetryable` is
    /// counted, the error logged) and its lease given up; this worker does not take it again.
    /// Once every unfinished lease of the stream failed so here, `run` stops gracefully and
    /// returns [`Error::ReadFailed`].
    pub async fn run(&self) -> Result<()> {
        let config = self.ctx.config.clone();
        let mut stop = self.stop.subscribe();
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => return Ok(()),
            started = self.start_up() => started?,
        }
        let mut state = State {
            held: HashMap::new(),
            consumers: JoinSet::new(),
            tasks: HashMap::new(),
            seen: Observations::default(),
            finished_since: HashMap::new(),
            next_expiry: None,
            cooling: HashMap::new(),
            unreadable: HashMap::new(),
        };
        let mut take = tokio::time::interval(config.lease_taker_interval());
        take.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut sync = tokio::time::interval(config.shard_sync_interval);
        sync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The start-up sync just ran.
        sync.tick().await;
        let mut needs_sync = false;
        // Renewals run in one task per lease (see `start_consumer`), so nothing here delays them.
        loop {
            let event = tokio::select! {
                biased;
                _ = stopped(&mut stop) => break,
                Some(done) = state.consumers.join_next_with_id() => Event::Done(done),
                _ = sync.tick() => {
                    needs_sync = true;
                    continue;
                }
                _ = take.tick() => Event::Take,
                _ = self.take_now.notified() => Event::Take,
                _ = until(state.next_expiry) => Event::Take,
            };
            match event {
                Event::Done(done) => {
                    let Some((key, exit)) = state.outcome(done) else {
                        continue;
                    };
                    // Children may be ready now, or a failed shard may leave nothing to read:
                    // look at once rather than next period.
                    let look_again = matches!(exit, Exit::ShardEnded | Exit::ReadFailed(_));
                    self.finished(&mut state, &key, exit).await;
                    if look_again {
                        self.take_now.notify_one();
                    }
                }
                // A round makes several calls, each bounded; a shutdown request cuts it short.
                Event::Take => {
                    let failed = tokio::select! {
                        biased;
                        _ = stopped(&mut stop) => break,
                        failed = self.take_round(&mut state, &mut needs_sync) => failed,
                    };
                    if let Some(error) = failed {
                        tracing::error!(error = %error, worker = %self.worker_id, "no shard of the stream can be read; stopping");
                        self.graceful_stop(state).await;
                        return Err(error);
                    }
                }
            }
        }
        self.graceful_stop(state).await;
        Ok(())
    }

    /// Creates the lease table if needed and creates the leases of the stream's shards, each
    /// step retried with backoff when it fails with a retryable error.
    async fn start_up(&self) -> Result<()> {
        let config = &self.ctx.config;
        retry_start_up(config.startup_attempts, "creating the lease table", || {
            self.ctx
                .table
                .create_if_not_exists(config.table_creation_timeout)
        })
        .await?;
        if let Retrieval::FanOut(fan_out) = &config.retrieval
            && self.multi.is_none()
            && self.ctx.consumer_arn.get().is_none()
        {
            let name = self.consumer_name().unwrap_or_default();
            let arn = retry_start_up(
                config.startup_attempts,
                "registering the stream consumer",
                || {
                    crate::retrieval::register_consumer(
                        &self.ctx.kinesis,
                        &self.ctx.stream,
                        &name,
                        config.kinesis_timeout,
                        fan_out.activation_timeout,
                    )
                },
            )
            .await?;
            tracing::info!(consumer = %name, arn = %arn, "reading through enhanced fan-out");
            self.ctx.consumer_arn.set(arn);
        }
        retry_start_up(config.startup_attempts, "shard sync", || self.sync_shards()).await?;
        Ok(())
    }

    /// The enhanced fan-out consumer's name ([`FanOutConfig::consumer_name`], else the
    /// application name); `None` when polling.
    ///
    /// [`FanOutConfig::consumer_name`]: crate::config::FanOutConfig::consumer_name
    pub fn consumer_name(&self) -> Option<String> {
        match &self.ctx.config.retrieval {
            Retrieval::Polling => None,
            Retrieval::FanOut(f) => Some(
                f.consumer_name
                    .clone()
                    .unwrap_or_else(|| self.application_name.clone()),
            ),
        }
    }

    /// The enhanced fan-out consumer's ARN, once [`run`](Self::run) has registered it (or found
    /// it registered); a new one once it registered it again after someone deregistered it.
    pub fn consumer_arn(&self) -> Option<String> {
        self.ctx.consumer_arn.get()
    }

    fn set_current_leases(&self, state: &State) {
        self.worker_metrics()
            .gauge(crate::metrics::CURRENT_LEASES)
            .set(state.held.len() as f64);
    }

    /// The scope of this worker's own metrics (labels `application`, `worker`).
    fn worker_metrics(&self) -> crate::metrics::Scope {
        self.ctx.metrics.worker(&self.worker_id)
    }

    /// Lists the shards, then scans the leases (in that order, so the scan is at least as new as
    /// the listing), then creates the missing leases, parents first.
    async fn sync_shards(&self) -> Result<usize> {
        if let Some(multi) = &self.multi {
            return self.sync_streams(multi).await;
        }
        // The strategy can change (UpdateStreamRecordDistributionStrategy): learnt each sync.
        self.ctx
            .distribution
            .refresh(
                &self.ctx.kinesis,
                &self.ctx.stream,
                self.ctx.config.kinesis_timeout,
            )
            .await;
        let shards = shard_sync::list_shards(
            &self.ctx.kinesis,
            &self.ctx.stream,
            self.ctx.config.kinesis_timeout,
        )
        .await?;
        let leases = self.ctx.table.list().await?;
        let created = shard_sync::create_missing_leases(
            &self.ctx.table,
            &shards,
            &leases,
            self.ctx.config.initial_position,
        )
        .await?;
        if created > 0 {
            // New leases: take from a fresh scan right away.
            self.take_now.notify_one();
        }
        Ok(created)
    }

    /// The leases of the streams read now: in a multi-stream application those of tracked
    /// streams, else the single-stream (plain shard id) leases.
    fn readable(&self, mut leases: Vec<Lease>) -> Vec<Lease> {
        match &self.multi {
            None => leases.retain(|l| l.stream.is_none()),
            Some(multi) => {
                let tracked = multi.lock();
                leases.retain(|l| {
                    l.stream
                        .as_ref()
                        .is_some_and(|s| tracked.active.contains_key(s))
                });
            }
        }
        leases
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

    /// Runs a consumer for `lease`, taken by a write sent at `sent`, from `start_at` on, and
    /// the lease's renewal task.
    fn start_consumer(&self, state: &mut State, lease: Lease, sent: Instant, start_at: Instant) {
        let config = &self.ctx.config;
        let held = HeldLease::new(
            self.ctx.table.clone(),
            lease.key.clone(),
            self.worker_id.clone(),
            lease.counter,
            sent,
            self.worker_metrics(),
            LeaseTiming {
                validity: config.lease_validity(),
                renewal_timeout: config.renewal_timeout(),
            },
        );
        let renewal = AbortOnDrop(tokio::spawn(
            held::keep_renewed(held.clone(), config.renewal_interval())
                .instrument(tracing::info_span!("renewal", shard_id = %lease.key)),
        ));
        let (stop, stop_rx) = watch::channel(false);
        let processor = self.factory.create(&lease.key);
        let ctx = self.consumer_context(&lease);
        let span = tracing::info_span!("shard", shard_id = %lease.key, worker = %self.worker_id);
        let key = lease.key.clone();
        let stream = lease.stream.clone();
        let task_lease = held.clone();
        let task = state.consumers.spawn(
            async move {
                let exit =
                    consumer::run(ctx, task_lease, lease, processor, stop_rx, start_at).await;
                (key, exit)
            }
            .instrument(span),
        );
        state.tasks.insert(task.id(), held.key.clone());
        state.held.insert(
            held.key.clone(),
            Running {
                lease: held,
                stream,
                stop,
                _renewal: renewal,
            },
        );
        self.set_current_leases(state);
    }

    /// What the consumer of `lease` needs: in a multi-stream application, its stream and that
    /// stream's fan-out consumer.
    fn consumer_context(&self, lease: &Lease) -> Context {
        let mut ctx = self.ctx.clone();
        if let Some(multi) = &self.multi
            && let Some(id) = &lease.stream
            && let Some(tracked) = multi.lock().active.get(id)
        {
            ctx.stream = tracked.stream.clone();
            ctx.consumer_arn = tracked.consumer_arn.clone();
            ctx.distribution = tracked.distribution.clone();
        }
        ctx
    }

    async fn finished(&self, state: &mut State, key: &str, exit: Exit) {
        let Some(running) = state.held.remove(key) else {
            return;
        };
        self.set_current_leases(state);
        tracing::debug!(shard = %key, ?exit, "consumer finished");
        if exit.releases_lease()
            && let Err(e) = running.lease.evict().await
        {
            tracing::warn!(shard = %key, error = %e, "giving the lease up failed");
        }
        match exit {
            Exit::Stuck => {
                // Let another worker have it first; this one's processor may hang again.
                state.cooling.insert(
                    key.to_owned(),
                    Instant::now() + self.ctx.config.failover_time,
                );
            }
            Exit::ReadFailed(error) => {
                state.unreadable.insert(key.to_owned(), error);
            }
            _ => {}
        }
    }

    /// Stops the processors (each may write a final checkpoint), then gives every lease up.
    /// Takes at most the shutdown timeout plus one DynamoDB timeout, whatever DynamoDB does:
    /// renewals go on in their own tasks meanwhile.
    async fn graceful_stop(&self, mut state: State) {
        tracing::info!(worker = %self.worker_id, leases = state.held.len(), "shutting down");
        for running in state.held.values() {
            running.stop.send_replace(true);
        }
        let deadline = tokio::time::sleep(self.ctx.config.shutdown_timeout);
        tokio::pin!(deadline);
        let mut to_release = Vec::new();
        while !state.held.is_empty() {
            tokio::select! {
                _ = &mut deadline => {
                    tracing::warn!(remaining = state.held.len(), "shutdown timed out; aborting processors");
                    state.consumers.abort_all();
                    break;
                }
                done = state.consumers.join_next_with_id() => match done {
                    Some(done) => {
                        if let Some((key, exit)) = state.outcome(done)
                            && let Some(running) = state.held.remove(&key)
                            && exit.releases_lease()
                        {
                            to_release.push(running);
                        }
                    }
                    None => break,
                },
            }
        }
        to_release.extend(state.held.drain().map(|(_, running)| running));
        let releases = to_release.iter().map(|running| async move {
            if let Err(e) = running.lease.evict().await {
                tracing::warn!(shard = %running.lease.key, error = %e, "giving the lease up failed");
            }
        });
        if tokio::time::timeout(
            self.ctx.config.dynamodb_timeout,
            futures::future::join_all(releases),
        )
        .await
        .is_err()
        {
            tracing::warn!("giving leases up timed out; others take them after failover");
        }
        self.set_current_leases(&state);
    }
}

/// Runs a start-up step, trying again with backoff while it fails with a retryable error, at
/// most `attempts` times.
async fn retry_start_up<T, Fut>(
    attempts: usize,
    what: &str,
    mut step: impl FnMut() -> Fut,
) -> Result<T>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut delays = crate::retrieval::backoff(Duration::from_millis(200), Duration::from_secs(5));
    let mut attempt = 1;
    loop {
        match step().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < attempts.max(1) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                tracing::warn!(error = %e, attempt, ?delay, "{what} failed; trying again");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
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
    /// Leases given up because their processor got stuck, not taken back until then.
    cooling: HashMap<String, Instant>,
    /// Leases whose shard failed here with a non-retryable read error, never taken back.
    unreadable: HashMap<String, Error>,
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

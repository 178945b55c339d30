//! One shard's consumer: initialize, deliver batches (under the failure policy), end, stop.

mod delivery;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::types::ChildShard;
use tokio::sync::watch;

use crate::checkpointer::Checkpointer;
use crate::config::{Config, InitialPosition, Retrieval};
use crate::error::Error;
use crate::leases::held::HeldLease;
use crate::leases::{Checkpoint, Lease, LeaseTable};
use crate::metrics;
use crate::processor::{InitializationInput, RecordProcessor};
use crate::retrieval::{
    Fetched, FetcherSettings, StreamRef, SubscriberSettings, backoff, spawn_fetcher,
    spawn_subscriber,
};
/// How a consumer ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// Checkpointed at SHARD_END.
    ShardEnded,
    /// Another worker has the lease.
    LeaseLost,
    /// Graceful shutdown; the lease is still held and should be given up.
    Shutdown,
    /// Reading stopped unexpectedly; the lease should be given up so it is retaken.
    Failed,
    /// A processor call ran past `max_processing_time`; the lease should be given up, and not
    /// taken back by this worker for a while.
    Stuck,
    /// Reading failed with an error trying again cannot fix; the lease should be given up, and
    /// not taken back by this worker.
    ReadFailed(Error),
    /// Another worker asked for the lease (graceful handoff); the processor was told with
    /// `shutdown_requested`, and the lease should now be handed over.
    HandedOff,
}

impl Exit {
    /// Whether the lease is still held and should be given up (evicted) now.
    pub(crate) fn releases_lease(&self) -> bool {
        matches!(
            self,
            Exit::Shutdown | Exit::Failed | Exit::Stuck | Exit::ReadFailed(_) | Exit::HandedOff
        )
    }
}

/// What a consumer needs besides its processor.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub kinesis: aws_sdk_kinesis::Client,
    pub stream: StreamRef,
    pub table: LeaseTable,
    pub config: Arc<Config>,
    /// The fan-out consumer's ARN, set at start-up when retrieval is fan-out.
    pub consumer_arn: crate::retrieval::ConsumerArn,
    /// The fan-out consumer's name, to register it again if someone deregisters it.
    pub consumer_name: String,
    /// The application's metrics.
    pub metrics: metrics::Scope,
    /// The stream's record distribution strategy, as the scheduler last learned it.
    pub distribution: crate::retrieval::Distribution,
}

/// The stream a consumer reads, as the application named it.
fn ctx_stream_name(ctx: &Context) -> String {
    ctx.stream.as_str().to_owned()
}

enum Step {
    Done,
    Stop(Exit),
}

/// How a bounded processor call ended.
enum Outcome<T> {
    Done(T),
    /// The lease was lost meanwhile (the call was cancelled).
    Lost,
    /// The call ran past `max_processing_time` (and was cancelled).
    Stuck,
}

/// Runs a processor call until it returns, the lease is lost, or `limit` passes; the call is
/// cancelled (dropped at its await point) in the last two cases.
async fn bounded<F: std::future::Future>(
    lease: &HeldLease,
    limit: Option<Duration>,
    call: F,
) -> Outcome<F::Output> {
    let stuck = async {
        match limit {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = lease.lost() => Outcome::Lost,
        r = call => Outcome::Done(r),
        _ = stuck => Outcome::Stuck,
    }
}

/// One shard's consumer while it runs.
struct Consumer<P> {
    ctx: Context,
    lease: Arc<HeldLease>,
    processor: P,
    checkpointer: Checkpointer,
    shutdown: watch::Receiver<bool>,
    shard: String,
    /// The lease's stream identifier in a multi-stream application.
    lease_stream: Option<String>,
    /// The shard's metric handles.
    handles: metrics::ShardMetrics,
}

impl<P: RecordProcessor> Consumer<P> {
    /// The exit of a call that did not return.
    async fn interrupted<T>(&mut self, outcome: Outcome<T>, call: &'static str) -> Exit {
        match outcome {
            Outcome::Stuck => {
                let limit = self.ctx.config.max_processing_time.unwrap_or_default();
                self.handles.processing_timeouts.increment(1);
                tracing::warn!(
                    call,
                    ?limit,
                    "record processor call ran past max_processing_time; cancelled it and giving the lease up"
                );
                // Bounded too: a processor hung here must not keep the lease from being released.
                if tokio::time::timeout(limit, self.processor.lease_lost())
                    .await
                    .is_err()
                {
                    tracing::warn!("lease_lost ran past max_processing_time too");
                }
                Exit::Stuck
            }
            Outcome::Lost | Outcome::Done(_) => lost(&mut self.processor).await,
        }
    }

    /// Waits out one backoff of `retry`, cut short by a lost lease or a shutdown request.
    async fn wait<I: Iterator<Item = Duration>>(&mut self, retry: &mut Retry<I>) -> Step {
        retry
            .wait(
                &self.lease,
                &mut self.shutdown,
                &mut self.processor,
                &mut self.checkpointer,
            )
            .await
    }
}

/// Runs `processor` on the shard of `lease` from the checkpoint in `snapshot`.
pub(crate) async fn run<P: RecordProcessor>(
    ctx: Context,
    lease: Arc<HeldLease>,
    snapshot: Lease,
    processor: P,
    mut shutdown: watch::Receiver<bool>,
    start_at: tokio::time::Instant,
) -> Exit {
    if start_at > tokio::time::Instant::now() {
        // Taken from another worker: wait until its lease would have expired on its own. That
        // worker stops before then (at its deadline, or when a renewal finds the lease taken), so
        // the shard is never processed by two workers at once.
        tokio::select! {
            _ = tokio::time::sleep_until(start_at) => {}
            _ = lease.lost() => return Exit::LeaseLost,
            _ = requested(&mut shutdown) => return Exit::Shutdown,
        }
    }
    // The key is `account:stream:epoch:shardId` in a multi-stream application.
    let shard = snapshot.shard_id().to_owned();
    let stream_id = snapshot.stream.as_deref().unwrap_or(ctx.stream.as_str());
    let shard_metrics = ctx.metrics.shard(stream_id, &shard);
    let mut c = Consumer {
        handles: metrics::ShardMetrics::register(&shard_metrics),
        checkpointer: Checkpointer::new(lease.clone(), snapshot.checkpoint.clone()),
        ctx,
        lease,
        processor,
        shutdown,
        shard: shard.clone(),
        lease_stream: snapshot.stream.clone(),
    };
    let init = InitializationInput {
        stream: ctx_stream_name(&c.ctx),
        shard_id: shard.clone(),
        checkpoint: snapshot.checkpoint.clone(),
        pending_checkpoint: snapshot.pending_checkpoint.clone(),
        pending_checkpoint_state: snapshot.pending_checkpoint_state.clone(),
    };
    let limit = c.ctx.config.max_processing_time;
    let mut retry = Retry::new(&c.ctx.config);
    loop {
        let started = std::time::Instant::now();
        let outcome = bounded(&c.lease, limit, c.processor.initialize(init.clone())).await;
        c.handles
            .initialize_time
            .record(started.elapsed().as_secs_f64() * 1000.0);
        let initialized = match outcome {
            Outcome::Done(r) => r,
            other => return c.interrupted(other, "initialize").await,
        };
        match initialized {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "initialize failed; retrying");
                if let Step::Stop(exit) = c.wait(&mut retry).await {
                    return exit;
                }
            }
        }
    }
    let ctx = c.ctx.clone();
    let timestamp = match ctx.config.initial_position {
        InitialPosition::AtTimestamp(t) => Some(t),
        _ => None,
    };
    let deaggregator = crate::retrieval::Deaggregator {
        client: ctx.kinesis.clone(),
        stream: ctx.stream.clone(),
        timeout: ctx.config.kinesis_timeout,
        hash_range: snapshot.hash_range.unwrap_or((0, u128::MAX)),
        distribution: ctx.distribution.clone(),
        dropped: c.handles.aggregated_records_dropped.clone(),
    };
    let (mut batches, fetcher) = match &ctx.config.retrieval {
        Retrieval::Polling => spawn_fetcher(
            ctx.kinesis.clone(),
            ctx.stream.clone(),
            shard.clone(),
            snapshot.checkpoint.clone(),
            deaggregator,
            FetcherSettings {
                max_records: ctx.config.max_records,
                idle_time_between_reads: ctx.config.idle_time_between_reads,
                max_prefetch_batches: ctx.config.max_prefetch_batches,
                timeout: ctx.config.kinesis_timeout,
                timestamp,
                metrics: shard_metrics.clone(),
            },
        ),
        Retrieval::FanOut(fan_out) => {
            let Some(consumer_arn) = ctx.consumer_arn.get() else {
                tracing::error!("fan-out consumer not registered");
                return Exit::Failed;
            };
            spawn_subscriber(
                ctx.kinesis.clone(),
                shard.clone(),
                snapshot.checkpoint.clone(),
                deaggregator,
                consumer_arn,
                SubscriberSettings {
                    consumer: ctx.consumer_arn.clone(),
                    consumer_name: ctx.consumer_name.clone(),
                    activation_timeout: fan_out.activation_timeout,
                    stream: ctx.stream.clone(),
                    timeout: ctx.config.kinesis_timeout,
                    silence_timeout: fan_out.silence_timeout,
                    max_buffered_events: fan_out.max_buffered_events,
                    timestamp,
                    metrics: shard_metrics.clone(),
                },
            )
        }
    };
    let _abort_fetcher = AbortOnDrop(fetcher);
    loop {
        let fetched = tokio::select! {
            biased;
            _ = c.lease.lost() => return lost(&mut c.processor).await,
            _ = requested(&mut c.shutdown) => {
                return stop(&c.lease, &mut c.processor, &mut c.checkpointer).await;
            }
            _ = c.lease.handoff_requested() => {
                return hand_off(&c.lease, &mut c.processor, &mut c.checkpointer).await;
            }
            fetched = batches.recv() => fetched,
        };
        match fetched {
            None => {
                tracing::error!("record fetcher stopped");
                return Exit::Failed;
            }
            Some(Fetched::Batch {
                records,
                millis_behind_latest,
            }) => {
                if let Some(ms) = millis_behind_latest {
                    c.handles.millis_behind_latest.set(ms as f64);
                }
                if records.is_empty() && !ctx.config.call_process_records_even_for_empty {
                    continue;
                }
                if let Err(exit) = c.deliver(records, millis_behind_latest).await {
                    return exit;
                }
            }
            Some(Fetched::ShardEnd { children }) => {
                return shard_end(&ctx, children, c).await;
            }
            Some(Fetched::Failed(error)) => {
                c.handles.read_failures.increment(1);
                tracing::error!(
                    error = %error,
                    "reading the shard failed with an error trying again cannot fix; stopping its consumer and giving the lease up"
                );
                let told = tokio::select! {
                    biased;
                    _ = c.lease.lost() => false,
                    _ = c.processor.read_failed(&error) => true,
                };
                if !told {
                    tracing::debug!("lease lost while telling the processor");
                }
                return Exit::ReadFailed(error);
            }
        }
    }
}

async fn shard_end<P: RecordProcessor>(
    ctx: &Context,
    children: Vec<ChildShard>,
    mut c: Consumer<P>,
) -> Exit {
    // Child leases exist before the parent is marked finished, so no child is ever orphaned.
    let mut retry = Retry::new(&ctx.config);
    let stream = c.lease_stream.clone();
    for child in &children {
        let mut lease_item = match &stream {
            Some(stream) => {
                let mut l =
                    Lease::new_multi_stream(stream, &child.shard_id, Checkpoint::TrimHorizon);
                l.parent_shard_ids = child
                    .parent_shards
                    .iter()
                    .map(|p| crate::leases::multi_stream_key(stream, p))
                    .collect();
                l
            }
            None => {
                let mut l = Lease::new(child.shard_id.clone(), Checkpoint::TrimHorizon);
                l.parent_shard_ids = child.parent_shards.clone();
                l
            }
        };
        lease_item.hash_range = crate::shard_sync::hash_range(child.hash_key_range.as_ref());
        loop {
            match ctx.table.create_if_absent(&lease_item).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, child = %child.shard_id, "creating child lease failed");
                    if let Step::Stop(exit) = c.wait(&mut retry).await {
                        return exit;
                    }
                }
            }
        }
    }
    c.checkpointer
        .reached_shard_end(children.iter().map(|c| c.shard_id.clone()).collect());
    let limit = ctx.config.max_processing_time;
    let mut retry = Retry::new(&ctx.config);
    loop {
        if c.lease.is_lost() {
            return lost(&mut c.processor).await;
        }
        let started = std::time::Instant::now();
        let outcome = bounded(
            &c.lease,
            limit,
            c.processor.shard_ended(&mut c.checkpointer),
        )
        .await;
        c.handles
            .shutdown_time
            .record(started.elapsed().as_secs_f64() * 1000.0);
        let ended = match outcome {
            Outcome::Done(r) => r,
            other => return c.interrupted(other, "shard_ended").await,
        };
        match ended {
            Ok(()) if *c.checkpointer.current() == Checkpoint::ShardEnd => {
                tracing::info!("shard ended");
                return Exit::ShardEnded;
            }
            Ok(()) => {
                tracing::error!("shard_ended returned without checkpointing; calling it again")
            }
            Err(e) => tracing::warn!(error = %e, "shard_ended failed; retrying"),
        }
        if let Step::Stop(exit) = c.wait(&mut retry).await {
            return exit;
        }
    }
}

async fn requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn lost<P: RecordProcessor>(processor: &mut P) -> Exit {
    processor.lease_lost().await;
    Exit::LeaseLost
}

/// Another worker asked for the lease: the processor may checkpoint (in
/// `shutdown_requested`), then the lease is handed over.
async fn hand_off<P: RecordProcessor>(
    lease: &HeldLease,
    processor: &mut P,
    checkpointer: &mut Checkpointer,
) -> Exit {
    tracing::info!("handing the lease over");
    match stop(lease, processor, checkpointer).await {
        Exit::Shutdown => Exit::HandedOff,
        other => other,
    }
}

async fn stop<P: RecordProcessor>(
    lease: &HeldLease,
    processor: &mut P,
    checkpointer: &mut Checkpointer,
) -> Exit {
    let done = tokio::select! {
        biased;
        _ = lease.lost() => None,
        r = processor.shutdown_requested(checkpointer) => Some(r),
    };
    match done {
        None => lost(processor).await,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "shutdown_requested failed");
            Exit::Shutdown
        }
        Some(Ok(())) => Exit::Shutdown,
    }
}

/// Backoff between attempts, interrupted by a lost lease or a shutdown request.
struct Retry<I> {
    delays: I,
}

impl Retry<()> {
    fn new(config: &Config) -> Retry<impl Iterator<Item = std::time::Duration> + use<>> {
        Retry {
            delays: backoff(
                config.processing_retry.initial_backoff,
                config.processing_retry.max_backoff,
            ),
        }
    }
}

impl<I: Iterator<Item = std::time::Duration>> Retry<I> {
    async fn wait<P: RecordProcessor>(
        &mut self,
        lease: &HeldLease,
        shutdown: &mut watch::Receiver<bool>,
        processor: &mut P,
        checkpointer: &mut Checkpointer,
    ) -> Step {
        let delay = self
            .delays
            .next()
            .unwrap_or(std::time::Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(delay) => Step::Done,
            _ = lease.lost() => Step::Stop(lost(processor).await),
            _ = requested(shutdown) => Step::Stop(stop(lease, processor, checkpointer).await),
            _ = lease.handoff_requested() => {
                Step::Stop(hand_off(lease, processor, checkpointer).await)
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

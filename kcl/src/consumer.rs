//! One shard's consumer: initialize, deliver batches (retrying failures), end, stop.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_kinesis::types::ChildShard;
use tokio::sync::watch;

use crate::checkpointer::Checkpointer;
use crate::config::{Config, InitialPosition, Retrieval};
use crate::leases::held::HeldLease;
use crate::leases::{Checkpoint, Lease, LeaseTable, SequenceNumber};
use crate::processor::{InitializationInput, ProcessRecordsInput, RecordProcessor};
use crate::retrieval::{
    Fetched, FetcherSettings, StreamRef, SubscriberSettings, backoff, spawn_fetcher,
    spawn_subscriber,
};

/// How a consumer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Checkpointed at SHARD_END.
    ShardEnded,
    /// Another worker has the lease.
    LeaseLost,
    /// Graceful shutdown; the lease is still held and should be given up.
    Shutdown,
    /// Reading stopped unexpectedly; the lease should be given up so it is retaken.
    Failed,
}

/// What a consumer needs besides its processor.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub kinesis: aws_sdk_kinesis::Client,
    pub stream: StreamRef,
    pub table: LeaseTable,
    pub config: Arc<Config>,
    /// The fan-out consumer's ARN, set at start-up when retrieval is fan-out.
    pub consumer_arn: Arc<std::sync::OnceLock<String>>,
}

enum Step {
    Done,
    Stop(Exit),
}

/// Runs `processor` on the shard of `lease` from the checkpoint in `snapshot`.
pub(crate) async fn run<P: RecordProcessor>(
    ctx: Context,
    lease: Arc<HeldLease>,
    snapshot: Lease,
    mut processor: P,
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
    let shard = lease.key.clone();
    let mut checkpointer = Checkpointer::new(lease.clone(), snapshot.checkpoint.clone());
    let init = InitializationInput {
        shard_id: shard.clone(),
        checkpoint: snapshot.checkpoint.clone(),
        pending_checkpoint: snapshot.pending_checkpoint.clone(),
        pending_checkpoint_state: snapshot.pending_checkpoint_state.clone(),
    };
    let mut retry = Retry::new(&ctx.config);
    loop {
        let initialized = tokio::select! {
            biased;
            _ = lease.lost() => None,
            r = processor.initialize(init.clone()) => Some(r),
        };
        let Some(initialized) = initialized else {
            return lost(&mut processor).await;
        };
        match initialized {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "initialize failed; retrying");
                if let Step::Stop(exit) = retry
                    .wait(&lease, &mut shutdown, &mut processor, &mut checkpointer)
                    .await
                {
                    return exit;
                }
            }
        }
    }
    let timestamp = match ctx.config.initial_position {
        InitialPosition::AtTimestamp(t) => Some(t),
        _ => None,
    };
    let hash_range = snapshot.hash_range.unwrap_or((0, u128::MAX));
    let (mut batches, fetcher) = match &ctx.config.retrieval {
        Retrieval::Polling => spawn_fetcher(
            ctx.kinesis.clone(),
            ctx.stream.clone(),
            shard.clone(),
            snapshot.checkpoint.clone(),
            hash_range,
            FetcherSettings {
                max_records: ctx.config.max_records,
                idle_time_between_reads: ctx.config.idle_time_between_reads,
                max_prefetch_batches: ctx.config.max_prefetch_batches,
                timeout: ctx.config.kinesis_timeout,
                timestamp,
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
                hash_range,
                SubscriberSettings {
                    consumer_arn: consumer_arn.clone(),
                    timeout: ctx.config.kinesis_timeout,
                    silence_timeout: fan_out.silence_timeout,
                    max_buffered_events: fan_out.max_buffered_events,
                    timestamp,
                },
            )
        }
    };
    let _abort_fetcher = AbortOnDrop(fetcher);
    loop {
        let fetched = tokio::select! {
            biased;
            _ = lease.lost() => return lost(&mut processor).await,
            _ = requested(&mut shutdown) => {
                return stop(&lease, &mut processor, &mut checkpointer).await;
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
                    metrics::gauge!("MillisBehindLatest", "shard" => shard.clone()).set(ms as f64);
                }
                if records.is_empty() && !ctx.config.call_process_records_even_for_empty {
                    continue;
                }
                if let Some(last) = records.last() {
                    checkpointer.delivered(SequenceNumber::new(
                        &*last.sequence_number,
                        last.sub_sequence_number,
                    ));
                }
                let count = records.len() as u64;
                let bytes: usize = records.iter().map(|r| r.data.len()).sum();
                let input = ProcessRecordsInput {
                    records,
                    millis_behind_latest,
                };
                let mut retry = Retry::new(&ctx.config);
                loop {
                    if lease.is_lost() {
                        return lost(&mut processor).await;
                    }
                    let started = Instant::now();
                    // Past the lease's deadline another worker may take the shard: a batch still
                    // running then is cancelled (at its next await point), so it never overlaps
                    // with the next owner's.
                    let result = tokio::select! {
                        biased;
                        _ = lease.lost() => None,
                        r = processor.process_records(input.clone(), &mut checkpointer) => Some(r),
                    };
                    let Some(result) = result else {
                        return lost(&mut processor).await;
                    };
                    metrics::histogram!("RecordProcessor.processRecords.Time", "shard" => shard.clone())
                        .record(started.elapsed().as_secs_f64() * 1000.0);
                    match result {
                        Ok(()) => {
                            metrics::counter!("RecordsProcessed", "shard" => shard.clone())
                                .increment(count);
                            metrics::counter!("DataBytesProcessed", "shard" => shard.clone())
                                .increment(bytes as u64);
                            break;
                        }
                        Err(e) => {
                            // Never skip the batch (the Java KCL does): deliver it again.
                            tracing::warn!(error = %e, records = count, "process_records failed; retrying the batch");
                            metrics::counter!("ProcessRecordsFailures", "shard" => shard.clone())
                                .increment(1);
                            if let Step::Stop(exit) = retry
                                .wait(&lease, &mut shutdown, &mut processor, &mut checkpointer)
                                .await
                            {
                                return exit;
                            }
                        }
                    }
                }
            }
            Some(Fetched::ShardEnd { children }) => {
                return shard_end(&ctx, &lease, children, processor, checkpointer, shutdown).await;
            }
        }
    }
}

async fn shard_end<P: RecordProcessor>(
    ctx: &Context,
    lease: &Arc<HeldLease>,
    children: Vec<ChildShard>,
    mut processor: P,
    mut checkpointer: Checkpointer,
    mut shutdown: watch::Receiver<bool>,
) -> Exit {
    // Child leases exist before the parent is marked finished, so no child is ever orphaned.
    let mut retry = Retry::new(&ctx.config);
    for child in &children {
        let mut lease_item = Lease::new(child.shard_id.clone(), Checkpoint::TrimHorizon);
        lease_item.parent_shard_ids = child.parent_shards.clone();
        lease_item.hash_range = crate::shard_sync::hash_range(child.hash_key_range.as_ref());
        loop {
            match ctx.table.create_if_absent(&lease_item).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, child = %child.shard_id, "creating child lease failed");
                    if let Step::Stop(exit) = retry
                        .wait(lease, &mut shutdown, &mut processor, &mut checkpointer)
                        .await
                    {
                        return exit;
                    }
                }
            }
        }
    }
    checkpointer.reached_shard_end(children.iter().map(|c| c.shard_id.clone()).collect());
    let mut retry = Retry::new(&ctx.config);
    loop {
        if lease.is_lost() {
            return lost(&mut processor).await;
        }
        let ended = tokio::select! {
            biased;
            _ = lease.lost() => None,
            r = processor.shard_ended(&mut checkpointer) => Some(r),
        };
        let Some(ended) = ended else {
            return lost(&mut processor).await;
        };
        match ended {
            Ok(()) if *checkpointer.current() == Checkpoint::ShardEnd => {
                tracing::info!("shard ended");
                return Exit::ShardEnded;
            }
            Ok(()) => {
                tracing::error!("shard_ended returned without checkpointing; calling it again")
            }
            Err(e) => tracing::warn!(error = %e, "shard_ended failed; retrying"),
        }
        if let Step::Stop(exit) = retry
            .wait(lease, &mut shutdown, &mut processor, &mut checkpointer)
            .await
        {
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
    fn new(config: &Config) -> Retry<impl Iterator<Item = std::time::Duration>> {
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
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! Multi-stream applications: the tracked streams, their leases, and the clean-up of the
//! leases of streams no longer tracked.

use std::collections::{HashMap, HashSet};

use tokio::time::Instant;

use super::{Scheduler, State};
use crate::config::Retrieval;
use crate::error::Result;
use crate::leases::Lease;
use crate::metrics;
use crate::processor::RecordProcessorFactory;
use crate::retrieval::StreamRef;
use crate::shard_sync;
use crate::streams::{self, StreamTracker, TrackedStream};

/// A multi-stream application's streams.
pub(super) struct Multi {
    pub(super) tracker: Box<dyn StreamTracker>,
    pub(super) streams: std::sync::Mutex<Tracked>,
}

#[derive(Default)]
pub(super) struct Tracked {
    /// Streams read now, by identifier.
    pub(super) active: HashMap<String, TrackedStream>,
    /// Identifiers of streams no longer tracked that still have leases, and since when
    /// (their leases are deleted after [`Config::former_stream_lease_retention`]).
    pub(super) former: HashMap<String, Instant>,
    /// Stream names the tracker returned that could not be described yet: their leases are
    /// not taken for former streams'.
    pub(super) unresolved: HashSet<String>,
}

impl<F: RecordProcessorFactory> Scheduler<F> {
    /// Stops this worker's consumers of streams no longer tracked; each processor gets
    /// `shutdown_requested` and may checkpoint, then the lease is given up.
    pub(super) fn stop_former_streams(&self, state: &State) {
        let Some(multi) = &self.multi else {
            return;
        };
        let tracked = multi.lock();
        for (key, running) in &state.held {
            if let Some(stream) = &running.stream
                && !tracked.active.contains_key(stream)
                && !*running.stop.borrow()
            {
                tracing::info!(shard = %key, "stream no longer tracked; stopping its consumer");
                running.stop.send_replace(true);
            }
        }
    }

    /// A multi-stream shard sync: asks the tracker for the streams, starts tracking new ones
    /// (registering the fan-out consumer on each), notes removed ones, creates the missing
    /// leases of every tracked stream and deletes the leases of streams removed longer than
    /// [`Config::former_stream_lease_retention`] ago. A stream that fails is logged and tried
    /// again next time; the others go on.
    pub(super) async fn sync_streams(&self, multi: &Multi) -> Result<usize> {
        let now = Instant::now();
        match multi.tracker.streams().await {
            Ok(names) => {
                let wanted: HashSet<String> = names.into_iter().collect();
                let known: HashSet<String> = {
                    let mut tracked = multi.lock();
                    let gone: Vec<String> = tracked
                        .active
                        .values()
                        .filter(|t| !wanted.contains(&t.name))
                        .map(|t| t.identifier.clone())
                        .collect();
                    for id in gone {
                        tracing::info!(stream = %id, "stream no longer tracked");
                        tracked.active.remove(&id);
                        tracked.former.entry(id).or_insert(now);
                    }
                    tracked.active.values().map(|t| t.name.clone()).collect()
                };
                let mut unresolved = HashSet::new();
                for name in wanted.difference(&known) {
                    match self.track(name).await {
                        Ok(stream) => {
                            tracing::info!(stream = %stream.identifier, "tracking stream");
                            let mut tracked = multi.lock();
                            tracked.former.remove(&stream.identifier);
                            tracked.active.insert(stream.identifier.clone(), stream);
                        }
                        Err(e) => {
                            tracing::warn!(stream = %name, error = %e, "cannot read stream yet");
                            unresolved.insert(plain_stream_name(name).to_owned());
                        }
                    }
                }
                multi.lock().unresolved = unresolved;
            }
            Err(e) => tracing::warn!(error = %e, "stream tracker failed; keeping the streams"),
        }
        let leases = self.ctx.table.list().await?;
        let active: Vec<TrackedStream> = {
            let mut tracked = multi.lock();
            for lease in &leases {
                let Some(stream) = &lease.stream else {
                    continue;
                };
                if tracked.active.contains_key(stream) {
                    continue;
                }
                // The identifier is `account:name:epoch`.
                let name = stream.split(':').nth(1).unwrap_or_default();
                if tracked.unresolved.contains(name) {
                    // Still wanted, just not described yet (throttled, say): keep its leases.
                    tracked.former.remove(stream);
                } else {
                    // Left by a stream removed before this worker started, say.
                    tracked.former.entry(stream.clone()).or_insert(now);
                }
            }
            tracked.active.values().cloned().collect()
        };
        let mut created = 0;
        for stream in &active {
            let synced = async {
                stream
                    .distribution
                    .refresh(
                        &self.ctx.kinesis,
                        &stream.stream,
                        self.ctx.config.kinesis_timeout,
                    )
                    .await;
                let shards = shard_sync::list_shards(
                    &self.ctx.kinesis,
                    &stream.stream,
                    self.ctx.config.kinesis_timeout,
                )
                .await?;
                shard_sync::create_missing_stream_leases(
                    &self.ctx.table,
                    &stream.identifier,
                    &shards,
                    &leases,
                    self.ctx.config.initial_position,
                )
                .await
            };
            match synced.await {
                Ok(n) => created += n,
                Err(e) => {
                    tracing::warn!(stream = %stream.identifier, error = %e, "shard sync failed")
                }
            }
        }
        self.delete_former_leases(multi, &leases, now).await;
        {
            let tracked = multi.lock();
            let app = &self.ctx.metrics;
            app.gauge(metrics::ACTIVE_STREAMS)
                .set(tracked.active.len() as f64);
            app.gauge(metrics::STREAMS_PENDING_DELETION)
                .set(tracked.former.len() as f64);
        }
        if created > 0 {
            self.take_now.notify_one();
        }
        Ok(created)
    }

    /// Resolves a stream the tracker named: its identifier, and its fan-out consumer.
    pub(super) async fn track(&self, name: &str) -> Result<TrackedStream> {
        let config = &self.ctx.config;
        let stream = StreamRef::parse(name);
        let (identifier, strategy) =
            streams::identify(&self.ctx.kinesis, &stream, config.kinesis_timeout).await?;
        let distribution = crate::retrieval::Distribution::default();
        distribution.note(strategy.as_ref());
        let consumer_arn = match &config.retrieval {
            Retrieval::Polling => crate::retrieval::ConsumerArn::default(),
            Retrieval::FanOut(fan_out) => {
                let consumer = self.consumer_name().unwrap_or_default();
                let arn = crate::retrieval::register_consumer(
                    &self.ctx.kinesis,
                    &stream,
                    &consumer,
                    config.kinesis_timeout,
                    fan_out.activation_timeout,
                )
                .await?;
                tracing::info!(stream = %name, consumer = %consumer, arn = %arn, "reading through enhanced fan-out");
                crate::retrieval::ConsumerArn::new(Some(arn))
            }
        };
        Ok(TrackedStream {
            name: name.to_owned(),
            stream,
            identifier,
            consumer_arn,
            distribution,
        })
    }

    /// Deletes the leases of streams no longer tracked for the retention time.
    pub(super) async fn delete_former_leases(&self, multi: &Multi, leases: &[Lease], now: Instant) {
        let retention = self.ctx.config.former_stream_lease_retention;
        let due: Vec<String> = multi
            .lock()
            .former
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= retention)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let mut deleted_all = true;
            for lease in leases.iter().filter(|l| l.stream.as_ref() == Some(&id)) {
                match self.ctx.table.delete(&lease.key).await {
                    Ok(()) => {
                        tracing::info!(shard = %lease.key, "deleted lease of a former stream")
                    }
                    Err(e) => {
                        deleted_all = false;
                        tracing::warn!(shard = %lease.key, error = %e, "deleting lease failed");
                    }
                }
            }
            if deleted_all {
                self.ctx
                    .metrics
                    .counter(metrics::DELETED_STREAMS)
                    .increment(1);
                multi.lock().former.remove(&id);
            }
        }
    }
}

impl Multi {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The name of a stream given by name or by ARN (`arn:...:stream/name`).
pub(super) fn plain_stream_name(stream: &str) -> &str {
    if stream.starts_with("arn:") {
        stream.rsplit('/').next().unwrap_or(stream)
    } else {
        stream
    }
}

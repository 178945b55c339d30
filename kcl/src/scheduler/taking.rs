//! One lease-taking round: renew bookkeeping, take expired and free leases, steal or ask for a
//! handoff to balance, and start consumers for what was taken.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::{Scheduler, State};
use crate::error::Error;
use crate::leases::Lease;
use crate::leases::taker::{self, TakerSettings};
use crate::metrics;
use crate::processor::RecordProcessorFactory;

impl<F: RecordProcessorFactory> Scheduler<F> {
    /// Takes and steals leases; `Some` (the error of one of them) when every unfinished lease
    /// failed on this worker with a non-retryable read error, so nothing is left to read.
    pub(super) async fn take_round(
        &self,
        state: &mut State,
        needs_sync: &mut bool,
    ) -> Option<Error> {
        if *needs_sync {
            match self.sync_shards().await {
                Ok(_) => *needs_sync = false,
                Err(e) => tracing::warn!(error = %e, "shard sync failed"),
            }
        }
        let leases = match self.ctx.table.list().await {
            Ok(l) => self.readable(l),
            Err(e) => {
                tracing::warn!(error = %e, "listing leases failed");
                return None;
            }
        };
        self.stop_former_streams(state);
        if !state.unreadable.is_empty()
            && state.held.is_empty()
            && leases
                .iter()
                .filter(|l| !l.is_finished())
                .all(|l| state.unreadable.contains_key(&l.key))
        {
            let key = state.unreadable.keys().next().cloned().unwrap_or_default();
            let source = state.unreadable.remove(&key)?;
            return Some(Error::ReadFailed {
                shard_id: key,
                source: Box::new(source),
            });
        }
        let now = Instant::now();
        state.cooling.retain(|_, until| *until > now);
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
                handoff_timeout: config.graceful_handoff_timeout.unwrap_or(Duration::MAX),
            },
        );
        let app = &self.ctx.metrics;
        app.gauge(metrics::NUM_WORKERS).set(plan.workers as f64);
        app.gauge(metrics::TOTAL_LEASES).set(plan.total as f64);
        app.gauge(metrics::EXPIRED_LEASES).set(plan.expired as f64);
        app.gauge(metrics::NEEDED_LEASES)
            .set(plan.target.saturating_sub(state.held.len()) as f64);
        app.gauge(metrics::LEASE_SPILLOVER)
            .set(plan.spillover as f64);
        app.gauge(metrics::LEASES_TO_TAKE)
            .set((plan.take.len() + plan.steal.len()) as f64);
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
                if held.contains(key) {
                    // A consumer of ours is still winding down on this shard (its lease was
                    // lost); take it again once that consumer is gone.
                    continue;
                }
                if state.unreadable.contains_key(key) || state.cooling.contains_key(key) {
                    // Given up here (unreadable, or its processor got stuck): leave it to
                    // other workers.
                    continue;
                }
                if stolen
                    && config.graceful_handoff_timeout.is_some()
                    && lease.checkpoint_owner.is_none()
                    && let Some(holder) = lease.owner.as_deref()
                {
                    // Ask the holder to hand the lease over rather than taking it from under
                    // its processor; it is taken once the holder lets it go.
                    match self
                        .ctx
                        .table
                        .initiate_handoff(key, holder, &self.worker_id, *counter)
                        .await
                    {
                        Ok(true) => {
                            self.worker_metrics()
                                .counter(metrics::HANDOFFS_INITIATED)
                                .increment(1);
                            tracing::info!(shard = %key, from = %holder, worker = %self.worker_id, "asked for a lease (graceful handoff)");
                        }
                        Ok(false) => {
                            tracing::debug!(shard = %key, "lease moved before the handoff request")
                        }
                        Err(e) => {
                            tracing::warn!(shard = %key, error = %e, "asking for a lease failed")
                        }
                    }
                    continue;
                }
                // The worker that was handing it over, if a handoff is being forced.
                let previous = lease.checkpoint_owner.as_deref().or(lease.owner.as_deref());
                let sent = Instant::now();
                match self
                    .ctx
                    .table
                    .take(key, &self.worker_id, *counter, previous)
                    .await
                {
                    Ok(true) => {
                        let taken = if stolen {
                            metrics::STOLEN_LEASES
                        } else {
                            metrics::TAKEN_LEASES
                        };
                        self.worker_metrics().counter(taken).increment(1);
                        tracing::info!(shard = %key, stolen, previous = ?lease.owner, worker = %self.worker_id, "took lease");
                        let start_at = self.start_at(state, lease, *counter, stolen);
                        let mut lease = (*lease).clone();
                        lease.counter = counter + 1;
                        lease.owner = Some(self.worker_id.clone());
                        lease.checkpoint_owner = None;
                        self.start_consumer(state, lease, sent, start_at);
                    }
                    Ok(false) => {
                        self.worker_metrics()
                            .counter(metrics::UNTAKEN_LEASES)
                            .increment(1);
                        tracing::debug!(shard = %key, "lost the race for a lease");
                        lost_a_take |= !stolen;
                    }
                    Err(e) => {
                        self.worker_metrics()
                            .counter(metrics::UNTAKEN_LEASES)
                            .increment(1);
                        tracing::warn!(shard = %key, error = %e, "taking a lease failed")
                    }
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
        None
    }

    /// When processing of a lease just taken at `counter` may start (see [`taker::start_at`]).
    /// A lease whose handoff is forced counts as taken from the worker that was handing it over.
    pub(super) fn start_at(
        &self,
        state: &State,
        lease: &Lease,
        counter: u64,
        stolen: bool,
    ) -> Instant {
        let config = &self.ctx.config;
        taker::start_at(
            &self.worker_id,
            lease.checkpoint_owner.as_deref().or(lease.owner.as_deref()),
            state.seen.since(&lease.key, counter),
            Instant::now(),
            config.failover_time,
            stolen.then(|| config.stolen_lease_start_delay()),
        )
    }
}

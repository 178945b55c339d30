//! A lease this worker holds: its counter, its deadline, renewal and fenced writes.
//!
//! No lock is held across a network call: the renewal task and the shard's checkpoints write
//! concurrently, each conditioned on the counter last known. When a write finds the counter moved,
//! a consistent read tells whether the lease is still ours (moved by our own concurrent write, or
//! by one whose answer was lost) or was taken; only in the second case is the lease lost.
//!
//! Validity is counted from the moment a successful write was *sent*: any other worker saw the
//! resulting counter later than that, and waits the whole failover time from then before it
//! considers the lease expired. The holder stops a safety margin earlier.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{CheckpointUpdate, LeaseTable};
use crate::error::{Error, Result};
use crate::retrieval::backoff;

/// Attempts of one checkpoint write whose outcome was unclear (timeout, transport error,
/// throttling, a counter moved by our own renewal) before the error goes to the processor.
const CHECKPOINT_ATTEMPTS: usize = 6;

/// Timing of a held lease.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseTiming {
    /// How long after sending a successful write the lease may be used.
    pub validity: Duration,
    /// Bound on one renewal call.
    pub renewal_timeout: Duration,
}

/// A held lease.
#[derive(Debug)]
pub(crate) struct HeldLease {
    pub key: String,
    pub owner: String,
    table: LeaseTable,
    /// The worker's metrics (LostLeases, HandoffsRequested).
    metrics: crate::metrics::Scope,
    timing: LeaseTiming,
    state: watch::Sender<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    /// The newest `leaseCounter` this worker wrote.
    counter: u64,
    /// Past this instant the lease is not used any more.
    valid_until: Instant,
    /// Latched: a lost lease is never used again.
    lost: bool,
    /// Latched: another worker asked for the lease (KCL 3.x graceful handoff, `checkpointOwner`
    /// = this worker); renewals stop, checkpoints may go on until the lease is handed over.
    handoff: bool,
}

/// Who holds a lease whose conditional write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// Still this worker (the counter was moved by its own write, adopted now).
    Ours,
    /// This worker, asked to hand it over.
    HandoffRequested,
    /// Another worker.
    Taken,
}

/// Outcome of one renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// The counter moved: valid for another validity period from when the request was sent.
    Renewed,
    /// No answer or an error: still held until the deadline, try again soon.
    Failed,
    /// Taken by another worker, or past the deadline.
    Lost,
    /// Another worker asked for the lease: renewals stop, the shard is handed over.
    Handoff,
}

impl HeldLease {
    /// A lease taken (or created) at `counter` by a write sent at `sent`.
    pub fn new(
        table: LeaseTable,
        key: String,
        owner: String,
        counter: u64,
        sent: Instant,
        metrics: crate::metrics::Scope,
        timing: LeaseTiming,
    ) -> Arc<Self> {
        Arc::new(Self {
            key,
            owner,
            table,
            metrics,
            timing,
            state: watch::channel(State {
                counter,
                valid_until: sent + timing.validity,
                lost: false,
                handoff: false,
            })
            .0,
        })
    }

    /// Whether the lease is lost: taken by another worker, given up, or past its deadline.
    pub fn is_lost(&self) -> bool {
        let state = *self.state.borrow();
        if state.lost {
            return true;
        }
        if Instant::now() >= state.valid_until {
            self.mark_lost("not renewed in time");
            return true;
        }
        false
    }

    /// Resolves once the lease is lost, at the latest at its deadline.
    pub async fn lost(&self) {
        let mut rx = self.state.subscribe();
        loop {
            let state = *rx.borrow_and_update();
            if state.lost || self.is_lost() {
                return;
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(state.valid_until) => {}
            }
        }
    }

    fn counter(&self) -> u64 {
        self.state.borrow().counter
    }

    fn mark_lost(&self, why: &str) {
        let mut first = false;
        self.state.send_if_modified(|s| {
            first = !s.lost;
            s.lost = true;
            first
        });
        if first {
            tracing::info!(shard = %self.key, why, "lease lost");
            self.metrics
                .counter(crate::metrics::LOST_LEASES)
                .increment(1);
        }
    }

    /// A write conditioned on `counter`, sent at `sent`, succeeded.
    fn written(&self, counter: u64, sent: Instant) {
        let now = Instant::now();
        self.state.send_if_modified(|s| {
            if s.lost || now >= s.valid_until {
                // Too late: the shard may already have been stopped on the old deadline.
                return false;
            }
            s.counter = s.counter.max(counter + 1);
            s.valid_until = s.valid_until.max(sent + self.timing.validity);
            true
        });
    }

    /// Whether another worker asked for this lease (a graceful handoff).
    pub fn is_handing_off(&self) -> bool {
        self.state.borrow().handoff
    }

    /// Resolves once another worker asked for this lease; never if it does not.
    pub async fn handoff_requested(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|s| s.handoff).await;
        if !self.state.borrow().handoff {
            std::future::pending::<()>().await;
        }
    }

    /// A write conditioned on `sent_counter` was refused: who holds the lease now (with the
    /// counter adopted when it is still ours, so the write can be tried again).
    async fn holder(&self, sent_counter: u64) -> Result<Holder> {
        if self.counter() != sent_counter {
            // Our own concurrent write moved it meanwhile.
            return Ok(Holder::Ours);
        }
        let Some(item) = self.table.get(&self.key).await? else {
            return Ok(Holder::Taken);
        };
        let me = Some(self.owner.as_str());
        if item.checkpoint_owner.as_deref() == me && item.owner.as_deref() != me {
            // Asked to hand the lease over; it stays ours to checkpoint until we let it go.
            let first = !self.state.borrow().handoff;
            self.state.send_modify(|s| {
                s.handoff = true;
                s.counter = s.counter.max(item.counter);
            });
            if first {
                tracing::info!(shard = %self.key, to = ?item.owner, "asked to hand the lease over");
                self.metrics
                    .counter(crate::metrics::HANDOFFS_REQUESTED)
                    .increment(1);
            }
            return Ok(Holder::HandoffRequested);
        }
        // Only this worker writes its name as owner, so an item in its name is its own; a counter
        // that did not move means the refusal was for another reason.
        if item.owner.as_deref() == me
            && item.checkpoint_owner.is_none()
            && item.counter > sent_counter
        {
            self.state
                .send_modify(|s| s.counter = s.counter.max(item.counter));
            return Ok(Holder::Ours);
        }
        Ok(Holder::Taken)
    }

    /// One heartbeat, bounded by the renewal timeout.
    pub async fn renew(&self) -> Renewal {
        // A few rounds at most: each extra one means our own checkpoint moved the counter.
        for _ in 0..3 {
            if self.is_lost() {
                return Renewal::Lost;
            }
            let counter = self.counter();
            let sent = Instant::now();
            let attempt = tokio::time::timeout(
                self.timing.renewal_timeout,
                self.table.renew(&self.key, counter),
            )
            .await;
            let refused = match attempt {
                Ok(Ok(true)) => {
                    self.written(counter, sent);
                    return if self.is_lost() {
                        Renewal::Lost
                    } else {
                        Renewal::Renewed
                    };
                }
                Ok(Ok(false)) => counter,
                Ok(Err(e)) => {
                    tracing::warn!(shard = %self.key, error = %e, "lease renewal failed");
                    return self.failed();
                }
                Err(_) => {
                    tracing::warn!(shard = %self.key, after = ?self.timing.renewal_timeout, "lease renewal timed out");
                    return self.failed();
                }
            };
            let check =
                tokio::time::timeout(self.timing.renewal_timeout, self.holder(refused)).await;
            match check {
                Ok(Ok(Holder::Ours)) => continue,
                Ok(Ok(Holder::HandoffRequested)) => return Renewal::Handoff,
                Ok(Ok(Holder::Taken)) => {
                    self.mark_lost("taken by another worker");
                    return Renewal::Lost;
                }
                Ok(Err(e)) => {
                    tracing::warn!(shard = %self.key, error = %e, "reading the lease failed");
                    return self.failed();
                }
                Err(_) => return self.failed(),
            }
        }
        self.failed()
    }

    fn failed(&self) -> Renewal {
        if self.is_lost() {
            Renewal::Lost
        } else {
            Renewal::Failed
        }
    }

    /// A checkpoint write fenced on the counter. An attempt without a clear answer is sent again
    /// (on the adopted counter if ours moved it) until it is acknowledged, the lease is lost, or
    /// a few attempts failed; the error then goes to the processor. Success is only ever
    /// reported for an acknowledged write.
    pub async fn checkpoint(&self, update: CheckpointUpdate) -> Result<()> {
        let mut delays = backoff(Duration::from_millis(50), Duration::from_secs(1));
        let mut attempt = 0;
        loop {
            attempt += 1;
            if self.is_lost() {
                return Err(self.lost_error());
            }
            let counter = self.counter();
            let sent = Instant::now();
            let error = match self
                .table
                .checkpoint(&self.key, &self.owner, counter, update.clone())
                .await
            {
                Ok(true) => {
                    self.written(counter, sent);
                    return Ok(());
                }
                Ok(false) => match self.holder(counter).await {
                    Ok(Holder::Ours | Holder::HandoffRequested)
                        if attempt < CHECKPOINT_ATTEMPTS =>
                    {
                        continue;
                    }
                    Ok(Holder::Ours | Holder::HandoffRequested) => Error::DynamoDb {
                        op: "checkpoint",
                        message: "the lease counter kept moving".into(),
                        retryable: true,
                    },
                    Ok(Holder::Taken) => {
                        self.mark_lost("taken by another worker");
                        return Err(self.lost_error());
                    }
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if !error.is_retryable() || attempt >= CHECKPOINT_ATTEMPTS {
                return Err(error);
            }
            tracing::warn!(shard = %self.key, error = %error, "checkpoint failed; writing it again");
            let delay = delays.next().unwrap_or(Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.lost() => return Err(self.lost_error()),
            }
        }
    }

    /// Gives the lease up so another worker can take it at once. The lease counts as lost from
    /// now on, so nothing else is written with it.
    ///
    /// During a handoff this clears `checkpointOwner` instead, so the worker that asked for the
    /// lease starts at once from the last checkpoint.
    pub async fn evict(&self) -> Result<()> {
        self.state.send_modify(|s| s.lost = true);
        for _ in 0..3 {
            let counter = self.counter();
            let done = if self.is_handing_off() {
                self.table
                    .finish_handoff(&self.key, &self.owner, counter)
                    .await?
            } else {
                self.table.evict(&self.key, &self.owner, counter).await?
            };
            if done {
                return Ok(());
            }
            // Refused: retry if a renewal still in flight moved the counter (or a handoff was
            // asked for meanwhile), else it is not ours.
            if self.holder(counter).await? == Holder::Taken {
                return Ok(());
            }
        }
        Ok(())
    }

    fn lost_error(&self) -> Error {
        Error::LeaseLost {
            shard_id: self.key.clone(),
        }
    }
}

/// Renews `lease` every `interval` until it is lost; after a failed renewal it tries again after
/// a quarter interval, so a single lost answer does not cost the lease. Runs in its own task, so
/// nothing else the worker does (taking leases, shard sync, processors, checkpoints) delays it.
pub(crate) async fn keep_renewed(lease: Arc<HeldLease>, interval: Duration) {
    let retry = (interval / 4).max(Duration::from_millis(10));
    let mut next = interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = lease.lost() => return,
        }
        next = match lease.renew().await {
            Renewal::Renewed => interval,
            Renewal::Failed => retry,
            // A lease being handed over cannot be renewed; it is used until it is handed over
            // or its deadline passes.
            Renewal::Lost | Renewal::Handoff => return,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: LeaseTiming = LeaseTiming {
        validity: Duration::from_millis(9_000),
        renewal_timeout: Duration::from_millis(3_308),
    };

    /// A lease whose table is never reached: these tests only move the clock.
    fn lease(sent: Instant) -> Arc<HeldLease> {
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .build(),
        );
        HeldLease::new(
            LeaseTable::new(client, "t"),
            "shard".into(),
            "me".into(),
            1,
            sent,
            crate::metrics::Scope::disabled(),
            TIMING,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn validity_runs_from_the_send_time_of_the_last_acknowledged_write() {
        let taken_sent = Instant::now();
        tokio::time::advance(Duration::from_millis(200)).await;
        let held = lease(taken_sent);
        tokio::time::advance(Duration::from_millis(8_799)).await;
        assert!(!held.is_lost());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            held.is_lost(),
            "deadline = send time of the take + validity"
        );

        let held = lease(Instant::now());
        tokio::time::advance(Duration::from_secs(3)).await;
        // A renewal sent now, answered 2 s later, counts from now.
        let sent = Instant::now();
        tokio::time::advance(Duration::from_secs(2)).await;
        held.written(1, sent);
        assert_eq!(held.counter(), 2);
        tokio::time::advance(Duration::from_millis(6_999)).await;
        assert!(!held.is_lost());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(held.is_lost());
    }

    #[tokio::test(start_paused = true)]
    async fn the_holder_stops_at_its_deadline_without_hearing_from_the_table() {
        let held = lease(Instant::now());
        let started = Instant::now();
        held.lost().await;
        assert_eq!(started.elapsed(), TIMING.validity);
        assert!(held.is_lost());
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_after_the_deadline_does_not_revive_the_lease() {
        let held = lease(Instant::now());
        let sent = Instant::now() + Duration::from_secs(5);
        tokio::time::advance(TIMING.validity).await;
        held.written(1, sent);
        assert!(held.is_lost(), "the shard may already have been stopped");
    }
}

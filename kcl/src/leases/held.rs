//! A lease this worker holds: its local counter, renewal and fenced writes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use super::{CheckpointUpdate, LeaseTable};
use crate::error::{Error, Result};

/// A held lease. Renewals and checkpoints go through one lock so the local `leaseCounter` always
/// matches the last successful write.
#[derive(Debug)]
pub(crate) struct HeldLease {
    pub key: String,
    pub owner: String,
    table: LeaseTable,
    failover: Duration,
    state: Mutex<State>,
    lost: watch::Sender<bool>,
}

#[derive(Debug)]
struct State {
    counter: u64,
    last_renewed: Instant,
}

impl HeldLease {
    /// A lease just taken (or created) at `counter`.
    pub fn new(
        table: LeaseTable,
        key: String,
        owner: String,
        counter: u64,
        failover: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            key,
            owner,
            table,
            failover,
            state: Mutex::new(State {
                counter,
                last_renewed: Instant::now(),
            }),
            lost: watch::channel(false).0,
        })
    }

    /// Whether the lease was lost.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Resolves once the lease is lost.
    pub async fn lost(&self) {
        let mut rx = self.lost.subscribe();
        let _ = rx.wait_for(|lost| *lost).await;
    }

    fn mark_lost(&self) {
        if !self.lost.send_replace(true) {
            tracing::info!(shard = %self.key, "lease lost");
            metrics::counter!("LostLeases").increment(1);
        }
    }

    /// Heartbeat; returns whether the lease is still held. A transient failure keeps the lease
    /// until renewal has failed for the whole failover time, after which others may take it.
    pub async fn renew(&self) -> bool {
        if self.is_lost() {
            return false;
        }
        let mut state = self.state.lock().await;
        match self.table.renew(&self.key, state.counter).await {
            Ok(true) => {
                state.counter += 1;
                state.last_renewed = Instant::now();
                true
            }
            Ok(false) => {
                self.mark_lost();
                false
            }
            Err(e) => {
                tracing::warn!(shard = %self.key, error = %e, "lease renewal failed");
                if state.last_renewed.elapsed() > self.failover {
                    self.mark_lost();
                    return false;
                }
                true
            }
        }
    }

    /// A checkpoint write fenced on the local counter.
    pub async fn checkpoint(&self, update: CheckpointUpdate) -> Result<()> {
        if self.is_lost() {
            return Err(self.lost_error());
        }
        let mut state = self.state.lock().await;
        if state.last_renewed.elapsed() > self.failover {
            // Others may already consider the lease expired: do not write on stale authority.
            self.mark_lost();
            return Err(self.lost_error());
        }
        match self
            .table
            .checkpoint(&self.key, &self.owner, state.counter, update)
            .await?
        {
            true => {
                state.counter += 1;
                Ok(())
            }
            false => {
                self.mark_lost();
                Err(self.lost_error())
            }
        }
    }

    /// Gives the lease up so another worker can take it at once.
    pub async fn evict(&self) -> Result<()> {
        let state = self.state.lock().await;
        let evicted = self
            .table
            .evict(&self.key, &self.owner, state.counter)
            .await;
        self.lost.send_replace(true);
        evicted.map(|_| ())
    }

    fn lost_error(&self) -> Error {
        Error::LeaseLost {
            shard_id: self.key.clone(),
        }
    }
}

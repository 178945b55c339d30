//! Checkpointing from inside a record processor.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::leases::held::HeldLease;
use crate::leases::{Checkpoint, CheckpointUpdate, SequenceNumber};
use crate::processor::Record;

/// Records how far a shard was processed. Every write is fenced on the lease counter: once the
/// lease is lost, writes fail with [`Error::LeaseLost`].
#[derive(Debug)]
pub struct Checkpointer {
    lease: Arc<HeldLease>,
    current: Checkpoint,
    largest_delivered: Option<SequenceNumber>,
    at_shard_end: bool,
    child_shard_ids: Vec<String>,
}

/// A checkpoint written as pending (`pendingCheckpoint`), to be committed with
/// [`Checkpointer::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCheckpoint {
    target: Checkpoint,
}

impl PreparedCheckpoint {
    /// Where the prepared checkpoint points.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.target
    }
}

impl Checkpointer {
    pub(crate) fn new(lease: Arc<HeldLease>, current: Checkpoint) -> Self {
        Self {
            lease,
            current,
            largest_delivered: None,
            at_shard_end: false,
            child_shard_ids: Vec::new(),
        }
    }

    pub(crate) fn delivered(&mut self, last: SequenceNumber) {
        self.largest_delivered = Some(last);
    }

    /// Sets the last record a checkpoint may cover back to the last one done (processed or
    /// given up) after a failed call, so that a checkpoint written meanwhile (in
    /// `shutdown_requested`, say) never covers records still to be delivered again.
    pub(crate) fn done_up_to(&mut self, last: Option<SequenceNumber>) {
        self.largest_delivered = last;
    }

    pub(crate) fn reached_shard_end(&mut self, children: Vec<String>) {
        self.at_shard_end = true;
        self.child_shard_ids = children;
    }

    /// The shard this checkpointer writes for.
    pub fn shard_id(&self) -> &str {
        &self.lease.key
    }

    /// The last checkpoint written (or found when the lease was taken).
    pub fn current(&self) -> &Checkpoint {
        &self.current
    }

    /// The last record a checkpoint may cover: inside `process_records`, the call's last record;
    /// after a call failed, the last record done (processed, partially done or given up), so a
    /// checkpoint never covers records that are still to be delivered again.
    pub fn largest_delivered(&self) -> Option<&SequenceNumber> {
        self.largest_delivered.as_ref()
    }

    /// Checkpoints at the last delivered record (see [`largest_delivered`](Self::largest_delivered)),
    /// or `SHARD_END` once the shard has ended.
    pub async fn checkpoint(&mut self) -> Result<()> {
        let target = match (&self.largest_delivered, self.at_shard_end) {
            (_, true) => Checkpoint::ShardEnd,
            (Some(s), false) => Checkpoint::Sequence(s.clone()),
            (None, false) => return Ok(()),
        };
        self.write(target, None, None).await
    }

    /// Checkpoints at a record.
    pub async fn checkpoint_record(&mut self, record: &Record) -> Result<()> {
        self.checkpoint_at(&record.sequence_number, record.sub_sequence_number)
            .await
    }

    /// Checkpoints at (sequence, sub-sequence), which must lie between the current checkpoint and
    /// the last delivered record.
    pub async fn checkpoint_at(&mut self, sequence: &str, sub_sequence: u64) -> Result<()> {
        let target = self.validate(sequence, sub_sequence)?;
        self.write(target, None, None).await
    }

    /// Writes a pending checkpoint at the last delivered record, with optional application state.
    pub async fn prepare_checkpoint(
        &mut self,
        application_state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpoint> {
        let target = match &self.largest_delivered {
            Some(s) => Checkpoint::Sequence(s.clone()),
            None => {
                return Err(Error::InvalidCheckpoint(
                    "no record delivered to prepare a checkpoint at".into(),
                ));
            }
        };
        self.prepare(target, application_state).await
    }

    /// Writes a pending checkpoint at (sequence, sub-sequence), with optional application state.
    pub async fn prepare_checkpoint_at(
        &mut self,
        sequence: &str,
        sub_sequence: u64,
        application_state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpoint> {
        let target = self.validate(sequence, sub_sequence)?;
        self.prepare(target, application_state).await
    }

    /// Makes a prepared checkpoint the checkpoint (and clears the pending fields).
    pub async fn commit(&mut self, prepared: PreparedCheckpoint) -> Result<()> {
        self.check_not_behind(&prepared.target)?;
        self.write(prepared.target, None, None).await
    }

    async fn prepare(
        &mut self,
        target: Checkpoint,
        state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpoint> {
        self.lease
            .checkpoint(CheckpointUpdate {
                checkpoint: None,
                pending: Some(target.clone()),
                pending_state: state,
                child_shard_ids: Vec::new(),
            })
            .await?;
        Ok(PreparedCheckpoint { target })
    }

    fn validate(&self, sequence: &str, sub_sequence: u64) -> Result<Checkpoint> {
        let target = Checkpoint::at(sequence, sub_sequence);
        let Checkpoint::Sequence(seq) = &target else {
            return Err(Error::InvalidCheckpoint(format!(
                "{sequence} is not a sequence number"
            )));
        };
        if seq.sequence.is_empty() || !seq.sequence.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidCheckpoint(format!(
                "{sequence} is not a sequence number"
            )));
        }
        match &self.largest_delivered {
            Some(last) if seq <= last => {}
            _ => {
                return Err(Error::InvalidCheckpoint(format!(
                    "{target} is beyond the last delivered record"
                )));
            }
        }
        self.check_not_behind(&target)?;
        Ok(target)
    }

    fn check_not_behind(&self, target: &Checkpoint) -> Result<()> {
        if target.rank() < self.current.rank() {
            return Err(Error::InvalidCheckpoint(format!(
                "{target} is behind the current checkpoint {}",
                self.current
            )));
        }
        Ok(())
    }

    async fn write(
        &mut self,
        target: Checkpoint,
        pending: Option<Checkpoint>,
        state: Option<Vec<u8>>,
    ) -> Result<()> {
        let child_shard_ids = if target == Checkpoint::ShardEnd {
            self.child_shard_ids.clone()
        } else {
            Vec::new()
        };
        self.lease
            .checkpoint(CheckpointUpdate {
                checkpoint: Some(target.clone()),
                pending,
                pending_state: state,
                child_shard_ids,
            })
            .await?;
        tracing::debug!(shard = %self.lease.key, checkpoint = %target, "checkpointed");
        self.current = target;
        Ok(())
    }
}

//! Leases: one DynamoDB item per shard, in the Java KCL 2.x schema.
//!
//! A lease says which worker (`leaseOwner`) processes a shard and how far it got (`checkpoint`).
//! `leaseCounter` is both heartbeat and fence: the owner bumps it on every renewal, and every write
//! is conditioned on the counter the writer last saw, so of two workers racing for a lease exactly
//! one wins. Other workers judge a lease expired when its counter has not moved, on their own
//! clock, for longer than the failover time; no wall clocks are compared between hosts.

mod checkpoint;
pub(crate) mod held;
mod serializer;
mod table;
pub(crate) mod taker;

pub use checkpoint::{Checkpoint, SequenceNumber};
pub use serializer::{from_item, to_item};
pub use table::{CheckpointUpdate, LeaseTable};

/// One lease item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `leaseKey`: the shard id.
    pub key: String,
    /// `leaseOwner`: the worker holding it, `None` when unassigned.
    pub owner: Option<String>,
    /// `leaseCounter`: fencing and heartbeat counter.
    pub counter: u64,
    /// `checkpoint` and `checkpointSubSequenceNumber`.
    pub checkpoint: Checkpoint,
    /// `pendingCheckpoint` and `pendingCheckpointSubSequenceNumber`, written by a prepared checkpoint.
    pub pending_checkpoint: Option<Checkpoint>,
    /// `pendingCheckpointState`: application state saved with the prepared checkpoint.
    pub pending_checkpoint_state: Option<Vec<u8>>,
    /// `ownerSwitchesSinceCheckpoint`.
    pub owner_switches_since_checkpoint: u64,
    /// `parentShardId` (a string set, despite the singular name).
    pub parent_shard_ids: Vec<String>,
    /// `childShardIds`, written when the shard ends.
    pub child_shard_ids: Vec<String>,
    /// `startingHashKey` and `endingHashKey`, when known.
    pub hash_range: Option<(u128, u128)>,
    /// `checkpointOwner` (KCL 3.x graceful handoff): while set, `owner` is the worker the lease
    /// is being handed to and this is the worker handing it over, which may still checkpoint
    /// until it clears the field.
    pub checkpoint_owner: Option<String>,
}

impl Lease {
    /// A new, unowned lease for `shard_id` starting at `checkpoint`.
    pub fn new(shard_id: impl Into<String>, checkpoint: Checkpoint) -> Self {
        Self {
            key: shard_id.into(),
            owner: None,
            counter: 0,
            checkpoint,
            pending_checkpoint: None,
            pending_checkpoint_state: None,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids: Vec::new(),
            child_shard_ids: Vec::new(),
            hash_range: None,
            checkpoint_owner: None,
        }
    }

    /// Whether the shard was processed to its end.
    pub fn is_finished(&self) -> bool {
        self.checkpoint == Checkpoint::ShardEnd
    }
}

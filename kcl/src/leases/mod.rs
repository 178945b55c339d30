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
    /// `leaseKey`: the shard id, or in a multi-stream application
    /// `account:stream:creationEpoch:shardId` (the Java KCL's `MultiStreamLease` key).
    pub key: String,
    /// `streamName`: the stream identifier `account:stream:creationEpoch` of a multi-stream
    /// lease (the key's prefix); `None` in a single-stream application. In memory the parent
    /// and child ids of a multi-stream lease are lease keys like `key`; in the table they are
    /// plain shard ids, as the Java KCL writes them.
    pub stream: Option<String>,
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
            stream: None,
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

    /// A new, unowned lease for shard `shard_id` of the stream identified by `stream`
    /// (`account:stream:creationEpoch`) in a multi-stream application, keyed
    /// `account:stream:creationEpoch:shardId`.
    pub fn new_multi_stream(stream: &str, shard_id: &str, checkpoint: Checkpoint) -> Self {
        Self {
            stream: Some(stream.to_owned()),
            ..Self::new(multi_stream_key(stream, shard_id), checkpoint)
        }
    }

    /// The shard id: the key without its stream prefix.
    pub fn shard_id(&self) -> &str {
        match &self.stream {
            Some(stream) => shard_of(stream, &self.key),
            None => &self.key,
        }
    }

    /// Whether the shard was processed to its end.
    pub fn is_finished(&self) -> bool {
        self.checkpoint == Checkpoint::ShardEnd
    }
}

/// The lease key of shard `shard_id` of stream `stream` (`account:stream:creationEpoch`) in a
/// multi-stream application.
pub fn multi_stream_key(stream: &str, shard_id: &str) -> String {
    format!("{stream}:{shard_id}")
}

/// `key` without the prefix of `stream`, if it has it.
pub(crate) fn shard_of<'a>(stream: &str, key: &'a str) -> &'a str {
    key.strip_prefix(stream)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(key)
}

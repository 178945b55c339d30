//! Lease <-> DynamoDB item, attribute for attribute as `DynamoDBLeaseSerializer` in the Java KCL.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Checkpoint, Lease};
use crate::error::{Error, Result};

pub(crate) const LEASE_KEY: &str = "leaseKey";
pub(crate) const LEASE_OWNER: &str = "leaseOwner";
pub(crate) const LEASE_COUNTER: &str = "leaseCounter";
pub(crate) const CHECKPOINT: &str = "checkpoint";
pub(crate) const CHECKPOINT_SUB: &str = "checkpointSubSequenceNumber";
pub(crate) const PENDING: &str = "pendingCheckpoint";
pub(crate) const PENDING_SUB: &str = "pendingCheckpointSubSequenceNumber";
pub(crate) const PENDING_STATE: &str = "pendingCheckpointState";
pub(crate) const OWNER_SWITCHES: &str = "ownerSwitchesSinceCheckpoint";
pub(crate) const PARENTS: &str = "parentShardId";
pub(crate) const CHILDREN: &str = "childShardIds";
pub(crate) const STARTING_HASH: &str = "startingHashKey";
pub(crate) const ENDING_HASH: &str = "endingHashKey";
pub(crate) const CHECKPOINT_OWNER: &str = "checkpointOwner";
pub(crate) const STREAM_NAME: &str = "streamName";
pub(crate) const SHARD_ID: &str = "shardId";

type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The item the Java KCL would write for `lease`.
pub fn to_item(lease: &Lease) -> Item {
    let mut item = Item::new();
    item.insert(LEASE_KEY.into(), s(&lease.key));
    item.insert(LEASE_COUNTER.into(), n(lease.counter));
    if let Some(owner) = &lease.owner {
        item.insert(LEASE_OWNER.into(), s(owner));
    }
    if let Some(owner) = &lease.checkpoint_owner {
        item.insert(CHECKPOINT_OWNER.into(), s(owner));
    }
    item.insert(
        OWNER_SWITCHES.into(),
        n(lease.owner_switches_since_checkpoint),
    );
    item.insert(CHECKPOINT.into(), s(lease.checkpoint.as_str()));
    item.insert(CHECKPOINT_SUB.into(), n(lease.checkpoint.sub_sequence()));
    if let Some(p) = &lease.pending_checkpoint {
        item.insert(PENDING.into(), s(p.as_str()));
        item.insert(PENDING_SUB.into(), n(p.sub_sequence()));
    }
    if let Some(state) = &lease.pending_checkpoint_state {
        item.insert(
            PENDING_STATE.into(),
            AttributeValue::B(Blob::new(state.clone())),
        );
    }
    // A multi-stream lease names its stream and shard, and its relatives by shard id.
    let plain = |ids: &[String]| -> Vec<String> {
        match &lease.stream {
            Some(stream) => ids
                .iter()
                .map(|id| super::shard_of(stream, id).to_owned())
                .collect(),
            None => ids.to_vec(),
        }
    };
    if let Some(stream) = &lease.stream {
        item.insert(STREAM_NAME.into(), s(stream));
        item.insert(SHARD_ID.into(), s(lease.shard_id()));
    }
    if !lease.parent_shard_ids.is_empty() {
        item.insert(
            PARENTS.into(),
            AttributeValue::Ss(plain(&lease.parent_shard_ids)),
        );
    }
    if !lease.child_shard_ids.is_empty() {
        item.insert(
            CHILDREN.into(),
            AttributeValue::Ss(plain(&lease.child_shard_ids)),
        );
    }
    if let Some((start, end)) = lease.hash_range {
        item.insert(STARTING_HASH.into(), s(start.to_string()));
        item.insert(ENDING_HASH.into(), s(end.to_string()));
    }
    item
}

/// Reads a lease item; unknown attributes (e.g. KCL 3.x `throughputKBps`) are ignored.
pub fn from_item(item: &Item) -> Result<Lease> {
    let key = match item.get(LEASE_KEY) {
        Some(AttributeValue::S(k)) => k.clone(),
        _ => return Err(malformed("?", "no string leaseKey")),
    };
    let bad = |reason: &str| malformed(&key, reason);
    let number = |name: &str| -> Result<Option<u64>> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| bad(&format!("{name} is not an unsigned integer"))),
            Some(_) => Err(bad(&format!("{name} is not a number"))),
        }
    };
    let string = |name: &str| -> Result<Option<String>> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(bad(&format!("{name} is not a string"))),
        }
    };
    let set = |name: &str| -> Result<Vec<String>> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(Vec::new()),
            Some(AttributeValue::Ss(v)) => Ok(v.clone()),
            // Tolerate a single string, which some hand-written tables use.
            Some(AttributeValue::S(v)) => Ok(vec![v.clone()]),
            Some(_) => Err(bad(&format!("{name} is not a string set"))),
        }
    };
    let hash = |name: &str| -> Result<Option<u128>> {
        string(name)?
            .map(|v| {
                v.parse::<u128>()
                    .map_err(|_| bad(&format!("{name} is not a 128-bit key")))
            })
            .transpose()
    };
    let checkpoint = match string(CHECKPOINT)? {
        Some(c) => Checkpoint::parse(&c, number(CHECKPOINT_SUB)?.unwrap_or(0))
            .ok_or_else(|| bad("checkpoint is neither a sentinel nor a sequence number"))?,
        // The Java KCL always writes one; treat a missing checkpoint as the start of the shard.
        None => Checkpoint::TrimHorizon,
    };
    let pending_checkpoint = match string(PENDING)? {
        Some(c) => Some(
            Checkpoint::parse(&c, number(PENDING_SUB)?.unwrap_or(0))
                .ok_or_else(|| bad("pendingCheckpoint is not a sequence number"))?,
        ),
        None => None,
    };
    // The Java serializer has written this attribute as N in some versions: read either.
    let pending_checkpoint_state = match item.get(PENDING_STATE) {
        Some(AttributeValue::B(b)) => Some(b.as_ref().to_vec()),
        Some(AttributeValue::N(v)) | Some(AttributeValue::S(v)) => Some(v.as_bytes().to_vec()),
        _ => None,
    };
    let hash_range = match (hash(STARTING_HASH)?, hash(ENDING_HASH)?) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    let stream = string(STREAM_NAME)?;
    // In memory a multi-stream lease's relatives are lease keys, like the lease's own key.
    let keys = |ids: Vec<String>| -> Vec<String> {
        match &stream {
            Some(stream) => ids
                .iter()
                .map(|id| super::multi_stream_key(stream, id))
                .collect(),
            None => ids,
        }
    };
    Ok(Lease {
        parent_shard_ids: keys(set(PARENTS)?),
        child_shard_ids: keys(set(CHILDREN)?),
        stream,
        owner: string(LEASE_OWNER)?,
        counter: number(LEASE_COUNTER)?.unwrap_or(0),
        checkpoint,
        pending_checkpoint,
        pending_checkpoint_state,
        owner_switches_since_checkpoint: number(OWNER_SWITCHES)?.unwrap_or(0),
        hash_range,
        checkpoint_owner: string(CHECKPOINT_OWNER)?,
        key,
    })
}

fn malformed(key: &str, reason: &str) -> Error {
    Error::MalformedLease {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_attribute() {
        let lease = Lease {
            key: "shardId-000000000002".into(),
            stream: None,
            owner: Some("worker-a".into()),
            counter: 42,
            checkpoint: Checkpoint::at("4959033827149025660855969253836157109592157598913658", 3),
            pending_checkpoint: Some(Checkpoint::at(
                "4959033827149025660855969253836157109592157598913700",
                0,
            )),
            pending_checkpoint_state: Some(b"state".to_vec()),
            owner_switches_since_checkpoint: 2,
            parent_shard_ids: vec!["shardId-000000000000".into()],
            child_shard_ids: vec!["shardId-000000000005".into()],
            hash_range: Some((0, u128::MAX / 2)),
            checkpoint_owner: Some("worker-b".into()),
        };
        let item = to_item(&lease);
        assert_eq!(
            item[PARENTS],
            AttributeValue::Ss(vec!["shardId-000000000000".into()])
        );
        assert_eq!(item[CHECKPOINT_SUB], AttributeValue::N("3".into()));
        assert_eq!(from_item(&item).unwrap(), lease);
    }

    #[test]
    fn multi_stream_leases_use_the_java_key_and_plain_relatives() {
        let stream = "123456789012:orders:1700000000";
        let mut lease =
            Lease::new_multi_stream(stream, "shardId-000000000002", Checkpoint::TrimHorizon);
        lease.parent_shard_ids = vec![format!("{stream}:shardId-000000000000")];
        lease.child_shard_ids = vec![format!("{stream}:shardId-000000000005")];
        let item = to_item(&lease);
        assert_eq!(
            item[LEASE_KEY],
            s("123456789012:orders:1700000000:shardId-000000000002")
        );
        assert_eq!(item[STREAM_NAME], s(stream));
        assert_eq!(item[SHARD_ID], s("shardId-000000000002"));
        assert_eq!(
            item[PARENTS],
            AttributeValue::Ss(vec!["shardId-000000000000".into()])
        );
        assert_eq!(
            item[CHILDREN],
            AttributeValue::Ss(vec!["shardId-000000000005".into()])
        );
        let read = from_item(&item).unwrap();
        assert_eq!(read, lease);
        assert_eq!(read.shard_id(), "shardId-000000000002");
    }

    #[test]
    fn sentinel_leases_have_sub_sequence_zero_and_no_owner() {
        let item = to_item(&Lease::new("s", Checkpoint::TrimHorizon));
        assert_eq!(item[CHECKPOINT], s("TRIM_HORIZON"));
        assert_eq!(item[CHECKPOINT_SUB], n(0));
        assert!(!item.contains_key(LEASE_OWNER));
        assert!(!item.contains_key(PARENTS));
    }

    #[test]
    fn rejects_malformed_items_without_panicking() {
        let mut item = to_item(&Lease::new("s", Checkpoint::Latest));
        item.insert(LEASE_COUNTER.into(), s("x"));
        assert!(matches!(
            from_item(&item),
            Err(Error::MalformedLease { .. })
        ));
        assert!(from_item(&Item::new()).is_err());
    }

    #[test]
    fn reads_pending_state_written_as_number() {
        let mut item = to_item(&Lease::new("s", Checkpoint::Latest));
        item.insert(PENDING_STATE.into(), AttributeValue::N("7".into()));
        assert_eq!(
            from_item(&item).unwrap().pending_checkpoint_state,
            Some(b"7".to_vec())
        );
    }
}

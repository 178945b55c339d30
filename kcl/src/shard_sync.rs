//! Shard sync: a lease for every shard the application must process.
//!
//! Children found at shard end (GetRecords `ChildShards`) get their leases from the consumer that
//! read the parent; this periodic ListShards pass covers the start of an application, shards a
//! crash left without leases, and streams resharded while no worker read the parents' ends.

use std::collections::HashSet;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::{HashKeyRange, Shard};

use crate::config::InitialPosition;
use crate::error::{self, Result};
use crate::leases::{Checkpoint, Lease, LeaseTable};
use crate::retrieval::StreamRef;

/// All shards of the stream, following pagination.
pub(crate) async fn list_shards(client: &Client, stream: &StreamRef) -> Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let request = match token.take() {
            Some(t) => client.list_shards().next_token(t),
            None => client
                .list_shards()
                .set_stream_name(stream.name())
                .set_stream_arn(stream.arn()),
        };
        let out = request
            .send()
            .await
            .map_err(|e| error::kinesis("ListShards", e))?;
        shards.extend(out.shards.unwrap_or_default());
        match out.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(shards),
        }
    }
}

/// The 128-bit range of a shard, if the answer carried a valid one.
pub(crate) fn hash_range(range: Option<&HashKeyRange>) -> Option<(u128, u128)> {
    let r = range?;
    Some((
        r.starting_hash_key.parse().ok()?,
        r.ending_hash_key.parse().ok()?,
    ))
}

/// The start sentinel for `position`.
pub(crate) fn initial_checkpoint(position: InitialPosition) -> Checkpoint {
    match position {
        InitialPosition::Latest => Checkpoint::Latest,
        InitialPosition::TrimHorizon => Checkpoint::TrimHorizon,
        InitialPosition::AtTimestamp(_) => Checkpoint::AtTimestamp,
    }
}

/// Creates the leases missing for `shards` given the table's `leases`; returns how many.
///
/// - A shard with a leased parent is a child: it starts at TRIM_HORIZON and waits for its parents.
/// - Another open shard starts at the initial position.
/// - A closed shard without a leased parent is created only for a new application starting at
///   TRIM_HORIZON or AT_TIMESTAMP (reading from the oldest ancestors); with LATEST it is history.
pub(crate) async fn create_missing_leases(
    table: &LeaseTable,
    shards: &[Shard],
    leases: &[Lease],
    position: InitialPosition,
) -> Result<usize> {
    let mut known: HashSet<String> = leases.iter().map(|l| l.key.clone()).collect();
    let new_application = leases.is_empty();
    let mut created = 0;
    for shard in shards {
        if known.contains(&shard.shard_id) {
            continue;
        }
        let parents: Vec<String> = [
            shard.parent_shard_id.clone(),
            shard.adjacent_parent_shard_id.clone(),
        ]
        .into_iter()
        .flatten()
        .filter(|p| known.contains(p))
        .collect();
        let closed = shard
            .sequence_number_range
            .as_ref()
            .is_some_and(|r| r.ending_sequence_number.is_some());
        let checkpoint = if !parents.is_empty() {
            Checkpoint::TrimHorizon
        } else if !closed || (new_application && position != InitialPosition::Latest) {
            initial_checkpoint(position)
        } else {
            continue;
        };
        let mut lease = Lease::new(shard.shard_id.clone(), checkpoint);
        lease.parent_shard_ids = parents;
        lease.hash_range = hash_range(shard.hash_key_range.as_ref());
        if table.create_if_absent(&lease).await? {
            tracing::info!(shard = %lease.key, checkpoint = %lease.checkpoint, "created lease");
            created += 1;
        }
        known.insert(shard.shard_id.clone());
    }
    Ok(created)
}

//! Shard sync: a lease for every shard the application must process.
//!
//! Children found at shard end (GetRecords `ChildShards`) get their leases from the consumer that
//! read the parent; this periodic ListShards pass covers the start of an application, shards a
//! crash left without leases, and streams resharded while no worker read the parents' ends.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::{HashKeyRange, Shard};

use crate::config::InitialPosition;
use crate::error::{self, Result};
use crate::leases::{Checkpoint, Lease, LeaseTable};
use crate::retrieval::StreamRef;

/// All shards of the stream, following pagination.
pub(crate) async fn list_shards(
    client: &Client,
    stream: &StreamRef,
    timeout: Duration,
) -> Result<Vec<Shard>> {
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
        let out = error::kinesis_call(timeout, "ListShards", request.send()).await?;
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

/// The leases missing for `shards` given the table's `leases`, parents before children.
///
/// Decided from the shard graph (ListShards' `ParentShardId` / `AdjacentParentShardId`) and the
/// leases, so workers starting together on a resharded stream agree, whatever part of each
/// other's work their scans saw:
/// - A shard with a lease, or with a descendant that has one, is done: it is being processed, or
///   it is history (finished and cleaned up, or skipped as older than LATEST).
/// - Any other shard gets a lease if it is open, if the application starts at TRIM_HORIZON or
///   AT_TIMESTAMP (a closed shard is read from its oldest ancestor on), or if one of its parents
///   has or gets a lease. A shard whose parent has or gets a lease starts at TRIM_HORIZON and
///   waits for that parent; any other at the initial position.
/// - Every lease records all the shard's parents. A parent that gets a lease is created before
///   the child, so a child is never found without the lease that makes it wait.
pub(crate) fn missing_leases(
    shards: &[Shard],
    leases: &[Lease],
    position: InitialPosition,
) -> Vec<Lease> {
    let by_id: HashMap<&str, &Shard> = shards.iter().map(|s| (s.shard_id.as_str(), s)).collect();
    let leased: HashSet<&str> = leases.iter().map(|l| l.key.as_str()).collect();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for shard in shards {
        for parent in parents(shard) {
            children
                .entry(parent)
                .or_default()
                .push(shard.shard_id.as_str());
        }
    }
    let mut covered: HashSet<&str> = HashSet::new();
    let mut missing = Vec::new();
    for id in parents_first(shards, &by_id) {
        let shard = by_id[id];
        if leased.contains(id) {
            covered.insert(id);
            continue;
        }
        if has_leased_descendant(id, &children, &leased) {
            continue;
        }
        let parent_ids: Vec<String> = parents(shard).map(str::to_owned).collect();
        let parent_covered = parent_ids.iter().any(|p| covered.contains(p.as_str()));
        let closed = shard
            .sequence_number_range
            .as_ref()
            .is_some_and(|r| r.ending_sequence_number.is_some());
        if !parent_covered && closed && position == InitialPosition::Latest {
            continue;
        }
        let checkpoint = if parent_covered {
            Checkpoint::TrimHorizon
        } else {
            initial_checkpoint(position)
        };
        let mut lease = Lease::new(id, checkpoint);
        lease.parent_shard_ids = parent_ids;
        lease.hash_range = hash_range(shard.hash_key_range.as_ref());
        covered.insert(id);
        missing.push(lease);
    }
    missing
}

/// Creates the leases [`missing_leases`] finds, in order; returns how many this worker wrote.
/// Stops at the first failure, so a child is never written without its parent.
pub(crate) async fn create_missing_leases(
    table: &LeaseTable,
    shards: &[Shard],
    leases: &[Lease],
    position: InitialPosition,
) -> Result<usize> {
    let mut created = 0;
    for lease in missing_leases(shards, leases, position) {
        if table.create_if_absent(&lease).await? {
            tracing::info!(shard = %lease.key, checkpoint = %lease.checkpoint, parents = ?lease.parent_shard_ids, "created lease");
            created += 1;
        }
    }
    Ok(created)
}

/// [`create_missing_leases`] for stream `stream` (`account:stream:creationEpoch`) of a
/// multi-stream application: the same decisions on the stream's own leases, written with
/// multi-stream keys.
pub(crate) async fn create_missing_stream_leases(
    table: &LeaseTable,
    stream: &str,
    shards: &[Shard],
    leases: &[Lease],
    position: InitialPosition,
) -> Result<usize> {
    let plain_ids = |ids: &[String]| -> Vec<String> {
        ids.iter()
            .map(|id| crate::leases::shard_of(stream, id).to_owned())
            .collect()
    };
    let own: Vec<Lease> = leases
        .iter()
        .filter(|l| l.stream.as_deref() == Some(stream))
        .map(|l| {
            let mut plain = l.clone();
            plain.key = l.shard_id().to_owned();
            plain.parent_shard_ids = plain_ids(&l.parent_shard_ids);
            plain.child_shard_ids = plain_ids(&l.child_shard_ids);
            plain.stream = None;
            plain
        })
        .collect();
    let mut created = 0;
    for plain in missing_leases(shards, &own, position) {
        let mut lease = Lease::new_multi_stream(stream, &plain.key, plain.checkpoint.clone());
        lease.parent_shard_ids = plain
            .parent_shard_ids
            .iter()
            .map(|p| crate::leases::multi_stream_key(stream, p))
            .collect();
        lease.hash_range = plain.hash_range;
        if table.create_if_absent(&lease).await? {
            tracing::info!(shard = %lease.key, checkpoint = %lease.checkpoint, parents = ?lease.parent_shard_ids, "created lease");
            created += 1;
        }
    }
    Ok(created)
}

fn parents(shard: &Shard) -> impl Iterator<Item = &str> {
    [
        shard.parent_shard_id.as_deref(),
        shard.adjacent_parent_shard_id.as_deref(),
    ]
    .into_iter()
    .flatten()
}

/// Shard ids with every listed parent before its children.
fn parents_first<'a>(shards: &'a [Shard], by_id: &HashMap<&'a str, &'a Shard>) -> Vec<&'a str> {
    let mut order = Vec::with_capacity(shards.len());
    let mut visited = HashSet::new();
    for shard in shards {
        // Iterative depth-first walk: lineages can be long.
        let mut stack = vec![(shard.shard_id.as_str(), false)];
        while let Some((id, expanded)) = stack.pop() {
            if expanded {
                order.push(id);
                continue;
            }
            if !visited.insert(id) {
                continue;
            }
            stack.push((id, true));
            for parent in parents(by_id[id]) {
                if by_id.contains_key(parent) && !visited.contains(parent) {
                    stack.push((parent, false));
                }
            }
        }
    }
    order
}

fn has_leased_descendant(
    id: &str,
    children: &HashMap<&str, Vec<&str>>,
    leased: &HashSet<&str>,
) -> bool {
    let mut stack: Vec<&str> = children.get(id).cloned().unwrap_or_default();
    let mut seen = HashSet::new();
    while let Some(child) = stack.pop() {
        if !seen.insert(child) {
            continue;
        }
        if leased.contains(child) {
            return true;
        }
        stack.extend(children.get(child).into_iter().flatten());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::types::SequenceNumberRange;

    fn shard(id: &str, parents: &[&str], closed: bool) -> Shard {
        let range = SequenceNumberRange::builder()
            .starting_sequence_number("1")
            .set_ending_sequence_number(closed.then(|| "9".to_string()))
            .build()
            .unwrap();
        Shard::builder()
            .shard_id(id)
            .set_parent_shard_id(parents.first().map(|p| p.to_string()))
            .set_adjacent_parent_shard_id(parents.get(1).map(|p| p.to_string()))
            .sequence_number_range(range)
            .build()
            .unwrap()
    }

    fn keys(leases: &[Lease]) -> Vec<(&str, &[String], &Checkpoint)> {
        leases
            .iter()
            .map(|l| (l.key.as_str(), l.parent_shard_ids.as_slice(), &l.checkpoint))
            .collect()
    }

    /// s0 open; p closed, split into c1 and c2.
    fn resharded() -> Vec<Shard> {
        vec![
            shard("s0", &[], false),
            shard("p", &[], true),
            shard("c1", &["p"], false),
            shard("c2", &["p"], false),
        ]
    }

    #[test]
    fn parents_come_first_and_children_link_them() {
        let missing = missing_leases(&resharded(), &[], InitialPosition::TrimHorizon);
        let p = ["p".to_string()];
        assert_eq!(
            keys(&missing),
            vec![
                ("s0", &[][..], &Checkpoint::TrimHorizon),
                ("p", &[][..], &Checkpoint::TrimHorizon),
                ("c1", &p[..], &Checkpoint::TrimHorizon),
                ("c2", &p[..], &Checkpoint::TrimHorizon),
            ]
        );
    }

    #[test]
    fn a_worker_that_saw_part_of_another_workers_sync_still_links_children() {
        // Worker A wrote s0's lease and not yet p's when worker B scanned: B must not create the
        // children without p (the old rule treated the table as not new and skipped p).
        let seen = vec![Lease::new("s0", Checkpoint::TrimHorizon)];
        let missing = missing_leases(&resharded(), &seen, InitialPosition::TrimHorizon);
        let p = ["p".to_string()];
        assert_eq!(
            keys(&missing),
            vec![
                ("p", &[][..], &Checkpoint::TrimHorizon),
                ("c1", &p[..], &Checkpoint::TrimHorizon),
                ("c2", &p[..], &Checkpoint::TrimHorizon),
            ]
        );
    }

    #[test]
    fn latest_skips_closed_history_but_still_records_parents() {
        let missing = missing_leases(&resharded(), &[], InitialPosition::Latest);
        let p = ["p".to_string()];
        assert_eq!(
            keys(&missing),
            vec![
                ("s0", &[][..], &Checkpoint::Latest),
                ("c1", &p[..], &Checkpoint::Latest),
                ("c2", &p[..], &Checkpoint::Latest),
            ]
        );
        // A leased parent (an application running before the split) makes the children wait.
        let seen = vec![
            Lease::new("s0", Checkpoint::Latest),
            Lease::new("p", Checkpoint::Latest),
        ];
        let missing = missing_leases(&resharded(), &seen, InitialPosition::Latest);
        assert_eq!(
            keys(&missing),
            vec![
                ("c1", &p[..], &Checkpoint::TrimHorizon),
                ("c2", &p[..], &Checkpoint::TrimHorizon),
            ]
        );
    }

    #[test]
    fn a_shard_with_a_leased_descendant_is_history() {
        // p finished and was cleaned up after its children got leases: it is not created again.
        let seen = vec![
            Lease::new("s0", Checkpoint::TrimHorizon),
            Lease::new("c1", Checkpoint::TrimHorizon),
        ];
        let missing = missing_leases(&resharded(), &seen, InitialPosition::TrimHorizon);
        let p = ["p".to_string()];
        assert_eq!(
            keys(&missing),
            vec![("c2", &p[..], &Checkpoint::TrimHorizon)]
        );
    }

    #[test]
    fn a_chain_of_closed_shards_under_a_leased_ancestor_is_leased() {
        // The fleet was down through two reshards: p (leased) -> c (closed) -> g (open).
        let shards = vec![
            shard("p", &[], true),
            shard("c", &["p"], true),
            shard("g", &["c"], false),
        ];
        let seen = vec![Lease::new("p", Checkpoint::at("5", 0))];
        let missing = missing_leases(&shards, &seen, InitialPosition::Latest);
        let (pc, cg) = (["p".to_string()], ["c".to_string()]);
        assert_eq!(
            keys(&missing),
            vec![
                ("c", &pc[..], &Checkpoint::TrimHorizon),
                ("g", &cg[..], &Checkpoint::TrimHorizon),
            ]
        );
    }

    #[test]
    fn merges_list_both_parents_and_come_after_them() {
        // Listed out of order on purpose.
        let shards = vec![
            shard("m", &["a", "b"], false),
            shard("b", &[], true),
            shard("a", &[], true),
        ];
        let missing = missing_leases(&shards, &[], InitialPosition::TrimHorizon);
        let order: Vec<&str> = missing.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(order.last(), Some(&"m"));
        assert_eq!(missing[2].parent_shard_ids, vec!["a", "b"]);
    }
}

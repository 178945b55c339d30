//! Lease tables read as a KCL fleet sees them: a table keyed by `leaseKey` holds one item per
//! shard in the Java KCL's schema (`leaseKey`, `leaseOwner`, `leaseCounter`, `checkpoint`,
//! `pendingCheckpoint`, `parentShardId`, `streamName` and `shardId` for multi-stream leases),
//! as `kcl::leases` and the Java KCL write it. Lag is how far the checkpoint is behind the
//! newest record of its shard, when the table's stream is in this engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::dynamodb::table::{Table, walk};
use crate::dynamodb::value::{AttributeValue, Item};
use crate::kinesis::Kinesis;
use crate::model::shard::{ReadLimits, parse_shard_id};
use crate::model::stream::Stream;

/// The hash key of a KCL lease table.
const LEASE_KEY: &str = "leaseKey";

/// A lease table.
#[derive(Debug, Serialize)]
pub(crate) struct LeaseTableView {
    /// The stream its leases were matched to, if one was (multi-stream tables name theirs in
    /// each lease).
    pub(crate) stream: Option<String>,
    pub(crate) leases: Vec<LeaseView>,
    /// Each owner with the number of leases it holds, by owner.
    pub(crate) owners: BTreeMap<String, usize>,
}

/// One lease item.
#[derive(Debug, Serialize)]
pub(crate) struct LeaseView {
    pub(crate) key: String,
    /// The stream a multi-stream lease names.
    pub(crate) stream: Option<String>,
    pub(crate) shard_id: String,
    pub(crate) owner: Option<String>,
    pub(crate) counter: Option<String>,
    pub(crate) checkpoint: Option<String>,
    pub(crate) pending_checkpoint: Option<String>,
    pub(crate) parents: Vec<String>,
    #[serde(skip)]
    hash_range: Option<(u128, u128)>,
    /// Milliseconds from the first record after the checkpoint to now (0 when caught up or
    /// finished); `None` when not computable.
    pub(crate) lag_ms: Option<i64>,
}

/// The leases of `table`, if it is a lease table.
pub(crate) fn read(table: &Table) -> Option<LeaseTableView> {
    let key = &table.meta.key;
    if key.hash.name != LEASE_KEY || key.hash.kind != "S" || key.range.is_some() {
        return None;
    }
    let leases: Vec<LeaseView> = walk(&table.items, None)
        .filter_map(|(_, _, item)| lease(item))
        .collect();
    let mut owners = BTreeMap::new();
    for owner in leases.iter().filter_map(|l| l.owner.as_ref()) {
        *owners.entry(owner.clone()).or_insert(0) += 1;
    }
    Some(LeaseTableView {
        stream: None,
        leases,
        owners,
    })
}

fn lease(item: &Item) -> Option<LeaseView> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        Some(AttributeValue::N(n)) => Some(n.to_string()),
        _ => None,
    };
    let key = text(LEASE_KEY)?;
    // A multi-stream lease key is `account:stream:creationEpoch:shardId`.
    let parts: Vec<&str> = key.split(':').collect();
    let (stream, shard) = match (text("streamName"), text("shardId")) {
        (Some(stream), Some(shard)) => (Some(stream), shard),
        _ if parts.len() == 4 => (Some(parts[1].to_owned()), parts[3].to_owned()),
        _ => (None, key.clone()),
    };
    let parents = match item.get("parentShardId") {
        Some(AttributeValue::Ss(ids)) => ids.clone(),
        Some(AttributeValue::S(id)) => vec![id.clone()],
        _ => Vec::new(),
    };
    let hash = |name: &str| text(name).and_then(|v| v.parse::<u128>().ok());
    Some(LeaseView {
        key,
        stream,
        shard_id: shard,
        owner: text("leaseOwner"),
        counter: text("leaseCounter"),
        checkpoint: text("checkpoint"),
        pending_checkpoint: text("pendingCheckpoint"),
        parents,
        hash_range: hash("startingHashKey").zip(hash("endingHashKey")),
        lag_ms: None,
    })
}

/// Finds the stream of each lease and measures its lag. A single-stream table's stream is the
/// one stream of this engine that has every shard its leases name (with their hash ranges,
/// where the leases give them); with none or several, lag is not computable.
pub(crate) fn measure_lag(
    kinesis: &Kinesis,
    streams: &[Arc<Stream>],
    table: &mut LeaseTableView,
    now_ms: i64,
) {
    // One look at each stream's shards (under its lock) for all the table's leases.
    let fits = |stream: &Stream, leases: &[&LeaseView]| {
        let state = stream.state.lock();
        leases.iter().all(|lease| {
            parse_shard_id(&lease.shard_id)
                .and_then(|index| state.shard(index))
                .is_some_and(|shard| {
                    lease.hash_range.is_none_or(|(start, end)| {
                        (start, end) == (shard.hash_range.start, shard.hash_range.end)
                    })
                })
        })
    };
    let single: Vec<&LeaseView> = table.leases.iter().filter(|l| l.stream.is_none()).collect();
    if !single.is_empty() {
        let candidates: Vec<&Arc<Stream>> = streams.iter().filter(|s| fits(s, &single)).collect();
        if let [only] = candidates.as_slice() {
            table.stream = Some(only.name.clone());
        }
    }
    let limits = ReadLimits {
        max_records: 0,
        max_bytes: 0,
        durable_lsn: kinesis.durable_lsn(),
    };
    for lease in &mut table.leases {
        let name = lease.stream.as_ref().or(table.stream.as_ref());
        let Some(stream) = name.and_then(|n| streams.iter().find(|s| &s.name == n)) else {
            continue;
        };
        let Some(index) = parse_shard_id(&lease.shard_id) else {
            continue;
        };
        let position = match lease.checkpoint.as_deref() {
            Some("SHARD_END") | Some("LATEST") => {
                lease.lag_ms = Some(0);
                continue;
            }
            Some("TRIM_HORIZON") => 0,
            Some(sequence) => match sequence.parse::<u128>() {
                Ok(sequence) => sequence.saturating_add(1),
                Err(_) => continue,
            },
            None => continue,
        };
        let state = stream.state.lock();
        if let Some(shard) = state.shard(index) {
            // With room for no record, a read says how long the first one past the
            // checkpoint has waited.
            lease.lag_ms = Some(shard.read(position, limits, now_ms).millis_behind);
        }
    }
}

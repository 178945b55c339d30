//! A snapshot of what the engine holds, as `/_shardline/state.json`, the page and `/metrics`
//! show it: streams with their shards, counters and consumers, and DynamoDB tables, lease
//! tables read as the fleet sees them.

use std::sync::Arc;

use serde::Serialize;

use super::leases::{self, LeaseTableView};
use super::rates::{Sample, ShardRates};
use super::{Observe, Panel};
use crate::dynamodb::DynamoDb;
use crate::kinesis::Kinesis;
use crate::model::shard::shard_id;
use crate::model::stream::Stream;

/// Everything the page shows.
#[derive(Debug, Serialize)]
pub(crate) struct State {
    /// The engine's clock when the snapshot was taken, epoch ms.
    pub(crate) now_ms: i64,
    pub(crate) streams: Vec<StreamView>,
    pub(crate) tables: Vec<TableView>,
    /// Panels added through [`Observe::add_section`].
    pub(crate) sections: Vec<Panel>,
}

/// A stream.
#[derive(Debug, Serialize)]
pub(crate) struct StreamView {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) status: &'static str,
    pub(crate) mode: &'static str,
    pub(crate) retention_hours: u32,
    pub(crate) shards: Vec<ShardView>,
    pub(crate) consumers: Vec<ConsumerView>,
}

/// A shard with its lineage and counters.
#[derive(Debug, Serialize)]
pub(crate) struct ShardView {
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) index: u32,
    pub(crate) open: bool,
    /// `ParentShardId`, then `AdjacentParentShardId` (a merge).
    pub(crate) parents: Vec<String>,
    pub(crate) starting_hash_key: String,
    pub(crate) ending_hash_key: String,
    /// Where the range starts and ends, as fractions of the hash key space.
    pub(crate) range_from: f64,
    pub(crate) range_to: f64,
    pub(crate) records_in: u64,
    pub(crate) bytes_in: u64,
    /// GetRecords.
    pub(crate) records_polled: u64,
    pub(crate) bytes_polled: u64,
    /// Fan-out.
    pub(crate) records_pushed: u64,
    pub(crate) bytes_pushed: u64,
    pub(crate) throttled: u64,
    /// `MillisBehindLatest` of the last GetRecords and of the last fan-out read.
    pub(crate) polled_age_ms: Option<i64>,
    pub(crate) pushed_age_ms: Option<i64>,
    /// Records and bytes per second over the last second or so, once two looks are a second
    /// apart.
    pub(crate) rates: Option<ShardRates>,
    /// Consumers with a live subscription to this shard.
    pub(crate) subscribers: Vec<String>,
}

/// An enhanced fan-out consumer.
#[derive(Debug, Serialize)]
pub(crate) struct ConsumerView {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) status: &'static str,
    /// The shards it has a live subscription to.
    pub(crate) subscriptions: Vec<String>,
}

/// A DynamoDB table.
#[derive(Debug, Serialize)]
pub(crate) struct TableView {
    pub(crate) name: String,
    pub(crate) items: usize,
    pub(crate) size_bytes: usize,
    pub(crate) conditional_check_failures: u64,
    /// Set when the table is keyed by `leaseKey`, as the KCL's lease tables are.
    pub(crate) leases: Option<LeaseTableView>,
}

impl State {
    /// Takes a snapshot. `with_rates` also samples the counters for the page's rates (a
    /// scrape does not, so that Prometheus does not disturb them).
    pub(crate) fn collect(
        kinesis: &Kinesis,
        dynamodb: &DynamoDb,
        observe: &Observe,
        with_rates: bool,
    ) -> Self {
        let now_ms = kinesis.now_ms();
        let streams = kinesis.registry.list();
        let mut views: Vec<StreamView> = streams.iter().map(|s| stream_view(kinesis, s)).collect();
        if with_rates {
            let samples = streams.iter().zip(&views).flat_map(|(stream, view)| {
                view.shards
                    .iter()
                    .map(move |shard| ((stream.id, shard.index), sample_of(shard)))
            });
            let rates = observe.rates.sample(now_ms, samples);
            for (stream, view) in streams.iter().zip(&mut views) {
                for shard in &mut view.shards {
                    shard.rates = rates.get(&(stream.id, shard.index)).copied();
                }
            }
        }
        let tables = dynamodb
            .table_list()
            .into_iter()
            .map(|table| {
                let table = table.lock();
                TableView {
                    name: table.meta.name.clone(),
                    items: table.item_count,
                    size_bytes: table.size_bytes,
                    conditional_check_failures: table.counters.conditional_failures(),
                    leases: leases::read(&table),
                }
            })
            .collect::<Vec<_>>();
        let mut tables = tables;
        for table in &mut tables {
            if let Some(leases) = &mut table.leases {
                leases::measure_lag(kinesis, &streams, leases, now_ms);
            }
        }
        Self {
            now_ms,
            streams: views,
            tables,
            sections: observe.panels(),
        }
    }
}

/// The counters of a shard view, for the rate sampler: every read, polled or pushed, counts.
fn sample_of(shard: &ShardView) -> Sample {
    Sample {
        records_in: shard.records_in,
        bytes_in: shard.bytes_in,
        records_out: shard.records_polled + shard.records_pushed,
        bytes_out: shard.bytes_polled + shard.bytes_pushed,
    }
}

/// Where `key` sits in the hash key space, from 0 to 1.
fn fraction(key: u128) -> f64 {
    key as f64 / u128::MAX as f64
}

fn stream_view(kinesis: &Kinesis, stream: &Arc<Stream>) -> StreamView {
    let state = stream.state.lock();
    let mut subscribers: Vec<(u32, String)> = Vec::new();
    let consumers = state
        .consumers
        .values()
        .map(|consumer| {
            let mut shards: Vec<u32> = consumer.subscriptions.keys().copied().collect();
            shards.sort_unstable();
            subscribers.extend(shards.iter().map(|s| (*s, consumer.name.clone())));
            ConsumerView {
                name: consumer.name.clone(),
                arn: consumer.arn(&stream.arn),
                status: if kinesis.consumer_is_active(consumer) {
                    "ACTIVE"
                } else {
                    "CREATING"
                },
                subscriptions: shards.into_iter().map(shard_id).collect(),
            }
        })
        .collect();
    let shards = state
        .shards
        .iter()
        .map(|shard| {
            let totals = stream.counters.totals(shard.index);
            ShardView {
                id: shard.id(),
                index: shard.index,
                open: shard.is_open(),
                parents: [shard.parent, shard.adjacent_parent]
                    .into_iter()
                    .flatten()
                    .map(shard_id)
                    .collect(),
                starting_hash_key: shard.hash_range.start.to_string(),
                ending_hash_key: shard.hash_range.end.to_string(),
                range_from: fraction(shard.hash_range.start),
                range_to: fraction(shard.hash_range.end),
                records_in: totals.records_in,
                bytes_in: totals.bytes_in,
                records_polled: totals.polled.records,
                bytes_polled: totals.polled.bytes,
                records_pushed: totals.pushed.records,
                bytes_pushed: totals.pushed.bytes,
                throttled: totals.throttled,
                polled_age_ms: totals.polled.age_ms,
                pushed_age_ms: totals.pushed.age_ms,
                rates: None,
                subscribers: subscribers
                    .iter()
                    .filter(|(s, _)| *s == shard.index)
                    .map(|(_, name)| name.clone())
                    .collect(),
            }
        })
        .collect();
    StreamView {
        name: stream.name.clone(),
        arn: stream.arn.clone(),
        status: kinesis.status_of(stream, &state),
        mode: state.mode.as_str(),
        retention_hours: state.retention_hours,
        shards,
        consumers,
    }
}

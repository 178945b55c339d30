//! `/metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Kinesis series are per stream and shard (labels `stream`, `shard`; reads also `api`, one of
//! `GetRecords` and `SubscribeToShard`), DynamoDB series per table (label `table`):
//!
//! | Series | Type | What |
//! |---|---|---|
//! | `shardline_kinesis_incoming_records_total` | counter | records appended (PutRecord, PutRecords) |
//! | `shardline_kinesis_incoming_bytes_total` | counter | their data plus partition keys |
//! | `shardline_kinesis_outgoing_records_total{api}` | counter | records read |
//! | `shardline_kinesis_outgoing_bytes_total{api}` | counter | their data plus partition keys |
//! | `shardline_kinesis_throttled_requests_total` | counter | requests refused for the shard's throughput (a PutRecords record counts as one) |
//! | `shardline_kinesis_iterator_age_milliseconds{api}` | gauge | `MillisBehindLatest` of the last read (absent before the first) |
//! | `shardline_kinesis_shard_open` | gauge | 1 while the shard takes writes, 0 once closed by resharding |
//! | `shardline_kinesis_subscriptions{consumer}` | gauge | live fan-out subscriptions of the consumer to the shard |
//! | `shardline_dynamodb_items` | gauge | items in the table |
//! | `shardline_dynamodb_table_size_bytes` | gauge | the items' size as DynamoDB counts it |
//! | `shardline_dynamodb_conditional_check_failures_total` | counter | writes refused by their condition (transaction items included) |
//! | `shardline_dynamodb_leases_held{owner}` | gauge | leases of a KCL lease table held by the owner |
//! | `shardline_dynamodb_lease_lag_milliseconds{lease}` | gauge | how long the first record after the lease's checkpoint has waited (leases of a stream in this engine) |
//!
//! Counters start at zero when the engine starts (or the stream or table is created).

use std::fmt::Write as _;

use super::state::State;

/// The content type of the text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A text exposition being written: whole families, each with its `HELP` and `TYPE`.
#[derive(Debug, Default)]
pub(crate) struct MetricsText {
    out: String,
}

/// A Prometheus metric type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// Only goes up (until a restart).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl MetricsText {
    /// Starts a family; its samples follow with [`MetricsText::sample`].
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the family started last.
    pub(crate) fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl std::fmt::Display,
    ) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_label(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// The text written.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes the engine's own families for `state`.
pub(crate) fn write(state: &State, out: &mut MetricsText) {
    use Kind::{Counter, Gauge};
    let shards = || {
        state.streams.iter().flat_map(|stream| {
            stream
                .shards
                .iter()
                .map(move |shard| (stream.name.as_str(), shard))
        })
    };
    type Of = fn(&super::state::ShardView) -> u64;
    let per_shard: [(&str, Kind, &str, Of); 4] = [
        (
            "shardline_kinesis_incoming_records_total",
            Counter,
            "Records appended to the shard (PutRecord, PutRecords).",
            |s| s.records_in,
        ),
        (
            "shardline_kinesis_incoming_bytes_total",
            Counter,
            "Bytes appended to the shard: data plus partition keys.",
            |s| s.bytes_in,
        ),
        (
            "shardline_kinesis_throttled_requests_total",
            Counter,
            "Requests refused for the shard's throughput (ProvisionedThroughputExceeded); a PutRecords record counts as one.",
            |s| s.throttled,
        ),
        (
            "shardline_kinesis_shard_open",
            Gauge,
            "1 while the shard takes writes, 0 once resharding closed it.",
            |s| u64::from(s.open),
        ),
    ];
    for (name, kind, help, of) in per_shard {
        out.family(name, kind, help);
        for (stream, shard) in shards() {
            out.sample(name, &[("stream", stream), ("shard", &shard.id)], of(shard));
        }
    }
    type Read = fn(&super::state::ShardView) -> (u64, u64);
    let by_api: [(&str, Read); 2] = [
        ("GetRecords", |s| (s.records_polled, s.bytes_polled)),
        ("SubscribeToShard", |s| (s.records_pushed, s.bytes_pushed)),
    ];
    for (name, help, pick) in [
        (
            "shardline_kinesis_outgoing_records_total",
            "Records read from the shard, by GetRecords or pushed to fan-out subscriptions.",
            0,
        ),
        (
            "shardline_kinesis_outgoing_bytes_total",
            "Bytes read from the shard (data plus partition keys), by GetRecords or pushed to fan-out subscriptions.",
            1,
        ),
    ] {
        out.family(name, Counter, help);
        for (stream, shard) in shards() {
            for (api, read) in by_api {
                let (records, bytes) = read(shard);
                let value = if pick == 0 { records } else { bytes };
                out.sample(
                    name,
                    &[("stream", stream), ("shard", &shard.id), ("api", api)],
                    value,
                );
            }
        }
    }
    let age = "shardline_kinesis_iterator_age_milliseconds";
    out.family(
        age,
        Gauge,
        "MillisBehindLatest of the last read of the shard: how long the oldest record not yet read has waited.",
    );
    for (stream, shard) in shards() {
        for (api, value) in [
            ("GetRecords", shard.polled_age_ms),
            ("SubscribeToShard", shard.pushed_age_ms),
        ] {
            if let Some(value) = value {
                out.sample(
                    age,
                    &[("stream", stream), ("shard", &shard.id), ("api", api)],
                    value,
                );
            }
        }
    }
    let subscriptions = "shardline_kinesis_subscriptions";
    out.family(
        subscriptions,
        Gauge,
        "Live enhanced fan-out subscriptions (SubscribeToShard) of the consumer to the shard.",
    );
    for (stream, shard) in shards() {
        for consumer in &shard.subscribers {
            out.sample(
                subscriptions,
                &[
                    ("stream", stream),
                    ("shard", &shard.id),
                    ("consumer", consumer),
                ],
                1,
            );
        }
    }
    type Table = fn(&super::state::TableView) -> u64;
    let per_table: [(&str, Kind, &str, Table); 3] = [
        (
            "shardline_dynamodb_items",
            Gauge,
            "Items in the DynamoDB table.",
            |t| t.items as u64,
        ),
        (
            "shardline_dynamodb_table_size_bytes",
            Gauge,
            "Size of the table's items as DynamoDB counts it.",
            |t| t.size_bytes as u64,
        ),
        (
            "shardline_dynamodb_conditional_check_failures_total",
            Counter,
            "Writes refused because their condition failed (ConditionalCheckFailed), transaction items included.",
            |t| t.conditional_check_failures,
        ),
    ];
    for (name, kind, help, of) in per_table {
        out.family(name, kind, help);
        for table in &state.tables {
            out.sample(name, &[("table", &table.name)], of(table));
        }
    }
    let lease_tables = || {
        state
            .tables
            .iter()
            .filter_map(|t| Some((t.name.as_str(), t.leases.as_ref()?)))
    };
    let held = "shardline_dynamodb_leases_held";
    out.family(
        held,
        Gauge,
        "Leases of a KCL lease table (keyed by leaseKey) held by the owner.",
    );
    for (table, leases) in lease_tables() {
        for (owner, count) in &leases.owners {
            out.sample(held, &[("table", table), ("owner", owner)], count);
        }
    }
    let lag = "shardline_dynamodb_lease_lag_milliseconds";
    out.family(
        lag,
        Gauge,
        "How long the first record after a lease's checkpoint has waited (0 when caught up), for leases of a stream in this engine.",
    );
    for (table, leases) in lease_tables() {
        for lease in &leases.leases {
            if let Some(value) = lease.lag_ms {
                out.sample(lag, &[("table", table), ("lease", &lease.key)], value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let mut out = MetricsText::default();
        out.family("x_total", Kind::Counter, "An \\ x.");
        out.sample("x_total", &[("a", "q\"b\\c\nd"), ("b", "e")], 3);
        out.sample("x_total", &[], 4);
        assert_eq!(
            out.finish(),
            "# HELP x_total An \\\\ x.\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"b\\\\c\\nd\",b=\"e\"} 3\nx_total 4\n"
        );
    }
}

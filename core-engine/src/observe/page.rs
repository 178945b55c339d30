//! The page: HTML rendered here from a [`State`], so it reads without JavaScript; the script
//! (`dashboard.js`) swaps in a fresh [`panel`] every second.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Panel;
use super::leases::LeaseTableView;
use super::state::{ShardView, State, StreamView, TableView};

/// The page around the panel.
const SHELL: &str = include_str!("page.html");
/// The script that refreshes the panel.
pub(crate) const SCRIPT: &str = include_str!("dashboard.js");
/// The style sheet.
pub(crate) const STYLE: &str = include_str!("dashboard.css");

/// The whole page.
pub(crate) fn page(state: &State) -> String {
    let status = format!(
        "Snapshot at {} UTC; not refreshing (JavaScript is off).",
        clock(state.now_ms)
    );
    SHELL
        .replace("{{status}}", &escape(&status))
        .replace("{{panel}}", &panel(state))
}

/// Everything below the page's heading.
pub(crate) fn panel(state: &State) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<p class=\"summary\">{} · engine clock {} UTC</p>",
        summary(state),
        clock(state.now_ms)
    );
    out.push_str("<section class=\"streams\"><h2>Streams</h2>");
    if state.streams.is_empty() {
        out.push_str("<p class=\"empty\">No streams yet.</p>");
    }
    for stream in &state.streams {
        stream_html(&mut out, stream);
    }
    out.push_str("</section><section class=\"tables\"><h2>DynamoDB tables</h2>");
    if state.tables.is_empty() {
        out.push_str("<p class=\"empty\">No tables yet.</p>");
    }
    let (lease_tables, others): (Vec<&TableView>, Vec<&TableView>) =
        state.tables.iter().partition(|t| t.leases.is_some());
    for table in lease_tables {
        if let Some(leases) = &table.leases {
            lease_table_html(&mut out, table, leases);
        }
    }
    if !others.is_empty() {
        let rows = others
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.items.to_string(),
                    bytes(t.size_bytes as f64),
                    t.conditional_check_failures.to_string(),
                ]
            })
            .collect();
        table_html(
            &mut out,
            "other",
            &["table", "items", "size", "conditional check failures"],
            rows,
        );
    }
    out.push_str("</section>");
    for panel in &state.sections {
        section_html(&mut out, panel);
    }
    out
}

fn summary(state: &State) -> String {
    let shards: usize = state.streams.iter().map(|s| s.shards.len()).sum();
    let open: usize = state
        .streams
        .iter()
        .map(|s| s.shards.iter().filter(|sh| sh.open).count())
        .sum();
    let leases = state.tables.iter().filter(|t| t.leases.is_some()).count();
    format!(
        "{}, {open} open of {}, {} ({})",
        count(state.streams.len(), "stream"),
        count(shards, "shard"),
        count(state.tables.len(), "table"),
        count(leases, "lease table"),
    )
}

/// `1 stream`, `2 streams`.
fn count(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

fn stream_html(out: &mut String, stream: &StreamView) {
    let open = stream.shards.iter().filter(|s| s.open).count();
    let (mut write, mut read) = (0.0, 0.0);
    for rates in stream.shards.iter().filter_map(|s| s.rates) {
        write += rates.write_records;
        read += rates.read_records;
    }
    let _ = write!(
        out,
        "<article class=\"stream\" data-stream=\"{name}\"><h3>{name} <span class=\"badge {status_class}\">{status}</span></h3>\
         <p class=\"meta\">{mode} · {open} open of {total} shards · retention {hours} h · writes {write} · reads {read}</p>",
        name = escape(&stream.name),
        status_class = stream.status.to_ascii_lowercase(),
        status = stream.status,
        mode = stream.mode,
        total = stream.shards.len(),
        hours = stream.retention_hours,
        write = per_second(write, "rec"),
        read = per_second(read, "rec"),
    );
    // The lineage as a tree: each shard under its parent; a merged shard under its first
    // parent, and named under the other.
    let known: BTreeMap<&str, &ShardView> =
        stream.shards.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut children: BTreeMap<&str, Vec<(&ShardView, bool)>> = BTreeMap::new();
    let mut roots = Vec::new();
    for shard in &stream.shards {
        match shard
            .parents
            .first()
            .filter(|p| known.contains_key(p.as_str()))
        {
            Some(parent) => {
                children.entry(parent).or_default().push((shard, true));
                if let Some(other) = shard
                    .parents
                    .get(1)
                    .filter(|p| known.contains_key(p.as_str()))
                {
                    children.entry(other).or_default().push((shard, false));
                }
            }
            None => roots.push(shard),
        }
    }
    out.push_str("<ul class=\"tree\">");
    for root in roots {
        shard_html(out, root, &children);
    }
    out.push_str("</ul>");
    if !stream.consumers.is_empty() {
        let rows = stream
            .consumers
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.status.to_owned(),
                    match c.subscriptions.len() {
                        0 => "none".to_owned(),
                        _ => c.subscriptions.join(", "),
                    },
                ]
            })
            .collect();
        table_html(
            out,
            "consumers",
            &["consumer", "status", "live subscriptions"],
            rows,
        );
    }
    out.push_str("</article>");
}

fn shard_html(
    out: &mut String,
    shard: &ShardView,
    children: &BTreeMap<&str, Vec<(&ShardView, bool)>>,
) {
    let state = if shard.open { "open" } else { "closed" };
    let _ = write!(
        out,
        "<li class=\"shard {state}\"><div class=\"card\" data-shard=\"{id}\">\
         <div class=\"head\"><span class=\"sid\">{id}</span> <span class=\"badge {state}\">{state}</span>",
        id = escape(&shard.id),
    );
    if !shard.parents.is_empty() {
        let _ = write!(
            out,
            " <span class=\"parents\">parent{s} {ids}</span>",
            s = if shard.parents.len() > 1 { "s" } else { "" },
            ids = escape(&shard.parents.join(" + ")),
        );
    }
    let (from, to) = (shard.range_from * 100.0, shard.range_to * 100.0);
    let _ = write!(
        out,
        "</div><div class=\"range\" title=\"hash keys {start} to {end}\">\
         <svg class=\"bar\" viewBox=\"0 0 100 4\" preserveAspectRatio=\"none\" aria-hidden=\"true\">\
         <rect class=\"all\" x=\"0\" y=\"0\" width=\"100\" height=\"4\"/>\
         <rect class=\"own\" x=\"{from:.2}\" y=\"0\" width=\"{width:.2}\" height=\"4\"/></svg>\
         <span>hash {from:.1}% – {to:.1}%</span></div>",
        start = shard.starting_hash_key,
        end = shard.ending_hash_key,
        width = (to - from).max(0.5),
    );
    let rates = match shard.rates {
        Some(r) => format!(
            "write <b>{}</b> {} · read <b>{}</b> {}",
            per_second(r.write_records, "rec"),
            per_second_bytes(r.write_bytes),
            per_second(r.read_records, "rec"),
            per_second_bytes(r.read_bytes),
        ),
        None => "write – · read – (rates after a second)".to_owned(),
    };
    let _ = write!(out, "<div class=\"io\">{rates}</div>");
    let mut totals = format!(
        "in {} rec / {} · out {} rec / {} polled, {} rec / {} pushed",
        shard.records_in,
        bytes(shard.bytes_in as f64),
        shard.records_polled,
        bytes(shard.bytes_polled as f64),
        shard.records_pushed,
        bytes(shard.bytes_pushed as f64),
    );
    if shard.throttled > 0 {
        let _ = write!(
            totals,
            " · <span class=\"warn\">throttled {}</span>",
            shard.throttled
        );
    }
    for (what, age) in [
        ("polled", shard.polled_age_ms),
        ("pushed", shard.pushed_age_ms),
    ] {
        if let Some(age) = age {
            let _ = write!(totals, " · {what} age {}", millis(age));
        }
    }
    let _ = write!(out, "<div class=\"totals\">{totals}</div>");
    if !shard.subscribers.is_empty() {
        out.push_str("<div class=\"subs\">subscribed:");
        for consumer in &shard.subscribers {
            let _ = write!(out, " <span class=\"consumer\">{}</span>", escape(consumer));
        }
        out.push_str("</div>");
    }
    out.push_str("</div>");
    if let Some(kids) = children.get(shard.id.as_str()) {
        out.push_str("<ul>");
        for (child, here) in kids {
            if *here {
                shard_html(out, child, children);
            } else {
                let _ = write!(
                    out,
                    "<li class=\"link\"><span class=\"sid\">{id}</span> (merged; shown under {first})</li>",
                    id = escape(&child.id),
                    first = escape(child.parents.first().map_or("", String::as_str)),
                );
            }
        }
        out.push_str("</ul>");
    }
    out.push_str("</li>");
}

fn lease_table_html(out: &mut String, table: &TableView, leases: &LeaseTableView) {
    let stream = match &leases.stream {
        Some(stream) => format!("leases of stream {}", escape(stream)),
        None if leases.leases.iter().any(|l| l.stream.is_some()) => "multi-stream leases".into(),
        None => "leases (stream not found here, so no lag)".into(),
    };
    let _ = write!(
        out,
        "<article class=\"lease-table\" data-table=\"{name}\"><h3>{name} <span class=\"badge lease\">lease table</span></h3>\
         <p class=\"meta\">{stream} · {items} items · {failures} conditional check failures</p><p class=\"owners\">",
        name = escape(&table.name),
        items = table.items,
        failures = table.conditional_check_failures,
    );
    if leases.owners.is_empty() {
        out.push_str("no owners");
    }
    for (owner, count) in &leases.owners {
        let _ = write!(
            out,
            "<span class=\"owner\">{}</span> holds {count} · ",
            escape(owner)
        );
    }
    let unowned = leases.leases.iter().filter(|l| l.owner.is_none()).count();
    let _ = write!(out, "{unowned} unowned</p>");
    let rows = leases
        .leases
        .iter()
        .map(|l| {
            vec![
                match &l.stream {
                    Some(stream) => format!("{stream} / {}", l.shard_id),
                    None => l.key.clone(),
                },
                l.owner.clone().unwrap_or_else(|| "–".into()),
                l.counter.clone().unwrap_or_default(),
                l.checkpoint.clone().unwrap_or_default(),
                l.pending_checkpoint.clone().unwrap_or_default(),
                l.lag_ms.map_or_else(|| "?".into(), millis),
                l.parents.join(", "),
            ]
        })
        .collect();
    table_html(
        out,
        "leases",
        &[
            "lease",
            "owner",
            "counter",
            "checkpoint",
            "pending",
            "lag",
            "parents",
        ],
        rows,
    );
    out.push_str("</article>");
}

fn section_html(out: &mut String, panel: &Panel) {
    let _ = write!(
        out,
        "<section class=\"extra\"><h2>{}</h2>",
        escape(&panel.title)
    );
    let columns: Vec<&str> = panel.columns.iter().map(String::as_str).collect();
    table_html(out, "extra", &columns, panel.rows.clone());
    out.push_str("</section>");
}

/// A table of text cells (escaped here).
fn table_html(out: &mut String, class: &str, columns: &[&str], rows: Vec<Vec<String>>) {
    let _ = write!(out, "<table class=\"{class}\"><thead><tr>");
    for column in columns {
        let _ = write!(out, "<th>{}</th>", escape(column));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td title=\"{0}\">{0}</td>", escape(&cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// Text made safe for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn bytes(value: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = value;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn per_second(value: f64, unit: &str) -> String {
    format!("{value:.1} {unit}/s")
}

fn per_second_bytes(value: f64) -> String {
    format!("{}/s", bytes(value))
}

fn millis(ms: i64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// `HH:MM:SS` of an epoch-ms instant, UTC.
fn clock(epoch_ms: i64) -> String {
    let seconds = epoch_ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: u32, open: bool, parents: &[&str]) -> ShardView {
        ShardView {
            id: format!("shardId-{index:012}"),
            index,
            open,
            parents: parents.iter().map(|p| p.to_string()).collect(),
            starting_hash_key: "0".into(),
            ending_hash_key: "1".into(),
            range_from: 0.0,
            range_to: 1.0,
            records_in: 0,
            bytes_in: 0,
            records_polled: 0,
            bytes_polled: 0,
            records_pushed: 0,
            bytes_pushed: 0,
            throttled: 0,
            polled_age_ms: None,
            pushed_age_ms: None,
            rates: None,
            subscribers: Vec::new(),
        }
    }

    #[test]
    fn a_merged_shard_sits_under_its_first_parent_and_is_named_under_the_other() {
        let stream = StreamView {
            name: "m<x>".into(),
            arn: String::new(),
            status: "ACTIVE",
            mode: "PROVISIONED",
            retention_hours: 24,
            shards: vec![
                shard(0, false, &[]),
                shard(1, false, &[]),
                shard(2, true, &["shardId-000000000000", "shardId-000000000001"]),
            ],
            consumers: Vec::new(),
        };
        let mut html = String::new();
        stream_html(&mut html, &stream);
        assert!(html.contains("data-stream=\"m&lt;x&gt;\""));
        let first = html.find("data-shard=\"shardId-000000000000\"").unwrap();
        let second = html.find("data-shard=\"shardId-000000000001\"").unwrap();
        let child = html.find("data-shard=\"shardId-000000000002\"").unwrap();
        // The child card is nested in the first parent's list, before the second parent.
        assert!(first < child && child < second, "{html}");
        assert!(html.contains("parents shardId-000000000000 + shardId-000000000001"));
        assert!(html[second..].contains(
            "<li class=\"link\"><span class=\"sid\">shardId-000000000002</span> (merged; shown under shardId-000000000000)</li>"
        ));
    }

    #[test]
    fn text_is_escaped_and_numbers_read_well() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(millis(999), "999 ms");
        assert_eq!(millis(3_000), "3.0 s");
        assert_eq!(clock(1_750_000_000_000), "15:06:40");
    }
}

//! GetMetricData: up to 500 queries, each a metric statistic over the kept points or a metric
//! math expression over other queries, answered page by page.
//!
//! As CloudWatch does:
//! - a `MetricStat` answers one value per period that has points; periods start at `StartTime`
//!   rounded down (to the period for periods under a minute, to the minute otherwise) and points
//!   at or after `EndTime` are left out; a `Unit` that does not match the series' answers nothing;
//! - statistics are `SampleCount`, `Average`, `Sum`, `Minimum`, `Maximum`; percentiles and the
//!   other extended statistics are refused, because the engine keeps statistic sets, not values;
//! - `ScanBy` orders every page newest first (`TimestampDescending`, the default) or oldest
//!   first; a page holds at most `MaxDatapoints` values across all queries, taken in that
//!   order, each result says `Complete` when nothing of it is left for later pages or
//!   `PartialData`, and `NextToken` resumes after the last value given;
//! - `ReturnData: false` computes a query (for expressions) without returning it;
//! - input problems come back together in one `ValidationError`, one per line.
//!
//! Labels are returned as given, with the dynamic labels `${LABEL}` and `${PROP('...')}` filled
//! in, the metric name or the Id otherwise; `LabelOptions` and `AccountId` are accepted and have
//! no effect.
//!
//! `request` reads and validates the input; this module evaluates it and writes the pages.

mod request;

use std::collections::HashMap;

use serde_json::{Value, json};

use super::error::CwError;
use super::expression::{self, Expr, Series};
use super::model::Statistics;
use super::query;
use super::store::{SeriesPoints, Store};

pub(crate) use request::request;

/// A validated GetMetricData.
#[derive(Debug)]
pub(crate) struct Request {
    queries: Vec<Query>,
    start_ms: i64,
    end_ms: i64,
    ascending: bool,
    max_datapoints: usize,
    /// Where the previous page stopped.
    after: Option<Cursor>,
}

#[derive(Debug)]
struct Query {
    id: String,
    label: Option<String>,
    return_data: bool,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Stat(Stat),
    Expression(Expr),
}

#[derive(Debug)]
struct Stat {
    namespace: String,
    metric_name: String,
    dimensions: Vec<(String, String)>,
    period_ms: i64,
    statistic: String,
    unit: Option<String>,
}

/// The position of the last value a page gave: its timestamp and query index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    timestamp_ms: i64,
    query: usize,
}

impl Request {
    /// The token resuming after `cursor`: the request's fingerprint (so a token only resumes
    /// the request it came from), then the cursor.
    fn token(&self, cursor: Cursor) -> String {
        format!(
            "{:016x}-{}-{}",
            self.fingerprint(),
            cursor.timestamp_ms,
            cursor.query
        )
    }

    fn resume(&self, token: &str) -> Result<Cursor, CwError> {
        let mut parts = token.split('-');
        let fingerprint = parts.next().and_then(|f| u64::from_str_radix(f, 16).ok());
        let timestamp_ms = parts.next().and_then(|t| t.parse().ok());
        let query = parts.next().and_then(|q| q.parse().ok());
        match (fingerprint, timestamp_ms, query, parts.next()) {
            (Some(f), Some(timestamp_ms), Some(query), None) if f == self.fingerprint() => {
                Ok(Cursor {
                    timestamp_ms,
                    query,
                })
            }
            _ => Err(CwError::invalid_next_token()),
        }
    }

    /// FNV-1a over what decides the answer (not the page size or the token).
    fn fingerprint(&self) -> u64 {
        let text = format!(
            "{:?}{}{}{}",
            self.queries, self.start_ms, self.end_ms, self.ascending
        );
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// The order of a value in the scan: ascending or descending time, then query order.
    fn scan_key(&self, timestamp_ms: i64, query: usize) -> (i64, usize) {
        if self.ascending {
            (timestamp_ms, query)
        } else {
            // Saturating: a crafted token's timestamp must not overflow.
            (timestamp_ms.saturating_neg(), query)
        }
    }
}

/// One metric statistic: the series' points aggregated per period.
fn statistic(request: &Request, stat: &Stat, points: Option<SeriesPoints>) -> Series {
    let Some(SeriesPoints { unit, points }) = points else {
        return Series::new();
    };
    if stat.unit.is_some() && stat.unit != unit {
        return Series::new();
    }
    let period = stat.period_ms;
    // Whole periods under a minute, whole minutes otherwise.
    let rounding = if period < 60_000 { period } else { 60_000 };
    let start = request.start_ms.div_euclid(rounding) * rounding;
    let mut buckets: std::collections::BTreeMap<i64, Statistics> = Default::default();
    for (at, stats) in points {
        if at < start || at >= request.end_ms {
            continue;
        }
        let bucket = start + (at - start) / period * period;
        buckets
            .entry(bucket)
            .and_modify(|b| *b = b.merge(stats))
            .or_insert(stats);
    }
    buckets
        .into_iter()
        .map(|(at, s)| {
            let value = match stat.statistic.as_str() {
                "SampleCount" => s.sample_count,
                "Average" => s.sum / s.sample_count,
                "Sum" => s.sum,
                "Minimum" => s.minimum,
                _ => s.maximum,
            };
            (at, value)
        })
        .collect()
}

/// Every query's series: statistics from `store`, then expressions over them.
fn evaluate(request: &Request, store: &Store) -> Result<Vec<Series>, CwError> {
    let mut done: Vec<Option<Series>> = request
        .queries
        .iter()
        .map(|q| match &q.kind {
            Kind::Stat(stat) => Some(statistic(
                request,
                stat,
                store.points(&stat.namespace, &stat.metric_name, &stat.dimensions),
            )),
            Kind::Expression(_) => None,
        })
        .collect();
    let metrics: Vec<Series> = done.iter().flatten().cloned().collect();
    let index: HashMap<&str, usize> = request
        .queries
        .iter()
        .enumerate()
        .map(|(i, q)| (q.id.as_str(), i))
        .collect();
    // Expressions in dependency order, without recursion (a chain of 500 expressions must
    // not exhaust a stack): each pass evaluates those whose references are all done.
    // `check_references` refused unknown and circular references, so every pass makes progress.
    let references: Vec<Vec<usize>> = request
        .queries
        .iter()
        .map(|q| match &q.kind {
            Kind::Expression(expr) => {
                let mut ids = Vec::new();
                expr.references(&mut ids);
                ids.iter()
                    .filter_map(|id| index.get(id.as_str()).copied())
                    .collect()
            }
            Kind::Stat(_) => Vec::new(),
        })
        .collect();
    loop {
        let ready: Vec<usize> = (0..request.queries.len())
            .filter(|&i| done[i].is_none() && references[i].iter().all(|&j| done[j].is_some()))
            .collect();
        if ready.is_empty() {
            break;
        }
        for i in ready {
            let query = &request.queries[i];
            let Kind::Expression(expr) = &query.kind else {
                continue;
            };
            let mut lookup = |id: &str| -> Result<Series, String> {
                index
                    .get(id)
                    .and_then(|&j| done[j].clone())
                    .ok_or_else(|| format!("Unrecognized metric or expression Id {id}"))
            };
            let series = expression::evaluate(expr, &mut lookup, &metrics).map_err(|why| {
                CwError::validation(format!("Error in expression {}: {why}.", query.id))
            })?;
            done[i] = Some(series);
        }
    }
    Ok(done.into_iter().map(Option::unwrap_or_default).collect())
}

/// A result's label: the query's, with the dynamic labels `${LABEL}` (the default label) and
/// `${PROP('MetricName' | 'Namespace' | 'Period' | 'Stat' | 'Dim.<name>')}` filled in (others
/// are left as written); by default the metric name, or the Id of an expression.
fn label(query: &Query) -> String {
    let default = match &query.kind {
        Kind::Stat(stat) => stat.metric_name.clone(),
        Kind::Expression(_) => query.id.clone(),
    };
    let Some(mut rest) = query.label.as_deref() else {
        return default;
    };
    let mut out = String::new();
    while let Some(open) = rest.find("${") {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        out.push_str(&rest[..open]);
        let inner = &rest[open + 2..close];
        let property = inner
            .strip_prefix("PROP(")
            .and_then(|p| p.strip_suffix(')'))
            .map(|p| p.trim_matches(|c| c == '\'' || c == '"'));
        let value = match (inner, property, &query.kind) {
            ("LABEL", _, _) => Some(default.clone()),
            (_, Some("MetricName"), Kind::Stat(stat)) => Some(stat.metric_name.clone()),
            (_, Some("Namespace"), Kind::Stat(stat)) => Some(stat.namespace.clone()),
            (_, Some("Period"), Kind::Stat(stat)) => Some((stat.period_ms / 1000).to_string()),
            (_, Some("Stat"), Kind::Stat(stat)) => Some(stat.statistic.clone()),
            (_, Some(p), Kind::Stat(stat)) if p.starts_with("Dim.") => stat
                .dimensions
                .iter()
                .find(|(name, _)| name == &p[4..])
                .map(|(_, value)| value.clone()),
            _ => None,
        };
        out.push_str(value.as_deref().unwrap_or(&rest[open..=close]));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The output (as JSON, timestamps in epoch seconds) and its awsQuery XML.
pub(crate) fn answer(request: &Request, store: &Store) -> Result<(Value, String), CwError> {
    let series = evaluate(request, store)?;
    // Every returned value in scan order, after the cursor.
    let mut values: Vec<(i64, usize, f64)> = series
        .iter()
        .enumerate()
        .filter(|(i, _)| request.queries[*i].return_data)
        .flat_map(|(i, s)| s.iter().map(move |(t, v)| (*t, i, *v)))
        .filter(|(t, i, _)| {
            request.after.is_none_or(|c| {
                request.scan_key(*t, *i) > request.scan_key(c.timestamp_ms, c.query)
            })
        })
        .collect();
    values.sort_by_key(|(t, i, _)| request.scan_key(*t, *i));
    let more = values.len() > request.max_datapoints;
    let rest = values.split_off(values.len().min(request.max_datapoints));
    let next_token = more.then(|| values.last()).flatten().map(|(t, i, _)| {
        request.token(Cursor {
            timestamp_ms: *t,
            query: *i,
        })
    });
    let mut results = Vec::new();
    let mut xml = String::from("<MetricDataResults>");
    for (i, query) in request.queries.iter().enumerate() {
        if !query.return_data {
            continue;
        }
        let label = label(query);
        let page: Vec<(i64, f64)> = values
            .iter()
            .filter(|(_, q, _)| *q == i)
            .map(|(t, _, v)| (*t, *v))
            .collect();
        let status = if rest.iter().any(|(_, q, _)| *q == i) {
            "PartialData"
        } else {
            "Complete"
        };
        xml.push_str(&format!(
            "<member><Id>{}</Id><Label>{}</Label><Timestamps>",
            query::escape(&query.id),
            query::escape(&label)
        ));
        for (t, _) in &page {
            xml.push_str(&format!("<member>{}</member>", query::format_iso8601(*t)));
        }
        xml.push_str("</Timestamps><Values>");
        for (_, v) in &page {
            xml.push_str(&format!("<member>{v}</member>"));
        }
        xml.push_str(&format!(
            "</Values><StatusCode>{status}</StatusCode><Messages></Messages></member>"
        ));
        results.push(json!({
            "Id": query.id,
            "Label": label,
            "Timestamps": page.iter().map(|(t, _)| *t as f64 / 1000.0).collect::<Vec<_>>(),
            "Values": page.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            "StatusCode": status,
            "Messages": [],
        }));
    }
    xml.push_str("</MetricDataResults>");
    let mut output = json!({ "MetricDataResults": results, "Messages": [] });
    if let Some(token) = next_token {
        xml.push_str(&format!("<NextToken>{}</NextToken>", query::escape(&token)));
        output["NextToken"] = json!(token);
    }
    xml.push_str("<Messages></Messages>");
    Ok((output, xml))
}

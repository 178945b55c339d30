//! GetMetricData's input, validated as CloudWatch validates it: every problem found, one per
//! line of a single `ValidationError` (a missing `MetricDataQueries`, `StartTime` or `EndTime` is
//! a `MissingParameter`, a token from elsewhere an `InvalidNextToken`).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{Kind, Query, Request, Stat};
use crate::cloudwatch::error::CwError;
use crate::cloudwatch::expression;
use crate::cloudwatch::model;

/// The most queries one request may carry.
const MAX_QUERIES: usize = 500;
/// The most datapoints one page returns (and MaxDatapoints' default).
const MAX_DATAPOINTS: usize = 100_800;
/// The statistics a query may ask for.
const STATISTICS: &[&str] = &["SampleCount", "Average", "Sum", "Minimum", "Maximum"];
/// The most characters in an expression.
const MAX_EXPRESSION: usize = 2048;

/// Reads and validates a GetMetricData input.
pub(crate) fn request(input: &Value) -> Result<Request, CwError> {
    let empty = Map::new();
    let fields = input.as_object().unwrap_or(&empty);
    let queries = model::list(fields.get("MetricDataQueries"), "MetricDataQueries")?
        .filter(|l| !l.is_empty())
        .ok_or_else(|| CwError::missing("MetricDataQueries"))?;
    let instant = |name: &str| -> Result<i64, CwError> {
        let value = fields.get(name).filter(|v| !v.is_null());
        model::instant(value.ok_or_else(|| CwError::missing(name))?, name)
    };
    let (start_ms, end_ms) = (instant("StartTime")?, instant("EndTime")?);
    let mut problems = Vec::new();
    if queries.len() > MAX_QUERIES {
        problems.push(format!(
            "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
        ));
    }
    if start_ms >= end_ms {
        problems.push("The parameter StartTime must be less than the parameter EndTime.".into());
    }
    let ascending = match model::text(fields.get("ScanBy"), "ScanBy")?.as_deref() {
        None | Some("TimestampDescending") => false,
        Some("TimestampAscending") => true,
        Some(other) => {
            problems.push(format!(
                "The value {other} for parameter ScanBy is not valid: it must be \
                 TimestampDescending or TimestampAscending."
            ));
            false
        }
    };
    let max_datapoints = match model::number(fields.get("MaxDatapoints"), "MaxDatapoints")? {
        None => MAX_DATAPOINTS,
        Some(n) if n.fract() == 0.0 && n >= 1.0 => (n as usize).min(MAX_DATAPOINTS),
        Some(n) => {
            problems.push(format!(
                "The value {n} for parameter MaxDatapoints is not valid: it must be a positive \
                 integer."
            ));
            MAX_DATAPOINTS
        }
    };
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    let mut valid = Vec::with_capacity(queries.len());
    for (i, value) in queries.iter().enumerate() {
        let at = format!("MetricDataQueries.member.{}", i + 1);
        if let Some(id) = value.get("Id").and_then(Value::as_str)
            && !seen.insert(id)
        {
            duplicates.push(format!(
                "The value {id} for parameter {at}.Id is not unique: each query needs its own Id."
            ));
        }
        valid.extend(query(value, &at, &mut problems));
    }
    problems.extend(duplicates);
    check_references(&valid, &mut problems);
    let queries = valid;
    if !problems.is_empty() {
        return Err(CwError::validation(problems.join("\n")));
    }
    let mut request = Request {
        queries,
        start_ms,
        end_ms,
        ascending,
        max_datapoints,
        after: None,
    };
    if let Some(token) = model::text(fields.get("NextToken"), "NextToken")? {
        request.after = Some(request.resume(&token)?);
    }
    Ok(request)
}

fn query(value: &Value, at: &str, problems: &mut Vec<String>) -> Option<Query> {
    let empty = Map::new();
    let fields = value.as_object().unwrap_or(&empty);
    let mut text = |name: &str| -> Option<String> {
        model::text(fields.get(name), &format!("{at}.{name}"))
            .map_err(|e| problems.push(e.message))
            .ok()
            .flatten()
    };
    let id = text("Id");
    let label = text("Label");
    let expression = text("Expression");
    let _account = text("AccountId");
    let return_data = model::flag(fields.get("ReturnData"), &format!("{at}.ReturnData"))
        .map_err(|e| problems.push(e.message))
        .ok()
        .flatten()
        .unwrap_or(true);
    if let Err(e) = model::number(fields.get("Period"), &format!("{at}.Period")) {
        problems.push(e.message);
    }
    let id = match id {
        None => {
            problems.push(format!("The parameter {at}.Id is required."));
            return None;
        }
        Some(id) if !valid_id(&id) => {
            problems.push(format!(
                "The value {id} for parameter {at}.Id is not matching the expected pattern \
                 ^[a-z][a-zA-Z0-9_]*$."
            ));
            return None;
        }
        Some(id) => id,
    };
    let stat = fields.get("MetricStat").filter(|v| !v.is_null());
    let kind = match (stat, expression) {
        (Some(stat), None) => Kind::Stat(metric_stat(stat, &format!("{at}.MetricStat"), problems)?),
        (None, Some(text)) => {
            if text.is_empty() || text.len() > MAX_EXPRESSION {
                problems.push(format!(
                    "The value for parameter {at}.Expression must be between 1 and \
                     {MAX_EXPRESSION} characters long."
                ));
                return None;
            }
            match expression::parse(&text) {
                Ok(expr) => Kind::Expression(expr),
                Err(why) => {
                    problems.push(format!("Error in expression {id}: {why}."));
                    return None;
                }
            }
        }
        _ => {
            problems.push(format!(
                "Exactly one of {at}.MetricStat and {at}.Expression must be specified."
            ));
            return None;
        }
    };
    Some(Query {
        id,
        label,
        return_data,
        kind,
    })
}

fn valid_id(id: &str) -> bool {
    id.len() <= 255
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn metric_stat(value: &Value, at: &str, problems: &mut Vec<String>) -> Option<Stat> {
    let empty = Map::new();
    let fields = value.as_object().unwrap_or(&empty);
    let before = problems.len();
    let metric = fields.get("Metric").filter(|v| !v.is_null());
    let metric = metric.and_then(Value::as_object);
    if metric.is_none() {
        problems.push(format!("The parameter {at}.Metric is required."));
    }
    let metric = metric.unwrap_or(&empty);
    let mut required = |field: &str| -> String {
        let name = format!("{at}.Metric.{field}");
        match model::text(metric.get(field), &name) {
            Ok(Some(value)) => return value,
            Ok(None) => problems.push(format!("The parameter {name} is required.")),
            Err(e) => problems.push(e.message),
        }
        String::new()
    };
    let namespace = required("Namespace");
    let metric_name = required("MetricName");
    let dimensions = model::dimensions(metric.get("Dimensions"), &format!("{at}.Metric"))
        .map_err(|e| problems.push(e.message))
        .unwrap_or_default();
    let period_ms = match model::number(fields.get("Period"), &format!("{at}.Period")) {
        Ok(Some(p)) if valid_period(p) => p as i64 * 1000,
        Ok(Some(p)) => {
            problems.push(format!(
                "The value {p} for parameter {at}.Period is not valid: it must be 1, 5, 10, 20, \
                 30 or a multiple of 60."
            ));
            0
        }
        Ok(None) => {
            problems.push(format!("The parameter {at}.Period is required."));
            0
        }
        Err(e) => {
            problems.push(e.message);
            0
        }
    };
    let statistic = model::text(fields.get("Stat"), &format!("{at}.Stat"))
        .map_err(|e| problems.push(e.message))
        .ok()
        .flatten();
    match statistic.as_deref() {
        Some(s) if STATISTICS.contains(&s) => {}
        Some(s) if is_extended_statistic(s) => problems.push(format!(
            "The value {s} for parameter {at}.Stat is an extended statistic (a percentile or \
             trimmed statistic), which this engine cannot answer: it keeps statistic sets \
             (SampleCount, Sum, Minimum, Maximum), not the values; use one of {}.",
            STATISTICS.join(", ")
        )),
        other => problems.push(format!(
            "The value {} for parameter {at}.Stat is not a valid statistic.",
            other.unwrap_or("None")
        )),
    }
    let unit = match model::text(fields.get("Unit"), &format!("{at}.Unit")) {
        Ok(Some(unit)) if !model::UNITS.contains(&unit.as_str()) => {
            problems.push(format!(
                "The value {unit} for parameter {at}.Unit is not a valid unit."
            ));
            None
        }
        Ok(unit) => unit,
        Err(e) => {
            problems.push(e.message);
            None
        }
    };
    (problems.len() == before).then(|| Stat {
        namespace,
        metric_name,
        dimensions,
        period_ms,
        statistic: statistic.unwrap_or_default(),
        unit,
    })
}

fn valid_period(period: f64) -> bool {
    period.fract() == 0.0
        && period >= 1.0
        && ([1.0, 5.0, 10.0, 20.0, 30.0].contains(&period) || period % 60.0 == 0.0)
}

/// CloudWatch's extended statistics: `p99`, `p99.9`, `tm90`, `TM(10%:90%)`, `wm`, `tc`, `ts`,
/// `pr`, `IQR`.
fn is_extended_statistic(stat: &str) -> bool {
    let lower = stat.to_ascii_lowercase();
    if lower == "iqr" {
        return true;
    }
    ["p", "tm", "wm", "tc", "ts", "pr"].iter().any(|prefix| {
        lower.strip_prefix(prefix).is_some_and(|rest| {
            rest.starts_with('(')
                || rest
                    .parse::<f64>()
                    .is_ok_and(|n| (0.0..=100.0).contains(&n))
        })
    })
}

/// Expressions refer only to Ids of the request, without cycles.
fn check_references(queries: &[Query], problems: &mut Vec<String>) {
    let by_id: HashMap<&str, &Query> = queries.iter().map(|q| (q.id.as_str(), q)).collect();
    for query in queries {
        let Kind::Expression(expr) = &query.kind else {
            continue;
        };
        let mut references = Vec::new();
        expr.references(&mut references);
        for reference in references {
            if !by_id.contains_key(reference.as_str()) {
                problems.push(format!(
                    "Error in expression {}: Unrecognized metric or expression Id {reference}.",
                    query.id
                ));
            } else if reaches(&by_id, &reference, &query.id, &mut HashSet::new()) {
                problems.push(format!(
                    "Error in expression {}: it refers to itself through {reference}.",
                    query.id
                ));
            }
        }
    }
}

/// Whether the expression `from` refers, directly or not, to `target`.
fn reaches<'a>(
    by_id: &HashMap<&'a str, &'a Query>,
    from: &str,
    target: &str,
    seen: &mut HashSet<String>,
) -> bool {
    if from == target {
        return true;
    }
    if !seen.insert(from.to_owned()) {
        return false;
    }
    let Some(Query {
        kind: Kind::Expression(expr),
        ..
    }) = by_id.get(from)
    else {
        return false;
    };
    let mut references = Vec::new();
    expr.references(&mut references);
    references.iter().any(|r| reaches(by_id, r, target, seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_statistics_are_told_apart_from_unknown_ones() {
        for stat in [
            "p99",
            "p99.9",
            "p0",
            "tm90",
            "TM(10%:90%)",
            "wm99",
            "IQR",
            "pr(10:)",
        ] {
            assert!(is_extended_statistic(stat), "{stat}");
        }
        for stat in ["Min", "Max", "Avg", "p", "p101", "pony"] {
            assert!(!is_extended_statistic(stat), "{stat}");
        }
        assert!(valid_id("m1") && valid_id("error_rate") && valid_id("aB9"));
        assert!(!valid_id("M1") && !valid_id("1m") && !valid_id("m-1") && !valid_id(""));
    }
}

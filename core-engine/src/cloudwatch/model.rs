//! PutMetricData's input, read from a JSON tree and validated as CloudWatch validates it.
//!
//! Every protocol lands here: RPC v2 CBOR and awsJson1.0 bodies become JSON directly, awsQuery
//! forms become a JSON tree of strings (`query::to_tree`), so numbers are accepted as JSON
//! numbers or as decimal text. Parameter names in messages use the awsQuery spelling
//! (`MetricData.member.1.Value`), as CloudWatch's own messages do.

use serde_json::{Map, Value};

use super::error::CwError;

/// The most data a PutMetricData may carry.
pub(crate) const MAX_METRIC_DATA: usize = 1000;
/// The most dimensions a datum may carry.
pub(crate) const MAX_DIMENSIONS: usize = 30;
/// The most distinct values in one datum's `Values`.
pub(crate) const MAX_VALUES: usize = 150;
/// How far back a timestamp may be: two weeks.
const MAX_AGE_MS: i64 = 14 * 24 * 3_600_000;
/// How far ahead a timestamp may be: two hours.
const MAX_AHEAD_MS: i64 = 2 * 3_600_000;
/// CloudWatch rejects values outside ±2^360 (and, implicitly, NaN and infinities).
const MAX_MAGNITUDE: f64 = 2.348_542_582_773_833e108;

/// The units CloudWatch knows (`StandardUnit`).
pub(crate) const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// A sample count, sum, minimum and maximum: what CloudWatch keeps of a datum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Statistics {
    /// How many samples.
    pub sample_count: f64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub minimum: f64,
    /// The largest.
    pub maximum: f64,
}

impl Statistics {
    /// The statistics of one value.
    fn single(value: f64) -> Self {
        Self {
            sample_count: 1.0,
            sum: value,
            minimum: value,
            maximum: value,
        }
    }

    /// Both sets of samples together.
    pub(crate) fn merge(self, other: Self) -> Self {
        Self {
            sample_count: self.sample_count + other.sample_count,
            sum: self.sum + other.sum,
            minimum: self.minimum.min(other.minimum),
            maximum: self.maximum.max(other.maximum),
        }
    }
}

/// One validated datum of a PutMetricData.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Datum {
    pub(crate) metric_name: String,
    /// Sorted by name: a series is identified by its dimension set, not their order.
    pub(crate) dimensions: Vec<(String, String)>,
    /// Epoch milliseconds; `None` for "when received".
    pub(crate) timestamp_ms: Option<i64>,
    pub(crate) statistics: Statistics,
    pub(crate) unit: Option<String>,
    /// 1 (high resolution) or 60 (standard).
    pub(crate) storage_resolution: u32,
}

/// A validated PutMetricData.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PutMetricData {
    pub(crate) namespace: String,
    pub(crate) data: Vec<Datum>,
}

/// Reads and validates a PutMetricData input; `now_ms` bounds the timestamps.
pub(crate) fn put_metric_data(input: &Value, now_ms: i64) -> Result<PutMetricData, CwError> {
    let empty = Map::new();
    let input = input.as_object().unwrap_or(&empty);
    let namespace =
        text(input.get("Namespace"), "Namespace")?.ok_or_else(|| CwError::missing("Namespace"))?;
    check_length(&namespace, "Namespace", 255)?;
    if namespace.starts_with(':') {
        return Err(CwError::invalid_value(format!(
            "The value {namespace} for parameter Namespace is invalid: it must not start with ':'."
        )));
    }
    if namespace.starts_with("AWS/") {
        return Err(CwError::invalid_value(format!(
            "The value {namespace} for parameter Namespace is invalid: the AWS/ prefix is reserved \
             for Amazon Web Services namespaces."
        )));
    }
    check_ascii(&namespace, "Namespace")?;
    if input.contains_key("EntityMetricData")
        && list(input.get("EntityMetricData"), "EntityMetricData")?.is_some_and(|l| !l.is_empty())
    {
        return Err(CwError::invalid_value(
            "EntityMetricData is not supported by this engine; use MetricData.",
        ));
    }
    let data = list(input.get("MetricData"), "MetricData")?
        .filter(|l| !l.is_empty())
        .ok_or_else(|| CwError::missing("MetricData"))?;
    if data.len() > MAX_METRIC_DATA {
        return Err(CwError::invalid_value(format!(
            "The collection MetricData must not have a size greater than {MAX_METRIC_DATA}."
        )));
    }
    let data = data
        .iter()
        .enumerate()
        .map(|(i, datum)| self::datum(datum, &format!("MetricData.member.{}", i + 1), now_ms))
        .collect::<Result<_, _>>()?;
    Ok(PutMetricData { namespace, data })
}

fn datum(value: &Value, at: &str, now_ms: i64) -> Result<Datum, CwError> {
    let empty = Map::new();
    let fields = value.as_object().unwrap_or(&empty);
    let name = format!("{at}.MetricName");
    let metric_name =
        text(fields.get("MetricName"), &name)?.ok_or_else(|| CwError::missing(&name))?;
    check_length(&metric_name, &name, 255)?;
    check_ascii(&metric_name, &name)?;
    let dimensions = dimensions(fields.get("Dimensions"), at)?;
    let timestamp_ms = match fields.get("Timestamp").filter(|v| !v.is_null()) {
        None => None,
        Some(value) => Some(timestamp(value, &format!("{at}.Timestamp"), now_ms)?),
    };
    let statistics = statistics(fields, at)?;
    let unit = match text(fields.get("Unit"), &format!("{at}.Unit"))? {
        Some(unit) if !UNITS.contains(&unit.as_str()) => {
            return Err(CwError::invalid_value(format!(
                "The value {unit} for parameter {at}.Unit is invalid: it must be one of {}.",
                UNITS.join(", ")
            )));
        }
        unit => unit,
    };
    let resolution_name = format!("{at}.StorageResolution");
    let storage_resolution = match number(fields.get("StorageResolution"), &resolution_name)? {
        None => 60,
        Some(1.0) => 1,
        Some(60.0) => 60,
        Some(r) => {
            return Err(CwError::invalid_value(format!(
                "The value {r} for parameter {resolution_name} is invalid: it must be 1 or 60."
            )));
        }
    };
    Ok(Datum {
        metric_name,
        dimensions,
        timestamp_ms,
        statistics,
        unit,
        storage_resolution,
    })
}

pub(super) fn dimensions(
    value: Option<&Value>,
    at: &str,
) -> Result<Vec<(String, String)>, CwError> {
    // Top-level (GetMetricStatistics) or in a datum (`MetricData.member.1`).
    let prefix = if at.is_empty() {
        "Dimensions".to_owned()
    } else {
        format!("{at}.Dimensions")
    };
    let Some(list) = list(value, &prefix)? else {
        return Ok(Vec::new());
    };
    if list.len() > MAX_DIMENSIONS {
        return Err(CwError::invalid_value(format!(
            "The collection {prefix} must not have a size greater than {MAX_DIMENSIONS}."
        )));
    }
    let empty = Map::new();
    let mut dimensions = Vec::with_capacity(list.len());
    for (j, dimension) in list.iter().enumerate() {
        let here = format!("{prefix}.member.{}", j + 1);
        let fields = dimension.as_object().unwrap_or(&empty);
        let member = |field: &str, max: usize| -> Result<String, CwError> {
            let name = format!("{here}.{field}");
            let value = text(fields.get(field), &name)?.ok_or_else(|| CwError::missing(&name))?;
            check_length(&value, &name, max)?;
            check_ascii(&value, &name)?;
            if value.trim().is_empty() {
                return Err(CwError::invalid_value(format!(
                    "The value for parameter {name} must contain at least one non-whitespace character."
                )));
            }
            Ok(value)
        };
        let name = member("Name", 255)?;
        let value = member("Value", 1024)?;
        if name.starts_with(':') {
            return Err(CwError::invalid_value(format!(
                "The value {name} for parameter {here}.Name is invalid: it must not start with ':'."
            )));
        }
        if dimensions
            .iter()
            .any(|(n, _): &(String, String)| *n == name)
        {
            return Err(CwError::invalid_value(format!(
                "No metric may have duplicate dimension names: {name} appears twice in {prefix}."
            )));
        }
        dimensions.push((name, value));
    }
    dimensions.sort();
    Ok(dimensions)
}

/// The datum's statistics from exactly one of Value, Values (+ Counts) and StatisticValues.
fn statistics(fields: &Map<String, Value>, at: &str) -> Result<Statistics, CwError> {
    let value = number(fields.get("Value"), &format!("{at}.Value"))?;
    let set = fields.get("StatisticValues").filter(|v| !v.is_null());
    let values = list(fields.get("Values"), &format!("{at}.Values"))?.filter(|l| !l.is_empty());
    let counts = list(fields.get("Counts"), &format!("{at}.Counts"))?.filter(|l| !l.is_empty());
    let given = [value.is_some(), set.is_some(), values.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(CwError::combination(format!(
            "The parameters {at}.Value, {at}.Values and {at}.StatisticValues are mutually exclusive \
             and you have specified more than one."
        )));
    }
    if counts.is_some() && values.is_none() {
        return Err(CwError::combination(format!(
            "The parameter {at}.Counts may only be used with {at}.Values."
        )));
    }
    if let Some(value) = value {
        return Ok(Statistics::single(finite(value, &format!("{at}.Value"))?));
    }
    if let Some(set) = set {
        return statistic_set(set, &format!("{at}.StatisticValues"));
    }
    let Some(values) = values else {
        return Err(CwError::combination(format!(
            "At least one of the parameters {at}.Value, {at}.Values or {at}.StatisticValues must \
             be specified."
        )));
    };
    if values.len() > MAX_VALUES {
        return Err(CwError::invalid_value(format!(
            "The collection {at}.Values must not have a size greater than {MAX_VALUES}."
        )));
    }
    if counts.is_some_and(|c| c.len() != values.len()) {
        return Err(CwError::invalid_value(format!(
            "The parameters {at}.Values and {at}.Counts must be arrays of the same size."
        )));
    }
    let mut total: Option<Statistics> = None;
    for (k, v) in values.iter().enumerate() {
        let name = format!("{at}.Values.member.{}", k + 1);
        let v = finite(
            number(Some(v), &name)?.ok_or_else(|| CwError::missing(&name))?,
            &name,
        )?;
        let count = match counts {
            None => 1.0,
            Some(counts) => {
                let name = format!("{at}.Counts.member.{}", k + 1);
                let c = number(counts.get(k), &name)?.ok_or_else(|| CwError::missing(&name))?;
                if !c.is_finite() || c < 0.0 {
                    return Err(CwError::invalid_value(format!(
                        "The value {c} for parameter {name} is invalid: counts must not be negative."
                    )));
                }
                c
            }
        };
        if count == 0.0 {
            continue;
        }
        let here = Statistics {
            sample_count: count,
            sum: v * count,
            minimum: v,
            maximum: v,
        };
        total = Some(total.map_or(here, |t| t.merge(here)));
    }
    // All counts zero: no samples, which CloudWatch stores as nothing; keep an empty set.
    Ok(total.unwrap_or(Statistics {
        sample_count: 0.0,
        sum: 0.0,
        minimum: 0.0,
        maximum: 0.0,
    }))
}

fn statistic_set(value: &Value, at: &str) -> Result<Statistics, CwError> {
    let empty = Map::new();
    let fields = value.as_object().unwrap_or(&empty);
    let member = |field: &str| -> Result<f64, CwError> {
        let name = format!("{at}.{field}");
        let v = number(fields.get(field), &name)?.ok_or_else(|| CwError::missing(&name))?;
        finite(v, &name)
    };
    let set = Statistics {
        sample_count: member("SampleCount")?,
        sum: member("Sum")?,
        minimum: member("Minimum")?,
        maximum: member("Maximum")?,
    };
    if set.sample_count <= 0.0 {
        return Err(CwError::invalid_value(format!(
            "The value {} for parameter {at}.SampleCount is invalid: it must be greater than 0.",
            set.sample_count
        )));
    }
    if set.minimum > set.maximum {
        return Err(CwError::invalid_value(format!(
            "The parameters {at}.Minimum ({}) must not be greater than {at}.Maximum ({}).",
            set.minimum, set.maximum
        )));
    }
    Ok(set)
}

fn timestamp(value: &Value, name: &str, now_ms: i64) -> Result<i64, CwError> {
    let ms = instant(value, name)?;
    if ms < now_ms - MAX_AGE_MS || ms > now_ms + MAX_AHEAD_MS {
        return Err(CwError::invalid_value(format!(
            "The parameter {name} must specify a time no more than two weeks in the past and no \
             more than two hours in the future."
        )));
    }
    Ok(ms)
}

/// A timestamp in epoch milliseconds: a JSON number of epoch seconds, or ISO 8601 text.
pub(super) fn instant(value: &Value, name: &str) -> Result<i64, CwError> {
    match value {
        Value::Number(n) => n.as_f64().and_then(seconds_to_ms),
        Value::String(s) => {
            super::query::parse_iso8601(s).or_else(|| s.parse().ok().and_then(seconds_to_ms))
        }
        _ => None,
    }
    .ok_or_else(|| {
        CwError::invalid_value(format!(
            "The value {value} for parameter {name} is not a timestamp."
        ))
    })
}

fn seconds_to_ms(seconds: f64) -> Option<i64> {
    let ms = (seconds * 1000.0).round();
    (ms.is_finite() && ms.abs() < 9.2e18).then_some(ms as i64)
}

/// A text member, or `None` when absent or null.
pub(super) fn text(value: Option<&Value>, name: &str) -> Result<Option<String>, CwError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(CwError::invalid_value(format!(
            "The value {other} for parameter {name} is invalid: expected a string."
        ))),
    }
}

/// A list member, or `None` when absent or null.
pub(super) fn list<'v>(
    value: Option<&'v Value>,
    name: &str,
) -> Result<Option<&'v Vec<Value>>, CwError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        // awsQuery spells an empty list as `Name=`.
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(other) => Err(CwError::invalid_value(format!(
            "The value {other} for parameter {name} is invalid: expected a list."
        ))),
    }
}

/// A boolean member (a JSON boolean, or `true`/`false` text from awsQuery), or `None` when
/// absent or null.
pub(super) fn flag(value: Option<&Value>, name: &str) -> Result<Option<bool>, CwError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(CwError::invalid_value(format!(
            "The value {other} for parameter {name} is invalid: expected true or false."
        ))),
    }
}

/// A number member (a JSON number or decimal text), or `None` when absent or null.
pub(super) fn number(value: Option<&Value>, name: &str) -> Result<Option<f64>, CwError> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    parsed.map(Some).ok_or_else(|| {
        CwError::invalid_value(format!(
            "The value {} for parameter {name} is invalid: expected a number.",
            value.map(Value::to_string).unwrap_or_default()
        ))
    })
}

fn finite(value: f64, name: &str) -> Result<f64, CwError> {
    if value.is_finite() && value.abs() <= MAX_MAGNITUDE {
        Ok(value)
    } else {
        Err(CwError::invalid_value(format!(
            "The value {value} for parameter {name} is invalid: values must be finite and within \
             -2^360 to 2^360."
        )))
    }
}

pub(super) fn check_length(value: &str, name: &str, max: usize) -> Result<(), CwError> {
    if value.is_empty() || value.len() > max {
        return Err(CwError::invalid_value(format!(
            "The value for parameter {name} must be between 1 and {max} characters long, got {}.",
            value.len()
        )));
    }
    Ok(())
}

pub(super) fn check_ascii(value: &str, name: &str) -> Result<(), CwError> {
    if value.bytes().any(|b| !b.is_ascii() || b.is_ascii_control()) {
        return Err(CwError::invalid_value(format!(
            "The value {value:?} for parameter {name} is invalid: only printable ASCII characters \
             are allowed."
        )));
    }
    Ok(())
}

//! GetMetricStatistics: the kept points of one series, aggregated per period.
//!
//! Percentiles (`ExtendedStatistics`) are not kept, so they are refused; everything else
//! follows CloudWatch: buckets start at `StartTime` and are `Period` seconds long, points at or
//! after `EndTime` are left out, and a request may cover at most 1440 periods.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::error::CwError;
use super::model::{self, Statistics};
use super::query;
use super::store::SeriesPoints;

/// The statistics a datapoint can carry.
const STATISTICS: &[&str] = &["SampleCount", "Average", "Sum", "Minimum", "Maximum"];
/// The most datapoints one request may ask for.
const MAX_DATAPOINTS: i64 = 1440;

/// A validated GetMetricStatistics.
#[derive(Debug)]
pub(crate) struct Request {
    namespace: String,
    metric_name: String,
    dimensions: Vec<(String, String)>,
    start_ms: i64,
    end_ms: i64,
    period_ms: i64,
    statistics: Vec<String>,
    unit: Option<String>,
}

/// Reads and validates a GetMetricStatistics input.
pub(crate) fn request(input: &Value) -> Result<Request, CwError> {
    let empty = Map::new();
    let fields = input.as_object().unwrap_or(&empty);
    let required = |name: &str| -> Result<String, CwError> {
        model::text(fields.get(name), name)?.ok_or_else(|| CwError::missing(name))
    };
    let namespace = required("Namespace")?;
    let metric_name = required("MetricName")?;
    let dimensions = model::dimensions(fields.get("Dimensions"), "")?;
    let instant = |name: &str| -> Result<i64, CwError> {
        let value = fields.get(name).filter(|v| !v.is_null());
        model::instant(value.ok_or_else(|| CwError::missing(name))?, name)
    };
    let (start_ms, end_ms) = (instant("StartTime")?, instant("EndTime")?);
    if start_ms >= end_ms {
        return Err(CwError::invalid_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    let period =
        model::number(fields.get("Period"), "Period")?.ok_or_else(|| CwError::missing("Period"))?;
    let high_resolution = [1.0, 5.0, 10.0, 30.0].contains(&period);
    if period.fract() != 0.0 || period < 1.0 || !(high_resolution || period % 60.0 == 0.0) {
        return Err(CwError::invalid_value(format!(
            "The value {period} for parameter Period is invalid: it must be 1, 5, 10, 30 or a \
             multiple of 60."
        )));
    }
    let period_ms = period as i64 * 1000;
    if model::list(fields.get("ExtendedStatistics"), "ExtendedStatistics")?
        .is_some_and(|l| !l.is_empty())
    {
        return Err(CwError::invalid_value(
            "ExtendedStatistics (percentiles) are not supported by this engine: it keeps statistic \
             sets only.",
        ));
    }
    let statistics: Vec<String> = model::list(fields.get("Statistics"), "Statistics")?
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            CwError::combination("Must specify either Statistics or ExtendedStatistics.")
        })?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = format!("Statistics.member.{}", i + 1);
            match model::text(Some(s), &name)? {
                Some(s) if STATISTICS.contains(&s.as_str()) => Ok(s),
                other => Err(CwError::invalid_value(format!(
                    "The value {} for parameter {name} is invalid: it must be one of {}.",
                    other.unwrap_or_default(),
                    STATISTICS.join(", ")
                ))),
            }
        })
        .collect::<Result<_, _>>()?;
    let periods = (end_ms - start_ms + period_ms - 1) / period_ms;
    if periods > MAX_DATAPOINTS {
        return Err(CwError::combination(format!(
            "You have requested up to {periods} datapoints, which exceeds the limit of \
             {MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or \
             decreasing the time range."
        )));
    }
    let unit = model::text(fields.get("Unit"), "Unit")?;
    Ok(Request {
        namespace,
        metric_name,
        dimensions,
        start_ms,
        end_ms,
        period_ms,
        statistics,
        unit,
    })
}

/// The output (as JSON, timestamps in epoch seconds) and its awsQuery XML, for `series` (if it
/// exists).
pub(crate) fn answer(request: &Request, series: Option<SeriesPoints>) -> (Value, String) {
    let mut buckets: BTreeMap<i64, Statistics> = BTreeMap::new();
    let mut unit = None;
    if let Some(SeriesPoints {
        unit: series_unit,
        points,
    }) = series
    {
        let wanted = request.unit.is_none() || request.unit == series_unit;
        for (at, stats) in points.into_iter().filter(|_| wanted) {
            if at < request.start_ms || at >= request.end_ms {
                continue;
            }
            let bucket =
                request.start_ms + (at - request.start_ms) / request.period_ms * request.period_ms;
            buckets
                .entry(bucket)
                .and_modify(|b| *b = b.merge(stats))
                .or_insert(stats);
        }
        unit = series_unit;
    }
    let unit = unit.unwrap_or_else(|| "None".to_owned());
    let mut xml = format!(
        "<Label>{}</Label><Datapoints>",
        query::escape(&request.metric_name)
    );
    let datapoints: Vec<Value> = buckets
        .into_iter()
        .map(|(at, stats)| {
            let mut point = Map::new();
            point.insert("Timestamp".into(), json!(at as f64 / 1000.0));
            xml.push_str(&format!(
                "<member><Timestamp>{}</Timestamp>",
                query::format_iso8601(at)
            ));
            for statistic in STATISTICS {
                if !request.statistics.iter().any(|s| s == statistic) {
                    continue;
                }
                let value = match *statistic {
                    "SampleCount" => stats.sample_count,
                    "Average" => stats.sum / stats.sample_count,
                    "Sum" => stats.sum,
                    "Minimum" => stats.minimum,
                    _ => stats.maximum,
                };
                point.insert((*statistic).into(), json!(value));
                xml.push_str(&format!("<{statistic}>{value}</{statistic}>"));
            }
            point.insert("Unit".into(), json!(unit));
            xml.push_str(&format!("<Unit>{}</Unit></member>", query::escape(&unit)));
            Value::Object(point)
        })
        .collect();
    xml.push_str("</Datapoints>");
    (
        json!({ "Label": request.metric_name, "Datapoints": datapoints }),
        xml,
    )
}

impl Request {
    /// The series asked for: namespace, metric name, dimensions (sorted).
    pub(crate) fn series(&self) -> (&str, &str, &[(String, String)]) {
        (&self.namespace, &self.metric_name, &self.dimensions)
    }
}

//! The kept CloudWatch series in the Prometheus text format, for the engine's `/metrics`.

use std::fmt::Write as _;

use super::store::SeriesSnapshot;

/// A metric family: its name, its help text and how to read it from a series.
pub(super) type Family = (&'static str, &'static str, fn(&SeriesSnapshot) -> f64);

/// The metric families written.
pub(super) const FAMILIES: &[Family] = &[
    (
        "shardline_cloudwatch_sample_count",
        "Samples in the CloudWatch data points the engine keeps (the last hour), per series.",
        |s| s.total.sample_count,
    ),
    (
        "shardline_cloudwatch_sum",
        "Sum of the CloudWatch data points the engine keeps (the last hour), per series.",
        |s| s.total.sum,
    ),
    (
        "shardline_cloudwatch_minimum",
        "Minimum of the CloudWatch data points the engine keeps (the last hour), per series.",
        |s| s.total.minimum,
    ),
    (
        "shardline_cloudwatch_maximum",
        "Maximum of the CloudWatch data points the engine keeps (the last hour), per series.",
        |s| s.total.maximum,
    ),
    (
        "shardline_cloudwatch_latest_average",
        "Average (sum / sample count) of the latest CloudWatch data point, per series.",
        |s| s.latest.sum / s.latest.sample_count,
    ),
    (
        "shardline_cloudwatch_latest_timestamp_seconds",
        "Timestamp of the latest CloudWatch data point, per series, in Unix seconds.",
        |s| s.latest_timestamp_ms as f64 / 1000.0,
    ),
];

/// Labels every series has; a dimension with one of these names is written as `dimension_<name>`.
const RESERVED: &[&str] = &["namespace", "metric_name", "unit"];

/// Appends `series` to `out` in the Prometheus text exposition format (version 0.0.4): for each
/// family (`shardline_cloudwatch_sample_count`, `_sum`, `_minimum`, `_maximum` over the kept
/// points, `_latest_average`, `_latest_timestamp_seconds`) a `# HELP` and `# TYPE ... gauge`
/// line, then one line per series labelled `namespace`, `metric_name`, `unit` (when known) and
/// one label per dimension (its name with characters Prometheus does not allow replaced by `_`).
/// Writes nothing for no series.
pub fn write_prometheus(series: &[SeriesSnapshot], out: &mut String) {
    if series.is_empty() {
        return;
    }
    let labels: Vec<String> = series
        .iter()
        .map(|s| {
            labels(s)
                .iter()
                .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    for (name, help, read) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (one, labels) in series.iter().zip(&labels) {
            let _ = writeln!(out, "{name}{{{labels}}} {}", number(read(one)));
        }
    }
}

/// The labels of a series' samples (values unescaped): `namespace`, `metric_name`, `unit` when
/// known, then one per dimension.
pub(super) fn labels(series: &SeriesSnapshot) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = vec![
        ("namespace".into(), series.namespace.clone()),
        ("metric_name".into(), series.metric_name.clone()),
    ];
    if let Some(unit) = &series.unit {
        pairs.push(("unit".into(), unit.clone()));
    }
    for (name, value) in &series.dimensions {
        let mut label = label_name(name);
        if RESERVED.contains(&label.as_str()) || label.starts_with("__") {
            label = format!("dimension_{label}");
        }
        // Two dimensions that sanitise alike would make a duplicate label: keep the first.
        if !pairs.iter().any(|(n, _)| *n == label) {
            pairs.push((label, value.clone()));
        }
    }
    pairs
}

/// `name` as a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn label_name(name: &str) -> String {
    let mut label: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if label.starts_with(|c: char| c.is_ascii_digit()) || label.is_empty() {
        label.insert(0, '_');
    }
    label
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudwatch::Statistics;

    #[test]
    fn series_become_labelled_gauges() {
        let stats = Statistics {
            sample_count: 2.0,
            sum: 10.0,
            minimum: 4.0,
            maximum: 6.0,
        };
        let series = SeriesSnapshot {
            namespace: "KinesisProducerLibrary".into(),
            metric_name: "UserRecordsPut".into(),
            dimensions: vec![
                ("ShardId".into(), "shardId-000000000000".into()),
                ("Stream.Name".into(), "a\"b".into()),
                ("unit".into(), "x".into()),
            ],
            unit: Some("Count".into()),
            storage_resolution: 60,
            points: 1,
            latest: stats,
            latest_timestamp_ms: 1_500,
            total: stats,
        };
        let mut out = String::new();
        write_prometheus(&[series], &mut out);
        let labels = "namespace=\"KinesisProducerLibrary\",metric_name=\"UserRecordsPut\",\
                      unit=\"Count\",ShardId=\"shardId-000000000000\",Stream_Name=\"a\\\"b\",\
                      dimension_unit=\"x\"";
        assert!(
            out.contains("# TYPE shardline_cloudwatch_sum gauge\n"),
            "{out}"
        );
        assert!(
            out.contains(&format!("shardline_cloudwatch_sum{{{labels}}} 10\n")),
            "{out}"
        );
        assert!(out.contains(&format!(
            "shardline_cloudwatch_latest_average{{{labels}}} 5\n"
        )));
        assert!(out.contains(&format!(
            "shardline_cloudwatch_latest_timestamp_seconds{{{labels}}} 1.5\n"
        )));
        let mut empty = String::new();
        write_prometheus(&[], &mut empty);
        assert!(empty.is_empty());
    }
}

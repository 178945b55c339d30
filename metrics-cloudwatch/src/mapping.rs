//! From a metric's name and labels to CloudWatch namespaces and dimensions, as the KPL and the
//! KCL name theirs (see the crate documentation).

use crate::config::{Config, Granularity};

/// One place a metric is published: a namespace and a dimension set (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The dimensions, sorted by name.
    pub dimensions: Vec<(String, String)>,
}

/// Where the metric `name` with `labels` is published: one target for a KCL metric, one per
/// granularity level for a KPL metric.
pub fn targets(name: &str, labels: &[(&str, &str)], config: &Config) -> Vec<Target> {
    let label = |key: &str| labels.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let application = label("application").or(config.default_application.as_deref());
    let mut targets = match application {
        Some(application) => vec![kcl(name, labels, application)],
        None => kpl(labels, config),
    };
    for target in &mut targets {
        target.dimensions.sort();
        target.dimensions.dedup_by(|a, b| a.0 == b.0);
    }
    targets
}

fn kcl(name: &str, labels: &[(&str, &str)], application: &str) -> Target {
    let mut dimensions = Vec::with_capacity(labels.len() + 1);
    let mut operation = None;
    for (key, value) in labels {
        match *key {
            "application" => {}
            "operation" => operation = Some((*value).to_owned()),
            other => dimensions.push((dimension_name(other).to_owned(), (*value).to_owned())),
        }
    }
    let operation = operation.unwrap_or_else(|| kcl_operation(name).to_owned());
    dimensions.push(("Operation".to_owned(), operation));
    Target {
        namespace: application.to_owned(),
        dimensions,
    }
}

fn kpl(labels: &[(&str, &str)], config: &Config) -> Vec<Target> {
    let others: Vec<(String, String)> = labels
        .iter()
        .filter(|(k, _)| !matches!(*k, "stream" | "shard"))
        .map(|(k, v)| (dimension_name(k).to_owned(), (*v).to_owned()))
        .collect();
    let stream = labels.iter().find(|(k, _)| *k == "stream").map(|(_, v)| *v);
    let shard = labels.iter().find(|(k, _)| *k == "shard").map(|(_, v)| *v);
    let target = |extra: Vec<(String, String)>| Target {
        namespace: config.kpl_namespace.clone(),
        dimensions: others.iter().cloned().chain(extra).collect(),
    };
    let mut targets = vec![target(Vec::new())];
    if let Some(stream) = stream.filter(|_| config.granularity >= Granularity::Stream) {
        let by_stream = ("StreamName".to_owned(), stream.to_owned());
        targets.push(target(vec![by_stream.clone()]));
        if let Some(shard) = shard.filter(|_| config.granularity >= Granularity::Shard) {
            targets.push(target(vec![
                by_stream,
                ("ShardId".to_owned(), shard.to_owned()),
            ]));
        }
    }
    targets
}

/// The CloudWatch dimension for a label: the KPL/KCL names for ours, the label itself otherwise.
pub fn dimension_name(label: &str) -> &str {
    match label {
        "stream" => "StreamName",
        "shard" => "ShardId",
        "worker" => "WorkerIdentifier",
        "operation" => "Operation",
        other => other,
    }
}

/// The KCL operation (its `Operation` dimension) a metric of the `kcl` crate belongs to.
pub fn kcl_operation(name: &str) -> &'static str {
    match name {
        "RecordsProcessed"
        | "DataBytesProcessed"
        | "MillisBehindLatest"
        | "RecordProcessor.processRecords.Time"
        | "ProcessRecordsFailures"
        | "BisectedBatches"
        | "RecordsGivenUp"
        | "FailureSinkErrors"
        | "ProcessingTimeouts"
        | "AggregatedRecordsDropped"
        // The Java KCL's KinesisDataFetcher reports under ProcessTask.
        | "KinesisDataFetcher.getRecords.Time"
        | "KinesisDataFetcher.getRecords.Success"
        | "KinesisDataFetcher.getShardIterator.Time"
        | "KinesisDataFetcher.getShardIterator.Success" => "ProcessTask",
        "RecordProcessor.initialize.Time" => "InitializeTask",
        "RecordProcessor.shutdown.Time" => "ShutdownTask",
        // The Java scheduler's stream sync.
        "ActiveStreams.Count" | "StreamsPendingDeletion.Count" | "DeletedStreams.Count" => {
            "MultiStreamTracker"
        }
        "ExpiredIterator" | "ReadFailures.NonRetryable" | "RecordsBuffered" => "KinesisDataFetcher",
        "LostLeases" | "HandoffsRequested" => "RenewAllLeases",
        name if name.starts_with("SubscribeToShard") => "FanOutRecordsPublisher",
        _ => "TakeLeases",
    }
}

/// The CloudWatch unit of a metric, from its description or else its name.
pub fn unit(name: &str, described: Option<metrics::Unit>, counter: bool) -> Option<&'static str> {
    use metrics::Unit;
    if let Some(unit) = described {
        return Some(match unit {
            Unit::Count => "Count",
            Unit::Percent => "Percent",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Microseconds => "Microseconds",
            Unit::Bytes => "Bytes",
            Unit::Kibibytes => "Kilobytes",
            Unit::Mebibytes => "Megabytes",
            Unit::Gibibytes => "Gigabytes",
            Unit::Tebibytes => "Terabytes",
            Unit::BitsPerSecond => "Bits/Second",
            Unit::KilobitsPerSecond => "Kilobits/Second",
            Unit::MegabitsPerSecond => "Megabits/Second",
            Unit::GigabitsPerSecond => "Gigabits/Second",
            Unit::TerabitsPerSecond => "Terabits/Second",
            Unit::CountPerSecond => "Count/Second",
            _ => "None",
        });
    }
    if name.ends_with("Time") || name.starts_with("Millis") {
        Some("Milliseconds")
    } else if matches!(
        name,
        "UserRecordsPending"
            | "UserRecordsPerPutRecordsRequest"
            | "UserRecordsPerKinesisRecord"
            | "KinesisRecordsPerPutRecordsRequest"
            | "RetriesPerRecord"
            | "RecordsBuffered"
            | "CurrentLeases"
            | "NumWorkers"
            | "ExpiredLeases"
            | "LeaseSpillover"
            | "TotalLeases"
            | "NeededLeases"
            | "LeasesToTake"
            | "UntakenLeases"
    ) || name.ends_with(".Success")
        || name.ends_with(".Count")
    {
        // Gauges and histograms the KPL and KCL publish as counts.
        Some("Count")
    } else if name.contains("DataPut") || name.contains("Bytes") {
        Some("Bytes")
    } else if counter {
        Some("Count")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn kpl_metrics_go_to_each_level_up_to_the_granularity() {
        let labels = [
            ("stream", "orders"),
            ("shard", "shardId-1"),
            ("ErrorCode", "Throttled"),
        ];
        let all = targets("ErrorsByCode", &labels, &Config::default());
        let dimension_sets: Vec<_> = all.iter().map(|t| t.dimensions.clone()).collect();
        assert_eq!(
            dimension_sets,
            [
                dims(&[("ErrorCode", "Throttled")]),
                dims(&[("ErrorCode", "Throttled"), ("StreamName", "orders")]),
                dims(&[
                    ("ErrorCode", "Throttled"),
                    ("ShardId", "shardId-1"),
                    ("StreamName", "orders")
                ]),
            ]
        );
        assert!(all.iter().all(|t| t.namespace == "KinesisProducerLibrary"));
        let stream_only = Config {
            granularity: Granularity::Stream,
            ..Config::default()
        };
        assert_eq!(
            targets("UserRecordsPut", &labels[..2], &stream_only).len(),
            2
        );
    }

    #[test]
    fn kcl_metrics_go_to_the_application_with_an_operation() {
        let labels = [
            ("application", "app"),
            ("stream", "s"),
            ("shard", "shardId-2"),
        ];
        let all = targets("RecordsProcessed", &labels, &Config::default());
        assert_eq!(
            all,
            [Target {
                namespace: "app".into(),
                dimensions: dims(&[
                    ("Operation", "ProcessTask"),
                    ("ShardId", "shardId-2"),
                    ("StreamName", "s")
                ]),
            }]
        );
        let fallback = Config {
            default_application: Some("fallback".into()),
            ..Config::default()
        };
        for (name, operation) in [
            ("AggregatedRecordsDropped", "ProcessTask"),
            ("KinesisDataFetcher.getRecords.Time", "ProcessTask"),
            ("RecordProcessor.initialize.Time", "InitializeTask"),
            ("RecordProcessor.shutdown.Time", "ShutdownTask"),
            ("UntakenLeases", "TakeLeases"),
            ("ActiveStreams.Count", "MultiStreamTracker"),
        ] {
            assert_eq!(kcl_operation(name), operation, "{name}");
        }
        assert_eq!(unit("UserRecordsPending", None, false), Some("Count"));
        for gauge_or_histogram in [
            "KinesisRecordsPerPutRecordsRequest",
            "UserRecordsPerKinesisRecord",
            "RetriesPerRecord",
            "CurrentLeases",
            "RecordsBuffered",
            "ActiveStreams.Count",
        ] {
            assert_eq!(unit(gauge_or_histogram, None, false), Some("Count"));
        }
        assert_eq!(unit("an.application.gauge", None, false), None);
        assert_eq!(
            unit("KinesisDataFetcher.getRecords.Success", None, false),
            Some("Count")
        );
        let worker = targets("CurrentLeases", &[("worker", "w-1")], &fallback);
        assert_eq!(worker[0].namespace, "fallback");
        assert_eq!(
            worker[0].dimensions,
            dims(&[("Operation", "TakeLeases"), ("WorkerIdentifier", "w-1")])
        );
    }
}

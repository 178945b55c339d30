//! EnableEnhancedMonitoring and DisableEnhancedMonitoring: the set of shard-level metrics a
//! stream has enabled, kept and shown by DescribeStream and DescribeStreamSummary. The engine
//! publishes no CloudWatch metrics; it keeps the setting as AWS does so that tools that set it
//! and read it back see what they expect.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::settings::Metric;

use super::Kinesis;
use super::validate::Violations;

const METRIC_VALUES: &str = "[IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, \
                             WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, \
                             IteratorAgeMilliseconds, ALL]";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MonitoringInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    shard_level_metrics: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MonitoringOutput {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    current_shard_level_metrics: Vec<&'static str>,
    desired_shard_level_metrics: Vec<&'static str>,
}

/// One entry of a stream description's `EnhancedMonitoring` list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EnhancedMetrics {
    shard_level_metrics: Vec<&'static str>,
}

/// The `EnhancedMonitoring` member of DescribeStream and DescribeStreamSummary: one entry with
/// the enabled metrics (empty when none are).
pub(crate) fn enhanced_monitoring(metrics: &BTreeSet<Metric>) -> [EnhancedMetrics; 1] {
    [EnhancedMetrics {
        shard_level_metrics: names(metrics),
    }]
}

fn names(metrics: &BTreeSet<Metric>) -> Vec<&'static str> {
    metrics.iter().map(|m| m.as_str()).collect()
}

/// Parses the requested metrics, `ALL` standing for every one.
fn parse_metrics(requested: Option<&[String]>, v: &mut Violations) -> BTreeSet<Metric> {
    let Some(requested) = requested else {
        v.missing("shardLevelMetrics");
        return BTreeSet::new();
    };
    let listed = format!("[{}]", requested.join(", "));
    v.check(
        !requested.is_empty(),
        &listed,
        "shardLevelMetrics",
        "have length greater than or equal to 1",
    );
    v.check(
        requested.len() <= 7,
        &listed,
        "shardLevelMetrics",
        "have length less than or equal to 7",
    );
    let mut metrics = BTreeSet::new();
    let mut unknown = false;
    for name in requested {
        match (name.as_str(), Metric::parse(name)) {
            ("ALL", _) => metrics.extend(Metric::ALL),
            (_, Some(metric)) => {
                metrics.insert(metric);
            }
            (_, None) => unknown = true,
        }
    }
    // AWS reports a list member's violation on the whole list, nested.
    v.check(
        !unknown,
        &listed,
        "shardLevelMetrics",
        &format!("satisfy constraint: [Member must satisfy enum value set: {METRIC_VALUES}]"),
    );
    metrics
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Enable,
    Disable,
}

impl Kinesis {
    pub(crate) fn enable_monitoring(
        &self,
        input: MonitoringInput,
    ) -> Result<MonitoringOutput, ApiError> {
        self.change_monitoring(input, Change::Enable)
    }

    pub(crate) fn disable_monitoring(
        &self,
        input: MonitoringInput,
    ) -> Result<MonitoringOutput, ApiError> {
        self.change_monitoring(input, Change::Disable)
    }

    fn change_monitoring(
        &self,
        input: MonitoringInput,
        change: Change,
    ) -> Result<MonitoringOutput, ApiError> {
        let mut v = Violations::default();
        let metrics = parse_metrics(input.shard_level_metrics.as_deref(), &mut v);
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let stream = self.stream(&name)?;
        self.check_active(&stream)?;
        let (current, desired) = self.keep(&stream, |meta| {
            let current = names(&meta.settings.metrics);
            let kept = &mut meta.settings.metrics;
            match change {
                Change::Enable => kept.extend(metrics),
                Change::Disable => kept.retain(|m| !metrics.contains(m)),
            }
            Ok((current, names(kept)))
        })?;
        tracing::info!(stream = %name, metrics = ?desired, "changed enhanced monitoring");
        Ok(MonitoringOutput {
            stream_name: stream.name.clone(),
            stream_arn: stream.arn.clone(),
            current_shard_level_metrics: current,
            desired_shard_level_metrics: desired,
        })
    }
}

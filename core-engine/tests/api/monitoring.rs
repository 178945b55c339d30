//! EnableEnhancedMonitoring and DisableEnhancedMonitoring: the metric set is kept and shown by
//! DescribeStream and DescribeStreamSummary.

use std::time::Duration;

use aws_sdk_kinesis::types::MetricsName;
use core_engine::Engine;

use crate::common::{TestEngine, code_of, name};

const EVERY_METRIC: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

/// The ARN of a stream of the test engine (default region and account).
pub fn stream_arn(stream: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}")
}

fn strs(metrics: Option<Vec<MetricsName>>) -> Vec<String> {
    metrics
        .unwrap_or_default()
        .iter()
        .map(|m| m.as_str().to_owned())
        .collect()
}

/// The metrics DescribeStream and DescribeStreamSummary show, which must agree.
async fn shown(engine: &TestEngine, stream: &str) -> Vec<String> {
    let described = engine
        .client
        .describe_stream()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    let summary = engine
        .client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(described.enhanced_monitoring.len(), 1);
    let metrics = strs(described.enhanced_monitoring[0].shard_level_metrics.clone());
    assert_eq!(
        strs(summary.enhanced_monitoring[0].shard_level_metrics.clone()),
        metrics
    );
    metrics
}

#[tokio::test]
async fn enabling_and_disabling_metrics_answers_before_and_after_and_describe_shows_them() {
    let engine = TestEngine::start().await;
    let stream = name("monitored");
    engine.create_stream(&stream, 1).await;
    assert!(shown(&engine, &stream).await.is_empty());

    let out = engine
        .client
        .enable_enhanced_monitoring()
        .stream_name(&stream)
        .shard_level_metrics(MetricsName::OutgoingBytes)
        .shard_level_metrics(MetricsName::IncomingBytes)
        .send()
        .await
        .unwrap();
    assert_eq!(out.stream_name.as_deref(), Some(stream.as_str()));
    assert!(
        out.stream_arn
            .unwrap()
            .ends_with(&format!(":stream/{stream}"))
    );
    assert!(strs(out.current_shard_level_metrics).is_empty());
    assert_eq!(
        strs(out.desired_shard_level_metrics),
        ["IncomingBytes", "OutgoingBytes"]
    );
    assert_eq!(
        shown(&engine, &stream).await,
        ["IncomingBytes", "OutgoingBytes"]
    );

    // ALL enables every metric; enabling is additive.
    let out = engine
        .client
        .enable_enhanced_monitoring()
        .stream_name(&stream)
        .shard_level_metrics(MetricsName::All)
        .send()
        .await
        .unwrap();
    assert_eq!(
        strs(out.current_shard_level_metrics),
        ["IncomingBytes", "OutgoingBytes"]
    );
    assert_eq!(strs(out.desired_shard_level_metrics), EVERY_METRIC);
    assert_eq!(shown(&engine, &stream).await, EVERY_METRIC);

    // Disabling by ARN removes the named metrics only.
    let arn = stream_arn(&stream);
    let out = engine
        .client
        .disable_enhanced_monitoring()
        .stream_arn(&arn)
        .shard_level_metrics(MetricsName::IteratorAgeMilliseconds)
        .shard_level_metrics(MetricsName::IncomingRecords)
        .send()
        .await
        .unwrap();
    assert_eq!(strs(out.current_shard_level_metrics), EVERY_METRIC);
    let rest = [
        "IncomingBytes",
        "OutgoingBytes",
        "OutgoingRecords",
        "WriteProvisionedThroughputExceeded",
        "ReadProvisionedThroughputExceeded",
    ];
    assert_eq!(strs(out.desired_shard_level_metrics), rest);
    assert_eq!(shown(&engine, &stream).await, rest);

    // ALL disables every metric.
    let out = engine
        .client
        .disable_enhanced_monitoring()
        .stream_name(&stream)
        .shard_level_metrics(MetricsName::All)
        .send()
        .await
        .unwrap();
    assert!(strs(out.desired_shard_level_metrics).is_empty());
    assert!(shown(&engine, &stream).await.is_empty());
}

#[tokio::test]
async fn monitoring_requests_are_validated() {
    let engine = TestEngine::start().await;
    let stream = name("monitor-errors");
    engine.create_stream(&stream, 1).await;

    // Unknown metric names are a ValidationException naming the allowed values.
    let (code, message) = code_of(
        engine
            .client
            .enable_enhanced_monitoring()
            .stream_name(&stream)
            .shard_level_metrics(MetricsName::from("IncomingPackets"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("'shardLevelMetrics'"), "{message}");
    assert!(message.contains("enum value set"), "{message}");

    // The metric list is required and may not be empty.
    let (code, message) = code_of(
        engine
            .client
            .disable_enhanced_monitoring()
            .stream_name(&stream)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("shardLevelMetrics"), "{message}");
    let (code, _) = code_of(
        engine
            .client
            .enable_enhanced_monitoring()
            .stream_name(&stream)
            .set_shard_level_metrics(Some(Vec::new()))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");

    // No stream named: InvalidArgumentException; an unknown stream: ResourceNotFoundException.
    let (code, _) = code_of(
        engine
            .client
            .enable_enhanced_monitoring()
            .shard_level_metrics(MetricsName::All)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    let (code, _) = code_of(
        engine
            .client
            .enable_enhanced_monitoring()
            .stream_name("no-such-stream")
            .shard_level_metrics(MetricsName::All)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    assert!(shown(&engine, &stream).await.is_empty());
}

#[tokio::test]
async fn a_creating_stream_is_in_use() {
    let engine =
        TestEngine::with(Engine::builder().stream_create_delay(Duration::from_secs(3600))).await;
    let stream = name("monitor-creating");
    engine.create_stream(&stream, 1).await;
    let (code, _) = code_of(
        engine
            .client
            .enable_enhanced_monitoring()
            .stream_name(&stream)
            .shard_level_metrics(MetricsName::IncomingBytes)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceInUseException");
}

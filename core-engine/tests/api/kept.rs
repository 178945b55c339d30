//! The settings AWS keeps (monitoring, policies, tags, warm throughput, distribution strategy,
//! account settings) survive a restart of a durable engine.

use aws_sdk_kinesis::types::{
    MetricsName, MinimumThroughputBillingCommitmentInput,
    MinimumThroughputBillingCommitmentInputStatus, MinimumThroughputBillingCommitmentOutputStatus,
    RecordDistributionStrategy, StreamMode, StreamModeDetails,
};
use core_engine::Engine;

use crate::common::TestEngine;
use crate::monitoring::stream_arn;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kinesis:DescribeStreamSummary","Resource":"*"}]}"#;

#[tokio::test]
async fn a_restart_keeps_every_kept_setting() {
    let dir = tempfile::tempdir().unwrap();
    let consumer_arn = {
        let engine = TestEngine::with(Engine::builder().data_dir(dir.path())).await;
        let client = &engine.client;
        engine.create_stream("kept-settings", 1).await;
        client
            .create_stream()
            .stream_name("kept-on-demand")
            .stream_mode_details(
                StreamModeDetails::builder()
                    .stream_mode(StreamMode::OnDemand)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let arn = stream_arn("kept-settings");
        client
            .enable_enhanced_monitoring()
            .stream_name("kept-settings")
            .shard_level_metrics(MetricsName::IncomingBytes)
            .shard_level_metrics(MetricsName::IteratorAgeMilliseconds)
            .send()
            .await
            .unwrap();
        client
            .put_resource_policy()
            .resource_arn(&arn)
            .policy(POLICY)
            .send()
            .await
            .unwrap();
        client
            .tag_resource()
            .resource_arn(&arn)
            .tags("team", "core")
            .send()
            .await
            .unwrap();
        let consumer_arn = client
            .register_stream_consumer()
            .stream_arn(&arn)
            .consumer_name("reader")
            .send()
            .await
            .unwrap()
            .consumer
            .unwrap()
            .consumer_arn;
        client
            .put_resource_policy()
            .resource_arn(&consumer_arn)
            .policy(POLICY)
            .send()
            .await
            .unwrap();
        client
            .tag_resource()
            .resource_arn(&consumer_arn)
            .tags("owner", "analytics")
            .send()
            .await
            .unwrap();
        client
            .update_account_settings()
            .minimum_throughput_billing_commitment(
                MinimumThroughputBillingCommitmentInput::builder()
                    .status(MinimumThroughputBillingCommitmentInputStatus::Enabled)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        client
            .update_stream_warm_throughput()
            .stream_name("kept-on-demand")
            .warm_throughput_mibps(64)
            .send()
            .await
            .unwrap();
        client
            .update_stream_record_distribution_strategy()
            .stream_arn(stream_arn("kept-on-demand"))
            .record_distribution_strategy(RecordDistributionStrategy::Auto)
            .send()
            .await
            .unwrap();
        // A record put to the AUTO stream without a partition key is stored without one.
        client
            .put_record()
            .stream_name("kept-on-demand")
            .data(aws_sdk_kinesis::primitives::Blob::new("keyless"))
            .send()
            .await
            .unwrap();
        engine.handle.shutdown().await;
        consumer_arn
    };

    let engine = TestEngine::with(Engine::builder().data_dir(dir.path())).await;
    let client = &engine.client;
    let arn = stream_arn("kept-settings");
    let summary = client
        .describe_stream_summary()
        .stream_name("kept-settings")
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(
        summary.enhanced_monitoring[0].shard_level_metrics,
        Some(vec![
            MetricsName::IncomingBytes,
            MetricsName::IteratorAgeMilliseconds
        ])
    );
    for resource in [&arn, &consumer_arn] {
        let policy = client
            .get_resource_policy()
            .resource_arn(resource)
            .send()
            .await
            .unwrap()
            .policy;
        assert_eq!(policy, POLICY, "{resource}");
    }
    let tags =
        |out: aws_sdk_kinesis::operation::list_tags_for_resource::ListTagsForResourceOutput| {
            out.tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value.unwrap_or_default()))
                .collect::<Vec<_>>()
        };
    let stream_tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags(stream_tags), [("team".to_owned(), "core".to_owned())]);
    let consumer_tags = client
        .list_tags_for_resource()
        .resource_arn(&consumer_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(consumer_tags),
        [("owner".to_owned(), "analytics".to_owned())]
    );
    let account = client
        .describe_account_settings()
        .send()
        .await
        .unwrap()
        .minimum_throughput_billing_commitment
        .unwrap();
    assert_eq!(
        account.status,
        MinimumThroughputBillingCommitmentOutputStatus::Enabled
    );
    let on_demand = client
        .describe_stream_summary()
        .stream_name("kept-on-demand")
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(on_demand.warm_throughput.unwrap().target_mibps, Some(64));
    assert_eq!(
        on_demand.record_distribution_strategy,
        Some(RecordDistributionStrategy::Auto)
    );
    let mut records = Vec::new();
    for shard in engine.shard_ids("kept-on-demand").await {
        records.extend(engine.read_all("kept-on-demand", &shard).await);
    }
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data.as_ref(), b"keyless");
    assert_eq!(records[0].partition_key, None);
}

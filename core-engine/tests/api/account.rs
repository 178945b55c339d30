//! DescribeAccountSettings and UpdateAccountSettings, UpdateStreamWarmThroughput and
//! UpdateStreamRecordDistributionStrategy (the On-demand Advantage settings).

use aws_sdk_kinesis::types::{
    MinimumThroughputBillingCommitmentInput, MinimumThroughputBillingCommitmentInputStatus as In,
    MinimumThroughputBillingCommitmentOutputStatus as Out, RecordDistributionStrategy, StreamMode,
    StreamModeDetails,
};

use core_engine::Clock;

use crate::common::{TestEngine, code_of, name};
use crate::monitoring::stream_arn;

const HOUR_MS: i64 = 3_600_000;

async fn set_commitment(
    engine: &TestEngine,
    status: In,
) -> aws_sdk_kinesis::types::MinimumThroughputBillingCommitmentOutput {
    engine
        .client
        .update_account_settings()
        .minimum_throughput_billing_commitment(
            MinimumThroughputBillingCommitmentInput::builder()
                .status(status)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .minimum_throughput_billing_commitment
        .unwrap()
}

async fn commitment(
    engine: &TestEngine,
) -> aws_sdk_kinesis::types::MinimumThroughputBillingCommitmentOutput {
    engine
        .client
        .describe_account_settings()
        .send()
        .await
        .unwrap()
        .minimum_throughput_billing_commitment
        .unwrap()
}

async fn create_on_demand(engine: &TestEngine, stream: &str) {
    engine
        .client
        .create_stream()
        .stream_name(stream)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn summary(
    engine: &TestEngine,
    stream: &str,
) -> aws_sdk_kinesis::types::StreamDescriptionSummary {
    engine
        .client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
}

#[tokio::test]
async fn the_billing_commitment_lasts_at_least_a_day_on_the_engine_clock() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    let start = clock.now_ms();
    let fresh = commitment(&engine).await;
    assert_eq!(fresh.status, Out::Disabled);
    assert!(fresh.started_at.is_none() && fresh.earliest_allowed_end_at.is_none());

    let enabled = set_commitment(&engine, In::Enabled).await;
    assert_eq!(enabled.status, Out::Enabled);
    assert_eq!(enabled.started_at.unwrap().to_millis().unwrap(), start);
    assert_eq!(
        enabled
            .earliest_allowed_end_at
            .unwrap()
            .to_millis()
            .unwrap(),
        start + 24 * HOUR_MS
    );
    assert!(enabled.ended_at.is_none());

    // Disabling within the first day only schedules the end.
    clock.advance(HOUR_MS);
    let ending = set_commitment(&engine, In::Disabled).await;
    assert_eq!(ending.status, Out::EnabledUntilEarliestAllowedEnd);
    assert_eq!(
        ending.ended_at.unwrap().to_millis().unwrap(),
        start + 24 * HOUR_MS
    );
    assert_eq!(
        commitment(&engine).await.status,
        Out::EnabledUntilEarliestAllowedEnd
    );
    // Enabling again cancels the scheduled end; the commitment keeps its start.
    let again = set_commitment(&engine, In::Enabled).await;
    assert_eq!(again.status, Out::Enabled);
    assert_eq!(again.started_at.unwrap().to_millis().unwrap(), start);
    assert!(again.ended_at.is_none());
    set_commitment(&engine, In::Disabled).await;
    clock.advance(23 * HOUR_MS);
    let ended = commitment(&engine).await;
    assert_eq!(ended.status, Out::Disabled);
    assert_eq!(
        ended.ended_at.unwrap().to_millis().unwrap(),
        start + 24 * HOUR_MS
    );

    // After the first day, disabling takes effect at once.
    clock.advance(HOUR_MS);
    set_commitment(&engine, In::Enabled).await;
    clock.advance(30 * HOUR_MS);
    let disabled = set_commitment(&engine, In::Disabled).await;
    assert_eq!(disabled.status, Out::Disabled);
    assert_eq!(
        disabled.ended_at.unwrap().to_millis().unwrap(),
        clock.now_ms()
    );
}

#[tokio::test]
async fn account_settings_requests_are_validated() {
    let engine = TestEngine::start().await;
    let (code, message) = code_of(
        engine
            .client
            .update_account_settings()
            .minimum_throughput_billing_commitment(
                MinimumThroughputBillingCommitmentInput::builder()
                    .status(In::from("PAUSED"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("'minimumThroughputBillingCommitment.status'"),
        "{message}"
    );
    assert_eq!(commitment(&engine).await.status, Out::Disabled);
}

#[tokio::test]
async fn warm_throughput_needs_an_on_demand_stream_and_the_commitment() {
    let engine = TestEngine::start().await;
    let on_demand = name("warm");
    create_on_demand(&engine, &on_demand).await;
    let provisioned = name("warm-provisioned");
    engine.create_stream(&provisioned, 1).await;
    assert!(summary(&engine, &on_demand).await.warm_throughput.is_none());

    // Without the account's commitment: refused.
    let (code, message) = code_of(
        engine
            .client
            .update_stream_warm_throughput()
            .stream_name(&on_demand)
            .warm_throughput_mibps(100)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException", "{message}");
    assert!(message.contains("commitment"), "{message}");

    set_commitment(&engine, In::Enabled).await;
    let out = engine
        .client
        .update_stream_warm_throughput()
        .stream_arn(stream_arn(&on_demand))
        .warm_throughput_mibps(100)
        .send()
        .await
        .unwrap();
    assert_eq!(out.stream_name.as_deref(), Some(on_demand.as_str()));
    assert_eq!(out.stream_arn, Some(stream_arn(&on_demand)));
    let warm = out.warm_throughput.unwrap();
    assert_eq!(warm.target_mibps, Some(100));
    let shown = summary(&engine, &on_demand).await.warm_throughput.unwrap();
    assert_eq!(
        (shown.target_mibps, shown.current_mibps),
        (Some(100), Some(100))
    );

    // Lowering it releases capacity: the answer shows where it was.
    let out = engine
        .client
        .update_stream_warm_throughput()
        .stream_name(&on_demand)
        .warm_throughput_mibps(20)
        .send()
        .await
        .unwrap();
    let warm = out.warm_throughput.unwrap();
    assert_eq!(
        (warm.target_mibps, warm.current_mibps),
        (Some(20), Some(100))
    );
    let shown = summary(&engine, &on_demand).await.warm_throughput.unwrap();
    assert_eq!(shown.target_mibps, Some(20));

    // Provisioned streams do not support it.
    let (code, message) = code_of(
        engine
            .client
            .update_stream_warm_throughput()
            .stream_name(&provisioned)
            .warm_throughput_mibps(100)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(message.contains("PROVISIONED"), "{message}");
    assert!(
        summary(&engine, &provisioned)
            .await
            .warm_throughput
            .is_none()
    );

    // At most 10 GiB/s; not negative; required; the stream must exist.
    let (code, _) = code_of(
        engine
            .client
            .update_stream_warm_throughput()
            .stream_name(&on_demand)
            .warm_throughput_mibps(10_241)
            .send()
            .await,
    );
    assert_eq!(code, "LimitExceededException");
    let (code, _) = code_of(
        engine
            .client
            .update_stream_warm_throughput()
            .stream_name(&on_demand)
            .warm_throughput_mibps(-1)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(
        engine
            .client
            .update_stream_warm_throughput()
            .stream_name("no-such-stream")
            .warm_throughput_mibps(1)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(
        summary(&engine, &on_demand)
            .await
            .warm_throughput
            .unwrap()
            .target_mibps,
        Some(20)
    );

    // CreateStream takes it too, under the same rules.
    let created = name("warm-created");
    engine
        .client
        .create_stream()
        .stream_name(&created)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .warm_throughput_mibps(50)
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary(&engine, &created)
            .await
            .warm_throughput
            .unwrap()
            .target_mibps,
        Some(50)
    );
    let (code, _) = code_of(
        engine
            .client
            .create_stream()
            .stream_name(name("warm-refused"))
            .shard_count(1)
            .warm_throughput_mibps(50)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
}

#[tokio::test]
async fn the_record_distribution_strategy_is_kept_for_on_demand_streams() {
    let engine = TestEngine::start().await;
    let on_demand = name("distribution");
    create_on_demand(&engine, &on_demand).await;
    let provisioned = name("distribution-provisioned");
    engine.create_stream(&provisioned, 1).await;
    assert_eq!(
        summary(&engine, &on_demand)
            .await
            .record_distribution_strategy,
        Some(RecordDistributionStrategy::UserPartitionKey)
    );
    assert_eq!(
        summary(&engine, &provisioned)
            .await
            .record_distribution_strategy,
        None,
        "only on-demand streams show a strategy"
    );

    engine
        .client
        .update_stream_record_distribution_strategy()
        .stream_arn(stream_arn(&on_demand))
        .record_distribution_strategy(RecordDistributionStrategy::Auto)
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary(&engine, &on_demand)
            .await
            .record_distribution_strategy,
        Some(RecordDistributionStrategy::Auto)
    );
    engine
        .client
        .update_stream_record_distribution_strategy()
        .stream_arn(stream_arn(&on_demand))
        .record_distribution_strategy(RecordDistributionStrategy::UserPartitionKey)
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary(&engine, &on_demand)
            .await
            .record_distribution_strategy,
        Some(RecordDistributionStrategy::UserPartitionKey)
    );

    let (code, message) = code_of(
        engine
            .client
            .update_stream_record_distribution_strategy()
            .stream_arn(stream_arn(&provisioned))
            .record_distribution_strategy(RecordDistributionStrategy::Auto)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(message.contains("PROVISIONED"), "{message}");
    let (code, _) = code_of(
        engine
            .client
            .update_stream_record_distribution_strategy()
            .stream_arn(stream_arn(&on_demand))
            .record_distribution_strategy(RecordDistributionStrategy::from("RANDOM"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(
        engine
            .client
            .update_stream_record_distribution_strategy()
            .stream_arn(stream_arn("no-such-stream"))
            .record_distribution_strategy(RecordDistributionStrategy::Auto)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");

    // CreateStream takes the strategy; AUTO needs an on-demand stream.
    let created = name("distribution-created");
    engine
        .client
        .create_stream()
        .stream_name(&created)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .record_distribution_strategy(RecordDistributionStrategy::Auto)
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary(&engine, &created)
            .await
            .record_distribution_strategy,
        Some(RecordDistributionStrategy::Auto)
    );
    let (code, _) = code_of(
        engine
            .client
            .create_stream()
            .stream_name(name("distribution-refused"))
            .shard_count(1)
            .record_distribution_strategy(RecordDistributionStrategy::Auto)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
}

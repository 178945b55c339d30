//! Channels: CreateChannel, DescribeChannel, ListChannels, UpdateChannel and DeleteChannel, and
//! delivery of a stream's records to batch files in the channel directory.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::types::{
    ChannelStatus, ChannelStreamConfiguration, RecordConfiguration, RecordFormatType,
    S3CompressionType, S3DestinationConfiguration, S3DestinationUpdateInput,
    S3StorageConfiguration, StreamFilter, StreamMode, StreamModeDetails,
};
use base64::Engine as _;
use core_engine::{Engine, ManualClock};

use crate::common::{TestEngine, code_of, name};
use crate::monitoring::stream_arn;

const ROLE: &str = "arn:aws:iam::000000000000:role/channel-writer";
const BUCKET: &str = "arn:aws:s3:::landing-bucket";
const START_MS: i64 = 1_750_000_000_000;

fn channel_arn(channel: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:channel/{channel}")
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

fn destination(freshness: i32, compression: S3CompressionType) -> S3DestinationConfiguration {
    S3DestinationConfiguration::builder()
        .data_freshness_in_seconds(freshness)
        .storage_configuration(
            S3StorageConfiguration::builder()
                .bucket_arn(BUCKET)
                .expected_bucket_owner("000000000000")
                .compression_type(compression)
                .build()
                .unwrap(),
        )
        .build()
}

fn source(stream: &str) -> ChannelStreamConfiguration {
    ChannelStreamConfiguration::builder()
        .stream_arn(stream_arn(stream))
        .record_configuration(
            RecordConfiguration::builder()
                .record_format_type(RecordFormatType::Json)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// A CreateChannel request for `channel` reading `stream`, every member valid.
fn create(
    engine: &TestEngine,
    channel: &str,
    stream: &str,
    freshness: i32,
) -> aws_sdk_kinesis::operation::create_channel::builders::CreateChannelFluentBuilder {
    engine
        .client
        .create_channel()
        .channel_name(channel)
        .service_execution_role_arn(ROLE)
        .stream_configuration_list(source(stream))
        .s3_destination_configuration(destination(freshness, S3CompressionType::None))
}

async fn status(engine: &TestEngine, channel: &str) -> ChannelStatus {
    engine
        .client
        .describe_channel()
        .channel_arn(channel_arn(channel))
        .send()
        .await
        .unwrap()
        .channel_description
        .unwrap()
        .channel_status
}

/// The batch files of a channel, in delivery order.
fn batches(dir: &Path, channel: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("landing-bucket").join(channel))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Waits (up to 20 s) until the channel has written `count` batches.
async fn wait_for_batches(dir: &Path, channel: &str, count: usize) -> Vec<PathBuf> {
    for _ in 0..1000 {
        let found = batches(dir, channel);
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("channel {channel} did not write {count} batches");
}

/// Waits (up to 20 s) until the channel's batches hold `count` records; gives their data.
async fn wait_for_records(dir: &Path, channel: &str, count: usize) -> Vec<String> {
    for _ in 0..1000 {
        let data: Vec<String> = batches(dir, channel)
            .iter()
            .flat_map(|f| data_of(f))
            .collect();
        if data.len() >= count {
            return data;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("channel {channel} did not deliver {count} records");
}

/// The data of the records in a batch file, with each line's shard and sequence number.
fn records_in(file: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let data = base64::engine::general_purpose::STANDARD
                .decode(record["Data"].as_str().unwrap())
                .unwrap();
            assert!(
                record["StreamARN"]
                    .as_str()
                    .unwrap()
                    .ends_with(":stream/delivered")
            );
            (
                record["ShardId"].as_str().unwrap().to_owned(),
                record["SequenceNumber"].as_str().unwrap().to_owned(),
                String::from_utf8(data).unwrap(),
            )
        })
        .collect()
}

fn data_of(file: &Path) -> Vec<String> {
    records_in(file).into_iter().map(|(_, _, d)| d).collect()
}

#[tokio::test]
async fn a_channel_is_created_described_listed_updated_and_deleted() {
    let engine = TestEngine::start().await;
    let (stream, other) = (name("chan-src"), name("chan-other"));
    create_on_demand(&engine, &stream).await;
    create_on_demand(&engine, &other).await;
    let created = create(&engine, "orders-to-s3", &stream, 60)
        .send()
        .await
        .unwrap()
        .channel_description
        .unwrap();
    assert_eq!(created.channel_name, "orders-to-s3");
    assert_eq!(created.channel_arn, channel_arn("orders-to-s3"));
    assert!(!created.channel_id.is_empty());
    create(&engine, "other-to-s3", &other, 300)
        .send()
        .await
        .unwrap();

    let described = engine
        .client
        .describe_channel()
        .channel_arn(channel_arn("orders-to-s3"))
        .send()
        .await
        .unwrap()
        .channel_description
        .unwrap();
    assert_eq!(described.channel_status, ChannelStatus::Active);
    assert_eq!(described.service_execution_role_arn, ROLE);
    assert_eq!(described.channel_id, created.channel_id);
    assert_eq!(described.stream_configuration_list.len(), 1);
    assert_eq!(
        described.stream_configuration_list[0].stream_arn,
        stream_arn(&stream)
    );
    let s3 = described.s3_destination_configuration.unwrap();
    assert_eq!(s3.data_freshness_in_seconds, 60);
    assert_eq!(s3.storage_configuration.unwrap().bucket_arn, BUCKET);
    assert!(s3.dead_letter_queue_s3_configuration.is_some());

    let all = engine.client.list_channels().send().await.unwrap();
    let names: Vec<&str> = all
        .channel_summaries
        .iter()
        .map(|c| c.channel_name.as_str())
        .collect();
    assert_eq!(names, ["orders-to-s3", "other-to-s3"]);
    let first_page = engine
        .client
        .list_channels()
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(first_page.channel_summaries.len(), 1);
    let second_page = engine
        .client
        .list_channels()
        .next_token(first_page.next_token.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(second_page.channel_summaries[0].channel_name, "other-to-s3");
    assert!(second_page.next_token.is_none());
    let filtered = engine
        .client
        .list_channels()
        .stream_filter(
            StreamFilter::builder()
                .stream_arn(stream_arn(&other))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.channel_summaries.len(), 1);
    assert_eq!(filtered.channel_summaries[0].channel_name, "other-to-s3");
    assert_eq!(
        filtered.channel_summaries[0].streams[0].stream_arn,
        stream_arn(&other)
    );

    engine
        .client
        .update_channel()
        .channel_arn(channel_arn("orders-to-s3"))
        .s3_destination_configuration(
            S3DestinationUpdateInput::builder()
                .data_freshness_in_seconds(120)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let updated = engine
        .client
        .describe_channel()
        .channel_arn(channel_arn("orders-to-s3"))
        .send()
        .await
        .unwrap()
        .channel_description
        .unwrap();
    assert_eq!(
        updated
            .s3_destination_configuration
            .unwrap()
            .data_freshness_in_seconds,
        120
    );

    engine
        .client
        .delete_channel()
        .channel_arn(channel_arn("orders-to-s3"))
        .send()
        .await
        .unwrap();
    let (code, _) = code_of(
        engine
            .client
            .describe_channel()
            .channel_arn(channel_arn("orders-to-s3"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let left = engine.client.list_channels().send().await.unwrap();
    assert_eq!(left.channel_summaries.len(), 1);
}

#[tokio::test]
async fn status_passes_through_creating_updating_and_deleting() {
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = TestEngine::with(
        Engine::builder()
            .clock(clock.clone())
            .stream_create_delay(Duration::from_secs(10)),
    )
    .await;
    create_on_demand(&engine, "timed").await;
    clock.advance(10_000);
    create(&engine, "timed-channel", "timed", 60)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(&engine, "timed-channel").await,
        ChannelStatus::Creating
    );
    let update = || {
        engine
            .client
            .update_channel()
            .channel_arn(channel_arn("timed-channel"))
            .s3_destination_configuration(
                S3DestinationUpdateInput::builder()
                    .data_freshness_in_seconds(30)
                    .build()
                    .unwrap(),
            )
            .send()
    };
    let (code, _) = code_of(update().await);
    assert_eq!(
        code, "ResourceInUseException",
        "updating a CREATING channel"
    );
    clock.advance(10_000);
    assert_eq!(
        status(&engine, "timed-channel").await,
        ChannelStatus::Active
    );
    update().await.unwrap();
    assert_eq!(
        status(&engine, "timed-channel").await,
        ChannelStatus::Updating
    );
    let (code, _) = code_of(update().await);
    assert_eq!(
        code, "ResourceInUseException",
        "updating an UPDATING channel"
    );
    clock.advance(10_000);
    assert_eq!(
        status(&engine, "timed-channel").await,
        ChannelStatus::Active
    );
    engine
        .client
        .delete_channel()
        .channel_arn(channel_arn("timed-channel"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(&engine, "timed-channel").await,
        ChannelStatus::Deleting
    );
    clock.advance(10_000);
    let (code, _) = code_of(
        engine
            .client
            .describe_channel()
            .channel_arn(channel_arn("timed-channel"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn bad_channel_requests_get_the_documented_errors() {
    let engine = TestEngine::start().await;
    let stream = name("chan-errors");
    create_on_demand(&engine, &stream).await;
    let provisioned = name("chan-provisioned");
    engine.create_stream(&provisioned, 1).await;

    let (code, _) = code_of(create(&engine, "c1", "no-such-stream", 60).send().await);
    assert_eq!(code, "ResourceNotFoundException");
    let (code, message) = code_of(create(&engine, "c1", &provisioned, 60).send().await);
    assert_eq!(code, "InvalidArgumentException");
    assert!(message.contains("on-demand"), "{message}");
    let (code, message) = code_of(create(&engine, "bad name!", &stream, 60).send().await);
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("Member must satisfy regular expression pattern"),
        "{message}"
    );
    let (code, _) = code_of(
        create(&engine, "c1", &stream, 60)
            .service_execution_role_arn("not-a-role")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, message) = code_of(
        engine
            .client
            .create_channel()
            .channel_name("c1")
            .service_execution_role_arn(ROLE)
            .stream_configuration_list(source(&stream))
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.contains("either S3DestinationConfiguration"),
        "{message}"
    );
    let (code, message) = code_of(
        create(&engine, "c1", &stream, 60)
            .s3_destination_configuration(destination(60, S3CompressionType::Gzip))
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    assert!(message.contains("CompressionType NONE"), "{message}");
    let (code, _) = code_of(create(&engine, "c1", &stream, 100_000).send().await);
    assert_eq!(code, "InvalidArgumentException");

    create(&engine, "c1", &stream, 60).send().await.unwrap();
    let (code, _) = code_of(create(&engine, "c1", &stream, 60).send().await);
    assert_eq!(code, "ResourceInUseException");
    let (code, _) = code_of(
        engine
            .client
            .delete_stream()
            .stream_name(&stream)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceInUseException", "a stream with a channel");

    let (code, _) = code_of(
        engine
            .client
            .describe_channel()
            .channel_arn(channel_arn("missing"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = code_of(
        engine
            .client
            .describe_channel()
            .channel_arn("arn:aws:kinesis:us-east-1:000000000000:stream/not-a-channel")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(
        engine
            .client
            .delete_channel()
            .channel_arn(channel_arn("missing"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = code_of(
        engine
            .client
            .update_channel()
            .channel_arn(channel_arn("c1"))
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException", "an update of nothing");
    let (code, _) = code_of(engine.client.list_channels().max_results(0).send().await);
    assert_eq!(code, "ValidationException");

    engine
        .client
        .delete_channel()
        .channel_arn(channel_arn("c1"))
        .send()
        .await
        .unwrap();
    engine
        .client
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn records_put_to_the_stream_arrive_in_batch_files() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = TestEngine::with(
        Engine::builder()
            .clock(clock.clone())
            .channel_dir(dir.path())
            .channel_delivery_interval(Duration::from_millis(10)),
    )
    .await;
    assert_eq!(engine.handle.channel_dir(), dir.path());
    create_on_demand(&engine, "delivered").await;
    engine.put("delivered", "k", b"before the channel").await;
    create(&engine, "deliver", "delivered", 60)
        .send()
        .await
        .unwrap();
    let mut put = Vec::new();
    for i in 0..20 {
        let data = format!("record-{i}");
        let (shard, seq) = engine
            .put("delivered", &format!("key-{i}"), data.as_bytes())
            .await;
        put.push((shard, seq, data));
    }
    // Not due before DataFreshnessInSeconds has passed on the engine clock.
    clock.advance(59_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(batches(dir.path(), "deliver").is_empty());
    clock.advance(1_000);
    let files = wait_for_batches(dir.path(), "deliver", 1).await;
    assert_eq!(files[0].file_name().unwrap(), "00000000000000000001.jsonl");
    let mut delivered = records_in(&files[0]);
    delivered.sort();
    put.sort();
    assert_eq!(delivered, put, "every record put after creation, once");

    engine.put("delivered", "k", b"second batch").await;
    clock.advance(60_000);
    let files = wait_for_batches(dir.path(), "deliver", 2).await;
    assert_eq!(data_of(&files[1]), ["second batch"]);
    assert_eq!(files.len(), 2);

    // Delivered batches outlive the channel; a new channel of the same name numbers after them.
    engine
        .client
        .delete_channel()
        .channel_arn(channel_arn("deliver"))
        .send()
        .await
        .unwrap();
    create(&engine, "deliver", "delivered", 60)
        .send()
        .await
        .unwrap();
    engine.put("delivered", "k", b"new channel").await;
    clock.advance(60_000);
    let files = wait_for_batches(dir.path(), "deliver", 3).await;
    assert_eq!(data_of(&files[0]).len(), 20);
    assert_eq!(data_of(&files[1]), ["second batch"]);
    assert_eq!(data_of(&files[2]), ["new channel"]);
}

#[tokio::test]
async fn a_durable_engine_keeps_its_channels_and_resumes_delivery_without_duplicates() {
    let data = tempfile::tempdir().unwrap();
    let channels = data.path().join("channels");
    let fast = || {
        Engine::builder()
            .data_dir(data.path())
            .channel_delivery_interval(Duration::from_millis(10))
    };
    let state = channels.join(".state").join("kept-channel.json");
    let state_before_delivery = {
        let engine = TestEngine::with(fast()).await;
        assert_eq!(engine.handle.channel_dir(), channels);
        create_on_demand(&engine, "delivered").await;
        create(&engine, "kept-channel", "delivered", 0)
            .send()
            .await
            .unwrap();
        let saved = std::fs::read(&state).unwrap();
        for i in 0..3 {
            engine
                .put("delivered", "k", format!("first-{i}").as_bytes())
                .await;
        }
        assert_eq!(
            wait_for_records(&channels, "kept-channel", 3).await,
            ["first-0", "first-1", "first-2"]
        );
        engine.handle.shutdown().await;
        saved
    };
    // As if the engine crashed after writing the batch but before saving its progress.
    std::fs::write(&state, state_before_delivery).unwrap();
    let first = batches(&channels, "kept-channel");
    let objects = |files: &[PathBuf]| -> Vec<u64> {
        files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().ino())
            .collect()
    };
    let first_objects = objects(&first);

    let engine = TestEngine::with(fast()).await;
    assert_eq!(status(&engine, "kept-channel").await, ChannelStatus::Active);
    engine.put("delivered", "k", b"after restart").await;
    let files = wait_for_batches(&channels, "kept-channel", first.len() + 1).await;
    assert_eq!(data_of(&files[first.len()]), ["after restart"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        batches(&channels, "kept-channel").len(),
        first.len() + 1,
        "nothing delivered twice"
    );
    assert_eq!(
        objects(&first),
        first_objects,
        "a batch delivered before the restart was written again"
    );
}

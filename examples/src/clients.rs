//! SDK clients for a local engine, and the stream set-up every example does.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::config::{
    BehaviorVersion as DdbBehavior, Credentials as DdbCredentials, Region as DdbRegion,
};
use aws_sdk_kinesis::client::Waiters;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};

/// A Kinesis client for `endpoint`, with dummy credentials (the engine does not check them).
pub fn kinesis(endpoint: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("local", "local", None, None, "examples"))
            .build(),
    )
}

/// A DynamoDB client for `endpoint` (the engine also serves the lease table).
pub fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(DdbBehavior::latest())
            .region(DdbRegion::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(DdbCredentials::new(
                "local", "local", None, None, "examples",
            ))
            .build(),
    )
}

/// Creates stream `name` with `shards` shards and waits until it is `ACTIVE`.
pub async fn create_stream(
    kinesis: &aws_sdk_kinesis::Client,
    name: &str,
    shards: i32,
) -> Result<()> {
    kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .with_context(|| format!("creating stream {name}"))?;
    wait_active(kinesis, name).await
}

/// Waits (a minute at most) until stream `name` is `ACTIVE`: after its creation, or after a
/// reshard, which real Kinesis carries out in `UPDATING`. Uses the SDK's own waiter.
pub async fn wait_active(kinesis: &aws_sdk_kinesis::Client, name: &str) -> Result<()> {
    kinesis
        .wait_until_stream_exists()
        .stream_name(name)
        .wait(Duration::from_secs(60))
        .await
        .with_context(|| format!("waiting for stream {name} to become active"))?;
    Ok(())
}

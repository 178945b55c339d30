//! The engine's `/metrics` and its page: exact counters after a known load, and the page as
//! headless Chromium renders it.

mod browser;
mod metrics;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestEngine;

/// An HTTP answer: status, head (lower-cased) and body.
pub struct Got {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// `GET path` over a plain connection, as a browser or Prometheus would send it.
pub async fn get(engine: &TestEngine, path: &str) -> Got {
    let mut socket = TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        engine.handle.local_addr()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    Got {
        status: head[9..12].parse().unwrap(),
        head,
        body: String::from_utf8_lossy(&response[split + 4..]).into_owned(),
    }
}

/// A DynamoDB client for the engine, with no retries.
pub fn dynamodb(engine: &TestEngine) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(engine.handle.endpoint_url())
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Creates a table keyed by `leaseKey`, as the KCL creates its lease tables.
pub async fn create_lease_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("leaseKey")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("leaseKey")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// A lease in the Java KCL's schema (`DynamoDBLeaseSerializer`).
pub struct Lease<'a> {
    pub shard: &'a str,
    pub owner: Option<&'a str>,
    pub counter: u64,
    pub checkpoint: &'a str,
    pub parents: &'a [&'a str],
}

/// Writes `lease` with a raw PutItem, attribute for attribute as the Java KCL does.
pub async fn put_lease(ddb: &aws_sdk_dynamodb::Client, table: &str, lease: &Lease<'_>) {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: u64| AttributeValue::N(v.to_string());
    let mut item = HashMap::from([
        ("leaseKey".to_owned(), s(lease.shard)),
        ("leaseCounter".to_owned(), n(lease.counter)),
        ("checkpoint".to_owned(), s(lease.checkpoint)),
        ("checkpointSubSequenceNumber".to_owned(), n(0)),
        ("ownerSwitchesSinceCheckpoint".to_owned(), n(0)),
    ]);
    if let Some(owner) = lease.owner {
        item.insert("leaseOwner".to_owned(), s(owner));
    }
    if !lease.parents.is_empty() {
        item.insert(
            "parentShardId".to_owned(),
            AttributeValue::Ss(lease.parents.iter().map(|p| p.to_string()).collect()),
        );
    }
    ddb.put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

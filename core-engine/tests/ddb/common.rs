//! Shared set-up: an engine, a DynamoDB client pointed at it, and helpers.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use core_engine::{Engine, EngineBuilder, EngineHandle};

/// A running engine and a DynamoDB client for it.
pub struct Ddb {
    pub handle: EngineHandle,
    pub client: Client,
}

impl Ddb {
    pub async fn start() -> Self {
        Self::with(Engine::builder()).await
    }

    pub async fn with(builder: EngineBuilder) -> Self {
        let handle = builder.build().unwrap().start().await.unwrap();
        let client = client(&handle.endpoint_url());
        Self { handle, client }
    }

    /// A table keyed by `pk` (S) and, if given, sort key `sk` of type `sort_type`.
    pub async fn table(&self, name: &str, sort_type: Option<ScalarAttributeType>) {
        create_table(&self.client, name, "pk", sort_type.map(|t| ("sk", t))).await;
    }

    pub async fn put(&self, table: &str, item: Item) {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    pub async fn get(&self, table: &str, key: Item) -> Option<Item> {
        self.client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }
}

pub type Item = HashMap<String, AttributeValue>;

pub async fn create_table(
    client: &Client,
    name: &str,
    hash: &str,
    range: Option<(&str, ScalarAttributeType)>,
) {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(hash, KeyType::Hash))
        .attribute_definitions(attr(hash, ScalarAttributeType::S));
    if let Some((range, kind)) = range {
        request = request
            .key_schema(key(range, KeyType::Range))
            .attribute_definitions(attr(range, kind));
    }
    request.send().await.unwrap();
}

pub fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

pub fn attr(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .unwrap()
}

pub fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: &str) -> AttributeValue {
    AttributeValue::N(value.into())
}

/// An item from (name, value) pairs.
pub fn item(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A client for `endpoint` with throwaway credentials and no retries.
pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

pub use crate::support::code_of;

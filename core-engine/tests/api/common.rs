//! Shared set-up: an engine, a client pointed at it, and helpers to read what a user would see.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use core_engine::{Engine, EngineBuilder, EngineHandle, ManualClock};

/// A running engine and a client for it.
pub struct TestEngine {
    pub handle: EngineHandle,
    pub client: Client,
}

impl TestEngine {
    pub async fn start() -> Self {
        Self::with(Engine::builder()).await
    }

    pub async fn with(builder: EngineBuilder) -> Self {
        let handle = builder.build().unwrap().start().await.unwrap();
        let client = client(&handle.endpoint_url());
        Self { handle, client }
    }

    /// An engine whose time is set by hand, starting at a fixed instant.
    pub async fn with_manual_clock() -> (Self, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_750_000_000_000));
        let engine = Self::with(Engine::builder().clock(clock.clone())).await;
        (engine, clock)
    }

    pub async fn create_stream(&self, name: &str, shards: i32) {
        self.client
            .create_stream()
            .stream_name(name)
            .shard_count(shards)
            .send()
            .await
            .unwrap();
    }

    pub async fn put(&self, stream: &str, key: &str, data: &[u8]) -> (String, String) {
        let out = self
            .client
            .put_record()
            .stream_name(stream)
            .partition_key(key)
            .data(Blob::new(data))
            .send()
            .await
            .unwrap();
        (out.shard_id, out.sequence_number)
    }

    pub async fn iterator(&self, stream: &str, shard: &str, kind: ShardIteratorType) -> String {
        self.client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap()
    }

    /// An iterator at (`AtSequenceNumber`) or after (`AfterSequenceNumber`) record `seq`.
    pub async fn iterator_at(
        &self,
        stream: &str,
        shard: &str,
        kind: ShardIteratorType,
        seq: &str,
    ) -> String {
        self.client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .starting_sequence_number(seq)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap()
    }

    /// Every record of a shard from the trim horizon, following iterators until caught up.
    pub async fn read_all(&self, stream: &str, shard: &str) -> Vec<Record> {
        let mut iterator = self
            .iterator(stream, shard, ShardIteratorType::TrimHorizon)
            .await;
        let mut records = Vec::new();
        loop {
            let out = self
                .client
                .get_records()
                .shard_iterator(&iterator)
                .send()
                .await
                .unwrap();
            let empty = out.records.is_empty();
            records.extend(out.records);
            match out.next_shard_iterator {
                Some(next) if !(empty && out.millis_behind_latest == Some(0)) => iterator = next,
                _ => return records,
            }
        }
    }

    pub async fn shard_ids(&self, stream: &str) -> Vec<String> {
        let out = self
            .client
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .unwrap();
        out.shards
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.shard_id)
            .collect()
    }
}

/// A client for `endpoint` with throwaway credentials and no retries, so errors surface at once.
pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_kinesis::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

pub use crate::support::code_of;

/// A stream name unique to the calling test.
pub fn name(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

//! An engine, a client, and a reader that deaggregates what the producer wrote.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::types::ShardIteratorType;
use core_engine::{Engine, EngineBuilder, EngineHandle};
use kpl::aggregation::{UserRecord, deaggregate_for_shard};

pub struct Setup {
    /// Kept alive for the test; dropping it stops the engine.
    pub _engine: EngineHandle,
    pub client: Client,
}

impl Setup {
    pub async fn new(builder: EngineBuilder, stream: &str, shards: i32) -> Self {
        let setup = Self::start(builder).await;
        setup
            .client
            .create_stream()
            .stream_name(stream)
            .shard_count(shards)
            .send()
            .await
            .unwrap();
        setup
    }

    /// An engine and a client, without a stream.
    pub async fn start(builder: EngineBuilder) -> Self {
        let engine = builder.build().unwrap().start().await.unwrap();
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(engine.endpoint_url())
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
            .build();
        let client = Client::from_conf(config);
        Self {
            _engine: engine,
            client,
        }
    }

    pub async fn unlimited(stream: &str, shards: i32) -> Self {
        Self::new(Engine::builder().throughput_limits(false), stream, shards).await
    }

    /// Every user record in the stream, by partition key in the order a consumer reads them,
    /// deaggregated with the consumer's rules (an aggregate straddling shards is dropped).
    pub async fn read_user_records(&self, stream: &str) -> HashMap<String, Vec<UserRecord>> {
        let shards = self
            .client
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .unwrap()
            .shards
            .unwrap();
        let mut by_key: HashMap<String, Vec<UserRecord>> = HashMap::new();
        for shard in shards {
            let range = shard.hash_key_range.unwrap();
            let (start, end) = (
                range.starting_hash_key.parse().unwrap(),
                range.ending_hash_key.parse().unwrap(),
            );
            let mut iterator = self
                .client
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(&shard.shard_id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator;
            while let Some(current) = iterator {
                let out = self
                    .client
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                    .unwrap();
                let caught_up = out.records.is_empty() && out.millis_behind_latest == Some(0);
                for record in out.records {
                    let data = bytes::Bytes::from(record.data.into_inner());
                    for user in deaggregate_for_shard(
                        record.partition_key.as_deref().unwrap_or_default(),
                        None,
                        &data,
                        start,
                        end,
                    ) {
                        by_key
                            .entry(user.partition_key.clone())
                            .or_default()
                            .push(user);
                    }
                }
                iterator = if caught_up {
                    None
                } else {
                    out.next_shard_iterator
                };
            }
        }
        by_key
    }
}

/// Waits for every future, with a generous bound so a bug fails instead of hanging.
pub async fn settle<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(futures))
        .await
        .expect("every put settles")
}

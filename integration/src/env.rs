//! [`TestEnv`]: an engine (in-process or external) and clients for it.

use std::time::Duration;

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use core_engine::{Engine, EngineBuilder, EngineHandle};

/// Where the tests run: an in-process engine, or external endpoints from the environment.
#[derive(Debug)]
pub struct TestEnv {
    /// The in-process engine; `None` against external endpoints.
    pub engine: Option<EngineHandle>,
    /// Kinesis client.
    pub kinesis: aws_sdk_kinesis::Client,
    /// DynamoDB client (lease tables).
    pub ddb: aws_sdk_dynamodb::Client,
    /// A prefix unique to this environment, for stream and application names.
    pub prefix: String,
}

impl TestEnv {
    /// An environment with default engine settings (throughput limits on, in memory).
    pub async fn start() -> Self {
        Self::with(Engine::builder()).await
    }

    /// An environment whose in-process engine is built from `builder` (ignored when the
    /// endpoints come from the environment).
    pub async fn with(builder: EngineBuilder) -> Self {
        let prefix = format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        if is_external() {
            let (kinesis, ddb) = external_clients().await;
            return Self {
                engine: None,
                kinesis,
                ddb,
                prefix,
            };
        }
        let engine = builder
            .build()
            .expect("engine configuration")
            .start()
            .await
            .expect("engine start");
        let url = engine.endpoint_url();
        // An engine serving HTTPS with a generated certificate: trust its CA.
        let http = engine.ca_certificate_pem().map(|ca| {
            core_engine::tls::sdk_http_client(ca).expect("the engine's CA is a certificate")
        });
        Self {
            kinesis: kinesis_client_with(&url, http.clone()),
            ddb: dynamodb_client_with(&url, http),
            engine: Some(engine),
            prefix,
        }
    }

    /// Whether the engine is in this process (so faults and restarts can be driven).
    pub fn is_local(&self) -> bool {
        self.engine.is_some()
    }

    /// A name unique to this environment.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    /// Creates a stream and waits until it is active.
    pub async fn create_stream(&self, name: &str, shards: i32) {
        self.kinesis
            .create_stream()
            .stream_name(name)
            .shard_count(shards)
            .send()
            .await
            .expect("create stream");
        self.wait_active(name).await;
    }

    /// Waits until the stream is active (after creation or a reshard).
    pub async fn wait_active(&self, name: &str) {
        for _ in 0..1200 {
            let summary = self
                .kinesis
                .describe_stream_summary()
                .stream_name(name)
                .send()
                .await
                .expect("describe stream");
            if summary
                .stream_description_summary
                .is_some_and(|s| s.stream_status == aws_sdk_kinesis::types::StreamStatus::Active)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("stream {name} did not become active");
    }

    /// Open shards with their hash key ranges.
    pub async fn open_shards(&self, stream: &str) -> Vec<(String, u128, u128)> {
        self.kinesis
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .expect("list shards")
            .shards
            .unwrap_or_default()
            .into_iter()
            .filter(|s| {
                s.sequence_number_range
                    .as_ref()
                    .is_none_or(|r| r.ending_sequence_number.is_none())
            })
            .filter_map(|s| {
                let range = s.hash_key_range?;
                Some((
                    s.shard_id,
                    range.starting_hash_key.parse().ok()?,
                    range.ending_hash_key.parse().ok()?,
                ))
            })
            .collect()
    }

    /// Splits the widest open shard in half; returns its id.
    pub async fn split_widest(&self, stream: &str) -> String {
        let (shard, start, end) = self
            .open_shards(stream)
            .await
            .into_iter()
            .max_by_key(|(_, start, end)| end - start)
            .expect("an open shard");
        self.kinesis
            .split_shard()
            .stream_name(stream)
            .shard_to_split(&shard)
            .new_starting_hash_key((start + (end - start) / 2 + 1).to_string())
            .send()
            .await
            .expect("split shard");
        self.wait_active(stream).await;
        shard
    }

    /// Lease owners by shard, for unfinished leases.
    pub async fn owners(&self, app: &str) -> Vec<(String, Option<String>)> {
        kcl::leases::LeaseTable::new(self.ddb.clone(), app)
            .list()
            .await
            // The table may not exist yet.
            .unwrap_or_default()
            .into_iter()
            .filter(|l| !l.is_finished())
            .map(|l| (l.key, l.owner))
            .collect()
    }
}

fn external(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Whether the suite runs against external endpoints: an endpoint is configured
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_KINESIS`, or the older `KINESIS_ENDPOINT`), or
/// `SHARDLINE_E2E=aws` asks for AWS as configured.
fn is_external() -> bool {
    [
        "KINESIS_ENDPOINT",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_KINESIS",
    ]
    .iter()
    .any(|var| external(var).is_some())
        || external("SHARDLINE_E2E").as_deref() == Some("aws")
}

/// Clients from the AWS configuration (`examples::clients::Aws::load`: the environment,
/// profiles, `AWS_ENDPOINT_URL*`), `KINESIS_ENDPOINT` and `DYNAMODB_ENDPOINT` overriding it.
async fn external_clients() -> (aws_sdk_kinesis::Client, aws_sdk_dynamodb::Client) {
    let kinesis_endpoint = external("KINESIS_ENDPOINT");
    let aws = examples::clients::Aws::load(kinesis_endpoint.as_deref(), None)
        .await
        .expect("an AWS configuration (region or endpoint)");
    // The Rust SDK does not read AWS_CA_BUNDLE itself; the tests do, for `serve --tls`.
    let http = external("AWS_CA_BUNDLE").map(|path| {
        let pem = std::fs::read(&path).expect("AWS_CA_BUNDLE is readable");
        core_engine::tls::sdk_http_client(pem).expect("AWS_CA_BUNDLE holds certificates")
    });
    let mut kinesis = aws.kinesis.config().to_builder();
    let mut ddb = aws.dynamodb.config().to_builder();
    if let Some(endpoint) = external("DYNAMODB_ENDPOINT") {
        ddb.set_endpoint_url(Some(endpoint));
    }
    if let Some(http) = http {
        kinesis.set_http_client(Some(http.clone()));
        ddb.set_http_client(Some(http));
    }
    (
        aws_sdk_kinesis::Client::from_conf(kinesis.build()),
        aws_sdk_dynamodb::Client::from_conf(ddb.build()),
    )
}

fn credentials() -> (String, String, Option<String>) {
    match (
        external("AWS_ACCESS_KEY_ID"),
        external("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => (id, secret, external("AWS_SESSION_TOKEN")),
        _ => ("local".into(), "local".into(), None),
    }
}

fn region() -> String {
    external("AWS_REGION").unwrap_or_else(|| "us-east-1".into())
}

/// A Kinesis client for `endpoint`.
pub fn kinesis_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    kinesis_client_with(endpoint, None)
}

/// A Kinesis client for `endpoint` using `http` (such as [`core_engine::tls::sdk_http_client`]),
/// or the SDK's default HTTP client.
pub fn kinesis_client_with(
    endpoint: &str,
    http: Option<SharedHttpClient>,
) -> aws_sdk_kinesis::Client {
    let (id, secret, token) = credentials();
    let mut config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(id, secret, token, None, "e2e"));
    config.set_http_client(http);
    aws_sdk_kinesis::Client::from_conf(config.build())
}

/// A DynamoDB client for `endpoint`.
pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    dynamodb_client_with(endpoint, None)
}

/// A DynamoDB client for `endpoint` using `http`, or the SDK's default HTTP client.
pub fn dynamodb_client_with(
    endpoint: &str,
    http: Option<SharedHttpClient>,
) -> aws_sdk_dynamodb::Client {
    let (id, secret, token) = credentials();
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(region()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            id, secret, token, None, "e2e",
        ));
    config.set_http_client(http);
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

//! SDK clients, from the AWS configuration or for a local engine, and the stream set-up every
//! example does.
//!
//! [`Aws::load`] takes the configuration the standard way (`aws-config`: the environment,
//! profiles, `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_KINESIS` /
//! `AWS_ENDPOINT_URL_DYNAMODB`), with `--endpoint` overriding both services' endpoints, so the
//! binaries run unchanged against AWS. With nothing configured at all they use the local
//! engine they expect: the fleet's at [`LOCAL_ENDPOINT`], or one they start in their own process
//! (the quickstart and the scenarios, [`Aws::configured`] then [`Aws::embedded`]).

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_dynamodb::config::{
    BehaviorVersion as DdbBehavior, Credentials as DdbCredentials, Region as DdbRegion,
};
use aws_sdk_kinesis::client::Waiters;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_types::SdkConfig;
use aws_types::service_config::ServiceConfigKey;

/// Where the fleet binaries look for an engine when neither `--endpoint` nor the AWS
/// configuration names one: `core-engine serve`'s address in the README.
pub const LOCAL_ENDPOINT: &str = "http://127.0.0.1:4567";

/// The region used when none is configured (an engine accepts any).
const DEFAULT_REGION: &str = "us-east-1";

/// Where [`Aws::load`]'s clients point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `--endpoint`: both services at this URL.
    Endpoint(String),
    /// Endpoints from the AWS configuration (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_KINESIS`,
    /// `AWS_ENDPOINT_URL_DYNAMODB`, a profile's `endpoint_url`); `None`: that service's AWS
    /// endpoint in the region.
    Configured {
        /// Kinesis' endpoint.
        kinesis: Option<String>,
        /// DynamoDB's endpoint.
        dynamodb: Option<String>,
        /// The region.
        region: String,
    },
    /// AWS itself, in the configured region.
    Aws {
        /// The region.
        region: String,
    },
    /// Nothing configured: the local engine at this URL.
    Local(String),
    /// An engine this process started, at this URL (when nothing is configured, or asked to
    /// ignore the configuration).
    Embedded(String),
}

impl Target {
    /// Whether the clients go to AWS's own endpoints for both services.
    pub fn is_aws(&self) -> bool {
        matches!(self, Target::Aws { .. })
    }

    /// Whether the clients go to an engine this process started.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Target::Embedded(_))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_aws = |e: &Option<String>| e.clone().unwrap_or_else(|| "AWS".into());
        match self {
            Target::Endpoint(url) => write!(f, "{url} (--endpoint)"),
            Target::Configured {
                kinesis,
                dynamodb,
                region,
            } => write!(
                f,
                "Kinesis at {}, DynamoDB at {} (AWS configuration, region {region})",
                or_aws(kinesis),
                or_aws(dynamodb)
            ),
            Target::Aws { region } => write!(f, "AWS, region {region}"),
            Target::Local(url) => write!(f, "{url} (nothing configured: the local engine)"),
            Target::Embedded(url) => {
                write!(f, "{url} (an engine in this process)")
            }
        }
    }
}

/// Kinesis and DynamoDB clients from the AWS configuration, and where they point.
#[derive(Debug, Clone)]
pub struct Aws {
    /// Kinesis client.
    pub kinesis: aws_sdk_kinesis::Client,
    /// DynamoDB client (lease tables).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Where they point.
    pub target: Target,
    /// The configuration the clients were built from, and `--endpoint` or the local engine's
    /// URL when that overrides it: other services' clients are built the same way.
    #[cfg(feature = "cloudwatch")]
    sdk: SdkConfig,
    #[cfg(feature = "cloudwatch")]
    endpoint: Option<String>,
}

impl Aws {
    /// Clients from the AWS configuration the standard way, with `endpoint` (`--endpoint`)
    /// overriding both services' endpoints. When nothing is configured (no endpoint anywhere
    /// and no region), they point at `local` if given, else the configuration is an error.
    ///
    /// Against an endpoint that is not AWS's (an engine), credentials come from the
    /// environment or the profile if there are any and are dummies otherwise (an engine does
    /// not check them); against AWS, from the SDK's default chain. The region comes from the
    /// environment or the profile (not from instance metadata: set `AWS_REGION` on EC2).
    pub async fn load(endpoint: Option<&str>, local: Option<&str>) -> Result<Self> {
        if let Some(aws) = Self::resolve(endpoint, true).await {
            return Ok(aws);
        }
        match local {
            Some(url) => Ok(Self::build(Target::Local(url.to_owned()), DEFAULT_REGION, None).await),
            None => anyhow::bail!(
                "no AWS region or endpoint is configured: set AWS_REGION (or a profile), AWS_ENDPOINT_URL, or pass --endpoint"
            ),
        }
    }

    /// [`Aws::load`] without a fallback, for binaries that start an engine of their own
    /// ([`Aws::embedded`]) when this is `None`: nothing configured, or only a region while
    /// `aws_itself` is false. A region alone goes to AWS only when `aws_itself` (`--aws`)
    /// asks for it, so a default region in `~/.aws/config` does not make a demo create
    /// billed resources.
    ///
    /// # Errors
    /// `aws_itself` with no region configured.
    pub async fn configured(endpoint: Option<&str>, aws_itself: bool) -> Result<Option<Self>> {
        let resolved = Self::resolve(endpoint, aws_itself).await;
        if aws_itself && resolved.is_none() {
            anyhow::bail!("--aws needs a region: set AWS_REGION or a profile's region");
        }
        Ok(resolved)
    }

    /// Clients for `--endpoint` or the configured endpoints, or for AWS itself when only a
    /// region is configured and `region_means_aws`; `None` otherwise.
    async fn resolve(endpoint: Option<&str>, region_means_aws: bool) -> Option<Self> {
        let region = RegionProviderChain::first_try(
            aws_config::environment::EnvironmentVariableRegionProvider::new(),
        )
        .or_else(aws_config::profile::ProfileFileRegionProvider::new())
        .region()
        .await;
        let region_name = region
            .as_ref()
            .map_or_else(|| DEFAULT_REGION.to_owned(), ToString::to_string);
        let base = loader(&region_name).load().await;
        let target = match endpoint {
            Some(url) => Target::Endpoint(url.to_owned()),
            None => {
                let kinesis = configured_endpoint(&base, "Kinesis");
                let dynamodb = configured_endpoint(&base, "DynamoDB");
                match (kinesis, dynamodb, region) {
                    (None, None, Some(region)) if region_means_aws => Target::Aws {
                        region: region.to_string(),
                    },
                    (None, None, _) => return None,
                    (kinesis, dynamodb, _) => Target::Configured {
                        kinesis,
                        dynamodb,
                        region: region_name.clone(),
                    },
                }
            }
        };
        Some(Self::build(target, &region_name, Some(base)).await)
    }

    /// Clients for an engine this process started at `url` ([`Target::Embedded`]).
    pub async fn embedded(url: &str) -> Self {
        Self::build(Target::Embedded(url.to_owned()), DEFAULT_REGION, None).await
    }

    /// The clients for `target`; `base` is the loaded configuration, used as is against AWS.
    async fn build(target: Target, region_name: &str, base: Option<SdkConfig>) -> Self {
        let sdk = match base {
            Some(base) if target.is_aws() => base,
            _ => {
                let credentials = CredentialsProviderChain::first_try(
                    "Environment",
                    aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
                )
                .or_else(
                    "Profile",
                    aws_config::profile::ProfileFileCredentialsProvider::builder().build(),
                )
                .or_else(
                    "Local",
                    Credentials::new("local", "local", None, None, "examples"),
                );
                loader(region_name)
                    .credentials_provider(credentials)
                    .load()
                    .await
            }
        };
        let url = match &target {
            Target::Endpoint(url) | Target::Local(url) | Target::Embedded(url) => Some(url.clone()),
            _ => None,
        };
        let mut kinesis = aws_sdk_kinesis::config::Builder::from(&sdk);
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(url) = &url {
            kinesis = kinesis.endpoint_url(url);
            dynamodb = dynamodb.endpoint_url(url);
        }
        Self {
            kinesis: aws_sdk_kinesis::Client::from_conf(kinesis.build()),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            target,
            #[cfg(feature = "cloudwatch")]
            sdk,
            #[cfg(feature = "cloudwatch")]
            endpoint: url,
        }
    }

    /// A CloudWatch client from the same configuration: `--endpoint` or the local engine when
    /// they are used (an engine answers PutMetricData), else CloudWatch's endpoint from the
    /// AWS configuration (`AWS_ENDPOINT_URL_CLOUDWATCH`, `AWS_ENDPOINT_URL`, a profile's
    /// `endpoint_url`) or AWS's own.
    #[cfg(feature = "cloudwatch")]
    pub fn cloudwatch(&self) -> shardline_cloudwatch::aws_sdk_cloudwatch::Client {
        use shardline_cloudwatch::aws_sdk_cloudwatch as cloudwatch;
        let mut config = cloudwatch::config::Builder::from(&self.sdk);
        if let Some(url) = &self.endpoint {
            config = config.endpoint_url(url);
        }
        cloudwatch::Client::from_conf(config.build())
    }
}

fn loader(region: &str) -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
}

/// The endpoint the AWS configuration gives `service_id` (as the SDK reads it: the service's
/// own variable or profile setting, else the global one), if any.
fn configured_endpoint(sdk: &SdkConfig, service_id: &str) -> Option<String> {
    let key = ServiceConfigKey::builder()
        .service_id(service_id)
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|config| config.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_owned))
        .filter(|url| !url.is_empty())
}

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

/// A CloudWatch client for `endpoint` (an engine answers PutMetricData), with dummy
/// credentials.
#[cfg(feature = "cloudwatch")]
pub fn cloudwatch(endpoint: &str) -> shardline_cloudwatch::aws_sdk_cloudwatch::Client {
    use shardline_cloudwatch::aws_sdk_cloudwatch as cloudwatch;
    cloudwatch::Client::from_conf(
        cloudwatch::Config::builder()
            .behavior_version(cloudwatch::config::BehaviorVersion::latest())
            .region(cloudwatch::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(cloudwatch::config::Credentials::new(
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

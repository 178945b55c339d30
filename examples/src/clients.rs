//! SDK clients for a local engine.

use aws_sdk_dynamodb::config::{
    BehaviorVersion as DdbBehavior, Credentials as DdbCredentials, Region as DdbRegion,
};
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

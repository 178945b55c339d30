//! PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy on streams and consumers.

use crate::common::{TestEngine, code_of, name};
use crate::monitoring::stream_arn;

/// A policy as a user would write it, with formatting that must come back unchanged.
const POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "read",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
      "Action": ["kinesis:GetRecords", "kinesis:GetShardIterator"],
      "Resource": "*"
    }
  ]
}"#;

async fn policy_of(engine: &TestEngine, arn: &str) -> String {
    engine
        .client
        .get_resource_policy()
        .resource_arn(arn)
        .send()
        .await
        .unwrap()
        .policy
}

async fn put(engine: &TestEngine, arn: &str, policy: &str) {
    engine
        .client
        .put_resource_policy()
        .resource_arn(arn)
        .policy(policy)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stream_policy_is_kept_as_given_replaced_and_deleted() {
    let engine = TestEngine::start().await;
    let stream = name("policy");
    engine.create_stream(&stream, 1).await;
    let arn = stream_arn(&stream);
    // No policy yet: an empty document.
    assert_eq!(policy_of(&engine, &arn).await, "{}");

    put(&engine, &arn, POLICY).await;
    assert_eq!(policy_of(&engine, &arn).await, POLICY);

    let replacement = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"kinesis:*","Resource":"*"}}"#;
    put(&engine, &arn, replacement).await;
    assert_eq!(policy_of(&engine, &arn).await, replacement);

    engine
        .client
        .delete_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(policy_of(&engine, &arn).await, "{}");
    // Deleting again succeeds: there is nothing left to delete.
    engine
        .client
        .delete_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_consumer_has_its_own_policy_which_goes_with_it() {
    let engine = TestEngine::start().await;
    let stream = name("policy-consumer");
    engine.create_stream(&stream, 1).await;
    let arn = stream_arn(&stream);
    let consumer_arn = engine
        .client
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("reader")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    put(&engine, &consumer_arn, POLICY).await;
    assert_eq!(policy_of(&engine, &consumer_arn).await, POLICY);
    assert_eq!(
        policy_of(&engine, &arn).await,
        "{}",
        "the stream's is apart"
    );

    engine
        .client
        .deregister_stream_consumer()
        .consumer_arn(&consumer_arn)
        .send()
        .await
        .unwrap();
    let (code, _) = code_of(
        engine
            .client
            .get_resource_policy()
            .resource_arn(&consumer_arn)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    // A consumer registered again under the same name starts without a policy.
    let again = engine
        .client
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("reader")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    assert_eq!(policy_of(&engine, &again).await, "{}");
}

#[tokio::test]
async fn deleting_a_stream_deletes_its_policy() {
    let engine = TestEngine::start().await;
    let stream = name("policy-deleted");
    engine.create_stream(&stream, 1).await;
    let arn = stream_arn(&stream);
    put(&engine, &arn, POLICY).await;
    engine
        .client
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    let (code, _) = code_of(
        engine
            .client
            .get_resource_policy()
            .resource_arn(&arn)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    engine.create_stream(&stream, 1).await;
    assert_eq!(policy_of(&engine, &arn).await, "{}");
}

#[tokio::test]
async fn policy_requests_are_validated() {
    let engine = TestEngine::start().await;
    let stream = name("policy-errors");
    engine.create_stream(&stream, 1).await;
    let arn = stream_arn(&stream);

    for bad in [
        "not json",
        "[1, 2]",
        r#"{"Version":"2012-10-17"}"#,
        r#"{"Version":"2012-10-17","Statement":[]}"#,
    ] {
        let (code, message) = code_of(
            engine
                .client
                .put_resource_policy()
                .resource_arn(&arn)
                .policy(bad)
                .send()
                .await,
        );
        assert_eq!(code, "InvalidArgumentException", "{bad}: {message}");
    }
    assert_eq!(policy_of(&engine, &arn).await, "{}", "nothing was stored");

    // A malformed ARN is a ValidationException; ARNs of unknown resources are not found.
    let (code, message) = code_of(
        engine
            .client
            .put_resource_policy()
            .resource_arn("my-stream")
            .policy(POLICY)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(message.contains("'resourceARN'"), "{message}");
    for unknown in [
        stream_arn("no-such-stream"),
        "arn:aws:kinesis:eu-west-1:000000000000:stream/elsewhere".to_owned(),
        "arn:aws:kinesis:us-east-1:000000000000:queue/some-queue".to_owned(),
        format!("{arn}/consumer/nobody:1700000000"),
    ] {
        let (code, _) = code_of(
            engine
                .client
                .put_resource_policy()
                .resource_arn(&unknown)
                .policy(POLICY)
                .send()
                .await,
        );
        assert_eq!(code, "ResourceNotFoundException", "{unknown}");
        let (code, _) = code_of(
            engine
                .client
                .delete_resource_policy()
                .resource_arn(&unknown)
                .send()
                .await,
        );
        assert_eq!(code, "ResourceNotFoundException", "{unknown}");
    }
}

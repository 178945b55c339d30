//! TagResource, UntagResource and ListTagsForResource on streams and consumers.

use std::collections::BTreeMap;

use crate::common::{TestEngine, code_of, name};
use crate::monitoring::stream_arn;

async fn tags_of(engine: &TestEngine, arn: &str) -> BTreeMap<String, String> {
    engine
        .client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.value.unwrap_or_default()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn stream_tags_by_arn_are_the_tags_of_the_stream() {
    let engine = TestEngine::start().await;
    let stream = name("tagged");
    engine.create_stream(&stream, 1).await;
    let arn = stream_arn(&stream);
    engine
        .client
        .add_tags_to_stream()
        .stream_name(&stream)
        .tags("team", "data")
        .send()
        .await
        .unwrap();
    engine
        .client
        .tag_resource()
        .resource_arn(&arn)
        .tags("env", "prod")
        .tags("team", "core")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&engine, &arn).await,
        map(&[("env", "prod"), ("team", "core")])
    );
    // ListTagsForStream sees the same tags.
    let listed = engine
        .client
        .list_tags_for_stream()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    let listed: BTreeMap<_, _> = listed
        .tags
        .into_iter()
        .map(|t| (t.key, t.value.unwrap_or_default()))
        .collect();
    assert_eq!(listed, map(&[("env", "prod"), ("team", "core")]));

    engine
        .client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .tag_keys("absent")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&engine, &arn).await, map(&[("env", "prod")]));
}

#[tokio::test]
async fn consumers_have_their_own_tags() {
    let engine = TestEngine::start().await;
    let stream = name("tagged-consumer");
    engine.create_stream(&stream, 1).await;
    let arn = stream_arn(&stream);
    let consumer_arn = engine
        .client
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("reader")
        .tags("owner", "analytics")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    assert_eq!(
        tags_of(&engine, &consumer_arn).await,
        map(&[("owner", "analytics")])
    );
    engine
        .client
        .tag_resource()
        .resource_arn(&consumer_arn)
        .tags("tier", "gold")
        .send()
        .await
        .unwrap();
    engine
        .client
        .untag_resource()
        .resource_arn(&consumer_arn)
        .tag_keys("owner")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&engine, &consumer_arn).await,
        map(&[("tier", "gold")])
    );
    assert!(
        tags_of(&engine, &arn).await.is_empty(),
        "the stream's are apart"
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
            .list_tags_for_resource()
            .resource_arn(&consumer_arn)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn tagging_follows_aws_limits() {
    let engine = TestEngine::start().await;
    let stream = name("tag-limits");
    engine.create_stream(&stream, 1).await;
    let arn = stream_arn(&stream);

    // 50 tags at most per resource, counting those it has.
    let mut fifty = engine.client.tag_resource().resource_arn(&arn);
    for i in 0..50 {
        fifty = fifty.tags(format!("k{i:02}"), "v");
    }
    fifty.send().await.unwrap();
    let (code, _) = code_of(
        engine
            .client
            .tag_resource()
            .resource_arn(&arn)
            .tags("one-more", "v")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    // Overwriting an existing key does not add one.
    engine
        .client
        .tag_resource()
        .resource_arn(&arn)
        .tags("k00", "changed")
        .send()
        .await
        .unwrap();
    let tags = tags_of(&engine, &arn).await;
    assert_eq!(tags.len(), 50);
    assert_eq!(tags["k00"], "changed");

    // Key and value lengths.
    let (code, message) = code_of(
        engine
            .client
            .tag_resource()
            .resource_arn(&arn)
            .tags("k".repeat(129), "v")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException", "{message}");
    let (code, _) = code_of(
        engine
            .client
            .tag_resource()
            .resource_arn(&arn)
            .tags("k00", "v".repeat(257))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    // The aws: prefix is AWS's own, and tags have a restricted alphabet.
    for (key, value) in [
        ("aws:created-by", "me"),
        ("AWS:x", "y"),
        ("k00", "a*b"),
        ("a#b", "v"),
    ] {
        let (code, message) = code_of(
            engine
                .client
                .tag_resource()
                .resource_arn(&arn)
                .tags(key, value)
                .send()
                .await,
        );
        assert_eq!(code, "InvalidArgumentException", "{key}={value}: {message}");
    }
    let (code, _) = code_of(
        engine
            .client
            .add_tags_to_stream()
            .stream_name(&stream)
            .tags("aws:cloudformation:stack-name", "s")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidArgumentException");
    // Unicode letters, digits, spaces and _ . : / = + - @ are allowed.
    engine
        .client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("k01")
        .send()
        .await
        .unwrap();
    engine
        .client
        .tag_resource()
        .resource_arn(&arn)
        .tags("Équipe data/ops", "a.b:c=d+e-f@g_h")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&engine, &arn).await["Équipe data/ops"],
        "a.b:c=d+e-f@g_h"
    );

    // UntagResource: 1 to 50 keys.
    let mut too_many = engine.client.untag_resource().resource_arn(&arn);
    for i in 0..51 {
        too_many = too_many.tag_keys(format!("k{i}"));
    }
    let (code, _) = code_of(too_many.send().await);
    assert_eq!(code, "ValidationException");
    let (code, _) = code_of(
        engine
            .client
            .untag_resource()
            .resource_arn(&arn)
            .set_tag_keys(Some(Vec::new()))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");

    // Unknown resources.
    let (code, _) = code_of(
        engine
            .client
            .list_tags_for_resource()
            .resource_arn(stream_arn("no-such-stream"))
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = code_of(
        engine
            .client
            .tag_resource()
            .resource_arn("arn:aws:kinesis:us-east-1:000000000000:stream")
            .tags("a", "b")
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
}

#[tokio::test]
async fn faults_for_a_stream_hit_calls_naming_it_by_resource_arn() {
    use core_engine::{Engine, Fault, FaultRule};
    let stream = name("tag-faults");
    let rule = FaultRule::new("TagResource", Fault::InternalFailure).on_stream(&stream);
    let engine = TestEngine::with(Engine::builder().fault(rule)).await;
    engine.create_stream(&stream, 1).await;
    let other = name("tag-no-faults");
    engine.create_stream(&other, 1).await;
    let (code, _) = code_of(
        engine
            .client
            .tag_resource()
            .resource_arn(stream_arn(&stream))
            .tags("a", "b")
            .send()
            .await,
    );
    assert_eq!(code, "InternalFailure");
    engine
        .client
        .tag_resource()
        .resource_arn(stream_arn(&other))
        .tags("a", "b")
        .send()
        .await
        .unwrap();
}

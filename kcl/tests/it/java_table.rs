//! A lease table written exactly as the Java KCL 2.x writes it, picked up by `kcl`.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};

use crate::common::{Env, Log, Worker, eventually, fast_config};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picks_up_from_java_kcl_checkpoints() {
    let env = Env::start().await;
    env.create_stream("java", 2).await;
    let shards = env.open_shards("java").await;
    // Five records per shard; the Java fleet checkpointed shard 0 after its third record.
    let mut seqs = std::collections::HashMap::<String, Vec<String>>::new();
    for (shard, hash) in &shards {
        for i in 0..5 {
            let out = env
                .kinesis
                .put_record()
                .stream_name("java")
                .partition_key("pk")
                .explicit_hash_key(hash.to_string())
                .data(aws_sdk_kinesis::primitives::Blob::new(format!(
                    "{shard}-{i}"
                )))
                .send()
                .await
                .unwrap();
            seqs.entry(shard.clone())
                .or_default()
                .push(out.sequence_number);
        }
    }
    env.ddb
        .create_table()
        .table_name("java-app")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("leaseKey")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("leaseKey")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (s0, s1) = (&shards[0].0, &shards[1].0);
    // The items of DynamoDBLeaseSerializer#toDynamoRecord: a checkpointed lease held by a Java
    // worker that has since stopped, and an untouched TRIM_HORIZON lease.
    let checkpointed = [
        ("leaseKey", s(s0)),
        ("leaseOwner", s("java-worker-7f3a")),
        ("leaseCounter", n("1432")),
        ("ownerSwitchesSinceCheckpoint", n("0")),
        ("checkpoint", s(&seqs[s0][2])),
        ("checkpointSubSequenceNumber", n("0")),
        ("startingHashKey", s(&shards[0].1.to_string())),
        ("endingHashKey", s(&(shards[1].1 - 1).to_string())),
    ];
    let fresh = [
        ("leaseKey", s(s1)),
        ("leaseCounter", n("0")),
        ("ownerSwitchesSinceCheckpoint", n("0")),
        ("checkpoint", s("TRIM_HORIZON")),
        ("checkpointSubSequenceNumber", n("0")),
        ("startingHashKey", s(&shards[1].1.to_string())),
        ("endingHashKey", s(&u128::MAX.to_string())),
    ];
    for item in [&checkpointed[..], &fresh[..]] {
        env.ddb
            .put_item()
            .table_name("java-app")
            .set_item(Some(
                item.iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ))
            .send()
            .await
            .unwrap();
    }
    let log = Arc::new(Log::default());
    let w = Worker::start(&env, "java-app", "java", "rust-worker", &log, fast_config());
    let expected: Vec<String> = (3..5)
        .map(|i| format!("{s0}-{i}"))
        .chain((0..5).map(|i| format!("{s1}-{i}")))
        .collect();
    eventually(
        Duration::from_secs(20),
        "records after the Java checkpoints",
        async || log.has_all(&expected),
    )
    .await;
    let mut data = log.data();
    data.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(
        data, want,
        "nothing before the Java checkpoint is reprocessed"
    );
    w.stop().await;
    // The items stay readable by Java: same attribute names and types.
    let item = env
        .ddb
        .get_item()
        .table_name("java-app")
        .key("leaseKey", s(s0))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["checkpoint"], s(&seqs[s0][4]));
    assert_eq!(item["checkpointSubSequenceNumber"], n("0"));
    assert!(matches!(item["leaseCounter"], AttributeValue::N(_)));
    assert_eq!(item["ownerSwitchesSinceCheckpoint"], n("0"));
}

//! Access rules: a producer key cannot read, a consumer key cannot write.

use super::*;

const PRODUCER: (&str, &str) = ("AKIDPRODUCER", "producer-secret");
const CONSUMER: (&str, &str) = ("AKIDCONSUMER", "consumer-secret");

/// A producer that may write to and describe `orders*` streams, a consumer that may read
/// anything and use lease tables, and an admin.
fn roles() -> Credentials {
    let orders = "arn:aws:kinesis:*:*:stream/orders*";
    Credentials::single(ADMIN.0, ADMIN.1)
        .key(
            AccessKey::new(PRODUCER.0, PRODUCER.1)
                .user("producer")
                .rule(Rule::allow(
                    [
                        "kinesis:PutRecord",
                        "kinesis:PutRecords",
                        "kinesis:Describe*",
                        "kinesis:ListShards",
                    ],
                    [orders],
                )),
        )
        .key(
            AccessKey::new(CONSUMER.0, CONSUMER.1)
                .user("consumer")
                .rule(Rule::allow(["kinesis:*"], ["*"]))
                .rule(Rule::allow(
                    ["dynamodb:*"],
                    ["arn:aws:dynamodb:*:*:table/leases*"],
                ))
                .rule(Rule::deny(["kinesis:PutRecord*"], ["*"])),
        )
}

#[tokio::test]
async fn access_rules_keep_producers_from_reading_and_consumers_from_writing() {
    let engine = start(Engine::builder().credentials(roles())).await;
    let admin = kinesis(&engine, ADMIN, None);
    for stream in ["orders", "audit"] {
        admin
            .create_stream()
            .stream_name(stream)
            .shard_count(1)
            .send()
            .await
            .unwrap();
    }
    let producer = kinesis(&engine, PRODUCER, None);
    let consumer = kinesis(&engine, CONSUMER, None);
    let put = producer
        .put_record()
        .stream_name("orders")
        .partition_key("k")
        .data(Blob::new("order-1"))
        .send()
        .await
        .unwrap();
    let description: StreamDescription = producer
        .describe_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    let stream_arn = description.stream_arn;

    // The producer cannot read.
    let (code, message) = code_of(
        producer
            .get_shard_iterator()
            .stream_name("orders")
            .shard_id(&put.shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        format!(
            "User: arn:aws:iam::000000000000:user/producer is not authorized to perform: \
             kinesis:GetShardIterator on resource: {stream_arn} because no identity-based policy \
             allows the kinesis:GetShardIterator action"
        )
    );
    // Nor write to a stream outside its pattern.
    let (code, message) = code_of(
        producer
            .put_record()
            .stream_name("audit")
            .partition_key("k")
            .data(Blob::new("x"))
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains("on resource: arn:aws:kinesis:us-east-1:000000000000:stream/audit"),
        "{message}"
    );

    // The consumer reads what the producer wrote...
    let iterator = consumer
        .get_shard_iterator()
        .stream_name("orders")
        .shard_id(&put.shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let records = consumer
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap()
        .records;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data.as_ref(), b"order-1");
    // ...and the producer may not, even with an iterator in hand (the stream comes from it).
    let (code, message) = code_of(
        producer
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains(&format!("kinesis:GetRecords on resource: {stream_arn}")),
        "{message}"
    );

    // The consumer cannot write: an explicit deny.
    let put_one = code_of(
        consumer
            .put_record()
            .stream_name("orders")
            .partition_key("k")
            .data(Blob::new("x"))
            .send()
            .await,
    );
    let put_many = code_of(
        consumer
            .put_records()
            .stream_name("orders")
            .records(
                aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                    .partition_key("k")
                    .data(Blob::new("x"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    for (code, message) in [put_one, put_many] {
        assert_eq!(code, "AccessDeniedException");
        assert!(
            message.ends_with("with an explicit deny in an identity-based policy"),
            "{message}"
        );
    }

    // Enhanced fan-out: the consumer subscribes, the producer may not.
    let consumer_arn = admin
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("app")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    let (code, message) = code_of(
        producer
            .subscribe_to_shard()
            .consumer_arn(&consumer_arn)
            .shard_id(&put.shard_id)
            .starting_position(
                aws_sdk_kinesis::types::StartingPosition::builder()
                    .r#type(ShardIteratorType::TrimHorizon)
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains(&format!(
            "kinesis:SubscribeToShard on resource: {consumer_arn}"
        )),
        "{message}"
    );

    // DynamoDB: the consumer may use its lease tables and nothing else.
    let tables = dynamodb(&engine, CONSUMER);
    let create = |name: &str| {
        tables
            .create_table()
            .table_name(name)
            .attribute_definitions(
                aws_sdk_dynamodb::types::AttributeDefinition::builder()
                    .attribute_name("leaseKey")
                    .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                aws_sdk_dynamodb::types::KeySchemaElement::builder()
                    .attribute_name("leaseKey")
                    .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .send()
    };
    create("leases-app").await.unwrap();
    let (code, message) = code_of(create("billing").await);
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        "User: arn:aws:iam::000000000000:user/consumer is not authorized to perform: \
         dynamodb:CreateTable on resource: arn:aws:dynamodb:us-east-1:000000000000:table/billing \
         because no identity-based policy allows the dynamodb:CreateTable action"
    );
    let (code, _) = code_of(dynamodb(&engine, PRODUCER).list_tables().send().await);
    assert_eq!(code, "AccessDeniedException");
}

/// The hot CBOR operations (decoded without the JSON translation) are checked against the
/// access rules like every other request.
#[tokio::test]
async fn access_rules_hold_for_cbor_puts() {
    let engine = start(Engine::builder().credentials(roles())).await;
    let admin = kinesis(&engine, ADMIN, None);
    for stream in ["orders", "audit"] {
        admin
            .create_stream()
            .stream_name(stream)
            .shard_count(1)
            .send()
            .await
            .unwrap();
    }
    let put_records = |stream: &str| {
        let mut body = vec![0xa2, 0x6a];
        body.extend_from_slice(b"StreamName");
        body.push(0x60 | stream.len() as u8);
        body.extend_from_slice(stream.as_bytes());
        body.push(0x67);
        body.extend_from_slice(b"Records");
        body.extend_from_slice(&[0x81, 0xa2, 0x64]);
        body.extend_from_slice(b"Data");
        body.extend_from_slice(&[0x42, 0x00, 0xff, 0x6c]);
        body.extend_from_slice(b"PartitionKey");
        body.extend_from_slice(&[0x61, b'k']);
        body
    };
    let cbor = [
        ("content-type", "application/x-amz-cbor-1.1"),
        ("x-amz-target", "Kinesis_20131202.PutRecords"),
    ];
    let answer = |key, stream: &'static str| {
        let engine = &engine;
        let body = put_records(stream);
        async move { send(engine, "/", &cbor, &body, Some(Signer::new(key, "kinesis"))).await }
    };
    let allowed = answer(PRODUCER, "orders").await;
    assert_eq!(allowed.status, 200, "{}", allowed.head);
    assert_eq!(
        allowed.header("content-type"),
        Some("application/x-amz-cbor-1.1")
    );
    for (key, stream) in [(PRODUCER, "audit"), (CONSUMER, "orders")] {
        let denied = answer(key, stream).await;
        assert_eq!(denied.status, 400, "{stream}");
        assert_eq!(
            denied.header("x-amzn-ErrorType"),
            Some("AccessDeniedException"),
            "{stream}"
        );
    }
    // Only the allowed put wrote a record.
    for (stream, expected) in [("orders", 1), ("audit", 0)] {
        let iterator = admin
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id("shardId-000000000000")
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        let records = admin
            .get_records()
            .shard_iterator(iterator)
            .send()
            .await
            .unwrap()
            .records;
        assert_eq!(records.len(), expected, "{stream}");
    }
}

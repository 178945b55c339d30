//! The errors of the queue operations: the model's constraints, on-demand streams only,
//! unknown queues and receipt handles, and streams that still have queues.

use aws_sdk_kinesis::types::{StreamMode, StreamModeDetails};
use serde_json::{Value, json};

use super::{QueueApi, on_demand_stream};
use crate::common::{TestEngine, code_of};

const MISSING_QUEUE: &str = "arn:aws:kinesis:us-east-1:000000000000:queue/0123456789abcdef";

async fn expect(api: &QueueApi, operation: &str, body: Value, code: &str, says: &str) {
    let failure = api.call(operation, body.clone()).await.unwrap_err();
    assert_eq!(failure.status, 400, "{operation} {body}");
    assert_eq!(
        failure.code, code,
        "{operation} {body}: {}",
        failure.message
    );
    assert!(
        failure.message.contains(says),
        "{operation} {body}: {:?} does not say {says:?}",
        failure.message
    );
}

fn create(stream: &str, start: Value, attributes: Value) -> Value {
    json!({
        "QueueName": "q",
        "StreamConfigurationList": [{"StreamARN": stream, "StartingPosition": start}],
        "QueueAttributes": attributes,
    })
}

#[tokio::test]
async fn create_queue_checks_its_request_and_the_stream() {
    let engine = TestEngine::start().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "checked").await;
    engine.create_stream("provisioned", 1).await;
    let provisioned = stream.replace("checked", "provisioned");
    let latest = json!({"Type": "LATEST"});
    let v = "ValidationException";
    expect(
        &api,
        "CreateQueue",
        json!({"StreamConfigurationList": [{"StreamARN": stream}]}),
        v,
        "Value null at 'queueName' failed to satisfy constraint: Member must not be null",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        json!({"QueueName": "bad name", "StreamConfigurationList": [{"StreamARN": stream}]}),
        v,
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        json!({"QueueName": "q"}),
        v,
        "streamConfigurationList",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        create(
            "arn:aws:kinesis:us-east-1:1:stream/x",
            latest.clone(),
            json!({}),
        ),
        v,
        "streamARN",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        create(&stream, json!({"Type": "SOMEWHERE"}), json!({})),
        v,
        "Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        create(
            &stream,
            json!({"Type": "LATEST", "Timestamp": 1.7e9}),
            json!({}),
        ),
        v,
        "timestamp",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        create(&stream, json!({"Type": "AT_TIMESTAMP"}), json!({})),
        v,
        "must not be null",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        create(
            &stream,
            latest.clone(),
            json!({"VisibilityTimeoutSeconds": 43_201}),
        ),
        v,
        "Member must have value less than or equal to 43200",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        create(
            &stream,
            latest.clone(),
            json!({"DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 0}}),
        ),
        v,
        "Member must have value greater than or equal to 1",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        create(
            &stream,
            latest.clone(),
            json!({"DeadLetterConfiguration": {"TargetType": "BUILT_IN"}}),
        ),
        "InvalidArgumentException",
        "MaxReceiveCount",
    )
    .await;
    let two = json!({"QueueName": "q", "StreamConfigurationList": [{"StreamARN": stream}, {"StreamARN": stream}]});
    expect(
        &api,
        "CreateQueue",
        two,
        "InvalidArgumentException",
        "exactly one",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        create(&provisioned, latest.clone(), json!({})),
        "InvalidArgumentException",
        "on-demand",
    )
    .await;
    expect(
        &api,
        "CreateQueue",
        create(
            &stream.replace("checked", "missing"),
            latest.clone(),
            json!({}),
        ),
        "ResourceNotFoundException",
        "missing",
    )
    .await;
    api.create("q", &stream, "LATEST", json!({})).await;
    expect(
        &api,
        "CreateQueue",
        create(&stream, latest, json!({})),
        "ResourceInUseException",
        "q",
    )
    .await;
}

#[tokio::test]
async fn queue_operations_check_arns_limits_and_receipt_handles() {
    let engine = TestEngine::start().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "handles").await;
    let queue = api.create("q", &stream, "TRIM_HORIZON", json!({})).await;
    let other = api
        .create("other", &stream, "TRIM_HORIZON", json!({}))
        .await;
    let (v, ia, nf) = (
        "ValidationException",
        "InvalidArgumentException",
        "ResourceNotFoundException",
    );
    expect(
        &api,
        "DescribeQueue",
        json!({}),
        v,
        "Value null at 'queueARN'",
    )
    .await;
    expect(
        &api,
        "DescribeQueue",
        json!({"QueueARN": "queue/q"}),
        v,
        "Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:queue/\\S+",
    )
    .await;
    expect(
        &api,
        "DescribeQueue",
        json!({"QueueARN": MISSING_QUEUE}),
        nf,
        "not found",
    )
    .await;
    expect(
        &api,
        "DeleteQueue",
        json!({"QueueARN": MISSING_QUEUE}),
        nf,
        "not found",
    )
    .await;
    expect(
        &api,
        "UpdateQueue",
        json!({"QueueARN": queue}),
        v,
        "queueAttributes",
    )
    .await;
    expect(
        &api,
        "ListQueues",
        json!({"MaxResults": 0}),
        v,
        "maxResults",
    )
    .await;
    expect(
        &api,
        "ListQueues",
        json!({"NextToken": "garbage"}),
        ia,
        "NextToken",
    )
    .await;
    // The record operations list no ValidationException: their checks are InvalidArgument.
    expect(
        &api,
        "ReceiveQueueRecords",
        json!({"QueueARN": queue, "Limit": 11}),
        ia,
        "Member must have value less than or equal to 10",
    )
    .await;
    expect(
        &api,
        "ReceiveQueueRecords",
        json!({"QueueARN": queue, "WaitTimeSeconds": 21}),
        ia,
        "waitTimeSeconds",
    )
    .await;
    expect(
        &api,
        "ReceiveDeadLetterQueueRecords",
        json!({"QueueARN": "nope"}),
        ia,
        "queueARN",
    )
    .await;
    expect(
        &api,
        "ReceiveQueueRecords",
        json!({"QueueARN": MISSING_QUEUE}),
        nf,
        "not found",
    )
    .await;
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"ReceiptHandle": format!("h{i}")}))
        .collect();
    expect(
        &api,
        "AcknowledgeQueueRecords",
        json!({"QueueARN": queue, "Entries": eleven}),
        ia,
        "Member must have length less than or equal to 10",
    )
    .await;
    expect(
        &api,
        "AcknowledgeQueueRecords",
        json!({"QueueARN": queue, "Entries": []}),
        ia,
        "Member must have length greater than or equal to 1",
    )
    .await;
    expect(
        &api,
        "UpdateQueueRecordsVisibility",
        json!({"QueueARN": queue, "Entries": [{"ReceiptHandle": "h"}]}),
        ia,
        "visibilityTimeoutSeconds",
    )
    .await;
    expect(
        &api,
        "RestoreDeadLetterQueueRecords",
        json!({"QueueARN": MISSING_QUEUE, "Entries": [{"ReceiptHandle": "h"}]}),
        nf,
        "not found",
    )
    .await;

    // Receipt handles: unknown, from another queue, acknowledged already.
    engine.put("handles", "k", b"x").await;
    let got = api.receive(&queue, false, json!({})).await;
    let handle = got[0]["ReceiptHandle"].as_str().unwrap().to_owned();
    let from_other = api.receive(&other, false, json!({})).await;
    let other_handle = from_other[0]["ReceiptHandle"].as_str().unwrap();
    let (done, failed) = api
        .settle(
            "AcknowledgeQueueRecords",
            &queue,
            &["not-a-handle", other_handle, &handle],
            None,
        )
        .await;
    assert_eq!(done, std::slice::from_ref(&handle));
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["ReceiptHandle"], "not-a-handle");
    assert_eq!(failed[0]["ErrorCode"], ia);
    assert_eq!(failed[1]["ErrorCode"], ia);
    assert!(
        failed
            .iter()
            .all(|f| !f["ErrorMessage"].as_str().unwrap().is_empty())
    );
    let (done, failed) = api
        .settle("AcknowledgeQueueRecords", &queue, &[&handle], None)
        .await;
    assert!(done.is_empty());
    assert_eq!(failed[0]["ErrorCode"], nf, "acknowledged already");
    let (_, failed) = api
        .settle(
            "RestoreDeadLetterQueueRecords",
            &other,
            &[other_handle],
            None,
        )
        .await;
    assert_eq!(failed[0]["ErrorCode"], ia, "not a dead-letter handle");
}

#[tokio::test]
async fn a_stream_with_queues_is_neither_deleted_nor_made_provisioned() {
    let engine = TestEngine::start().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "busy").await;
    let queue = api.create("q", &stream, "LATEST", json!({})).await;
    let deleted = engine
        .client
        .delete_stream()
        .stream_name("busy")
        .send()
        .await;
    assert_eq!(code_of(deleted).0, "ResourceInUseException");
    let provisioned = engine
        .client
        .update_stream_mode()
        .stream_arn(&stream)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::Provisioned)
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_eq!(code_of(provisioned).0, "ResourceInUseException");
    api.ok("DeleteQueue", json!({"QueueARN": queue})).await;
    engine
        .client
        .delete_stream()
        .stream_name("busy")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn queues_and_consumers_share_the_stream_limit_of_twenty() {
    let engine = TestEngine::start().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "shared").await;
    for i in 0..15 {
        let consumer = engine.client.register_stream_consumer().stream_arn(&stream);
        consumer
            .consumer_name(format!("c{i}"))
            .send()
            .await
            .unwrap();
    }
    for i in 0..5 {
        api.create(&format!("q{i}"), &stream, "LATEST", json!({}))
            .await;
    }
    let body = json!({"QueueName": "q5", "StreamConfigurationList": [{"StreamARN": stream}]});
    expect(&api, "CreateQueue", body, "LimitExceededException", "20").await;
    let consumer = engine.client.register_stream_consumer().stream_arn(&stream);
    let refused = consumer.consumer_name("c15").send().await;
    assert_eq!(code_of(refused).0, "LimitExceededException");
}

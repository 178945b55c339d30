//! Access rules see a queue operation's queue (QueueARN) and, for CreateQueue, its stream.

use core_engine::Engine;
use core_engine::auth::{AccessKey, Credentials, Rule};
use serde_json::json;

use super::{QueueApi, on_demand_stream};
use crate::common::TestEngine;

#[tokio::test]
async fn access_rules_apply_to_queue_and_stream_arns() {
    let credentials = Credentials::single("AKIDTEST", "secret")
        .key(
            AccessKey::new("AKIDWORKER", "worker-secret")
                .user("worker")
                .rule(Rule::allow(
                    [
                        "kinesis:ReceiveQueueRecords",
                        "kinesis:AcknowledgeQueueRecords",
                    ],
                    ["arn:aws:kinesis:*:*:queue/*"],
                )),
        )
        .key(
            AccessKey::new("AKIDMAKER", "maker-secret")
                .user("maker")
                .rule(Rule::allow(
                    ["kinesis:CreateQueue"],
                    ["arn:aws:kinesis:*:*:stream/jobs"],
                )),
        );
    let engine = TestEngine::with(Engine::builder().credentials(credentials)).await;
    let stream = on_demand_stream(&engine.client, "jobs").await;
    let other = on_demand_stream(&engine.client, "other").await;
    let url = engine.handle.endpoint_url();
    let maker = QueueApi::new(&url).signed_by("AKIDMAKER", "maker-secret");
    let queue = maker
        .create("work", &stream, "TRIM_HORIZON", json!({}))
        .await;
    let denied = maker
        .call(
            "CreateQueue",
            json!({"QueueName": "elsewhere", "StreamConfigurationList": [{"StreamARN": other}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(denied.code, "AccessDeniedException");
    let worker = QueueApi::new(&url).signed_by("AKIDWORKER", "worker-secret");
    assert!(worker.receive(&queue, false, json!({})).await.is_empty());
    let denied = worker
        .call("DeleteQueue", json!({"QueueARN": queue}))
        .await
        .unwrap_err();
    assert_eq!(denied.code, "AccessDeniedException");
}

//! Dead-letter records: MaxReceiveCount, and the dead-letter receive, acknowledge, visibility
//! and restore operations.

use serde_json::json;

use super::{QueueApi, data, handle, on_demand_stream, sorted_data};
use crate::common::TestEngine;

const DLQ_2: &str = r#"{"VisibilityTimeoutSeconds": 10, "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 2}}"#;

#[tokio::test]
async fn a_record_received_max_receive_count_times_becomes_a_dead_letter_and_can_be_restored() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "dlq").await;
    let attributes = serde_json::from_str(DLQ_2).unwrap();
    let queue = api
        .create("workers", &stream, "TRIM_HORIZON", attributes)
        .await;
    engine.put("dlq", "k", b"poison").await;
    let mut last = None;
    for round in 1..=2 {
        let got = api.receive(&queue, false, json!({})).await;
        assert_eq!(got.len(), 1, "receive {round}");
        assert_eq!(got[0]["ReceiveCount"], round);
        last = Some(got[0].clone());
        clock.advance(10_000);
    }
    // Received twice without acknowledgement: a dead letter, off the normal path.
    assert!(api.receive(&queue, false, json!({})).await.is_empty());
    let normal_handle = last.unwrap();
    let (done, failed) = api
        .settle(
            "AcknowledgeQueueRecords",
            &queue,
            &[handle(&normal_handle)],
            None,
        )
        .await;
    assert!(done.is_empty());
    assert_eq!(failed[0]["ErrorCode"], "InvalidArgumentException");
    let dead = api.receive(&queue, true, json!({})).await;
    assert_eq!(sorted_data(&dead), ["poison"]);
    // A dead-letter handle is refused on the normal path.
    let (done, failed) = api
        .settle("AcknowledgeQueueRecords", &queue, &[handle(&dead[0])], None)
        .await;
    assert!(done.is_empty());
    assert_eq!(failed[0]["ErrorCode"], "InvalidArgumentException");
    let (done, failed) = api
        .settle(
            "RestoreDeadLetterQueueRecords",
            &queue,
            &[handle(&dead[0])],
            None,
        )
        .await;
    assert_eq!((done.len(), failed.len()), (1, 0));
    // Restored: back on the normal path with its receive count reset.
    assert!(api.receive(&queue, true, json!({})).await.is_empty());
    let back = api.receive(&queue, false, json!({})).await;
    assert_eq!(sorted_data(&back), ["poison"]);
    assert_eq!(back[0]["ReceiveCount"], 1);
    assert_eq!(back[0]["RecordId"], dead[0]["RecordId"]);
    let (done, _) = api
        .settle("AcknowledgeQueueRecords", &queue, &[handle(&back[0])], None)
        .await;
    assert_eq!(done.len(), 1);
    clock.advance(60_000);
    assert!(api.receive(&queue, false, json!({})).await.is_empty());
    assert!(api.receive(&queue, true, json!({})).await.is_empty());
}

#[tokio::test]
async fn dead_letters_are_acknowledged_and_their_visibility_changed() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "dlq-ack").await;
    let attributes = serde_json::from_str(DLQ_2).unwrap();
    let queue = api
        .create("workers", &stream, "TRIM_HORIZON", attributes)
        .await;
    engine.put("dlq-ack", "a", b"one").await;
    engine.put("dlq-ack", "b", b"two").await;
    for _ in 0..2 {
        assert_eq!(api.receive(&queue, false, json!({})).await.len(), 2);
        clock.advance(10_000);
    }
    let dead = api.receive(&queue, true, json!({})).await;
    assert_eq!(sorted_data(&dead), ["one", "two"]);
    // In flight on the dead-letter path too.
    assert!(api.receive(&queue, true, json!({})).await.is_empty());
    let one = dead.iter().find(|r| data(r) == "one").unwrap();
    let two = dead.iter().find(|r| data(r) == "two").unwrap();
    let (done, _) = api
        .settle(
            "UpdateDeadLetterQueueRecordsVisibility",
            &queue,
            &[handle(one)],
            Some(0),
        )
        .await;
    assert_eq!(done.len(), 1);
    let again = api.receive(&queue, true, json!({})).await;
    assert_eq!(sorted_data(&again), ["one"]);
    let (done, _) = api
        .settle(
            "AcknowledgeDeadLetterQueueRecords",
            &queue,
            &[handle(&again[0])],
            None,
        )
        .await;
    assert_eq!(done.len(), 1);
    // The other one comes back after its (queue default) visibility timeout; "one" never.
    clock.advance(10_000);
    let later = api.receive(&queue, true, json!({})).await;
    assert_eq!(sorted_data(&later), ["two"]);
    assert_ne!(handle(&later[0]), handle(two));
    assert!(api.receive(&queue, false, json!({})).await.is_empty());
}

#[tokio::test]
async fn with_dead_letter_handling_off_a_record_is_redelivered_until_acknowledged() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "no-dlq").await;
    let attributes = json!({
        "VisibilityTimeoutSeconds": 0,
        "DeadLetterConfiguration": {"TargetType": "NONE"}
    });
    let queue = api
        .create("workers", &stream, "TRIM_HORIZON", attributes)
        .await;
    engine.put("no-dlq", "k", b"again").await;
    for round in 1..=8 {
        let got = api.receive(&queue, false, json!({})).await;
        assert_eq!(got[0]["ReceiveCount"], round);
        clock.advance(1);
    }
    assert!(api.receive(&queue, true, json!({})).await.is_empty());
}

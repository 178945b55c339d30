//! Receiving, visibility and acknowledgement.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use super::{QueueApi, data, handle, on_demand_stream, sorted_data};
use crate::common::TestEngine;

#[tokio::test]
async fn a_record_not_acknowledged_comes_back_after_its_visibility_timeout() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "visible").await;
    let queue = api
        .create(
            "workers",
            &stream,
            "TRIM_HORIZON",
            json!({"VisibilityTimeoutSeconds": 30}),
        )
        .await;
    for i in 0..3 {
        engine
            .put("visible", &format!("k{i}"), format!("r{i}").as_bytes())
            .await;
    }
    let first = api.receive(&queue, false, json!({})).await;
    assert_eq!(sorted_data(&first), ["r0", "r1", "r2"]);
    for record in &first {
        assert_eq!(record["ReceiveCount"], 1);
        assert!(
            record["RecordId"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert!(record["PartitionKey"].as_str().unwrap().starts_with('k'));
        assert!(record["ApproximateArrivalTimestamp"].is_number());
        assert!(record["FirstReceiveTimestamp"].is_number());
    }
    // In flight: invisible, even just before the timeout.
    assert!(api.receive(&queue, false, json!({})).await.is_empty());
    clock.advance(29_999);
    assert!(api.receive(&queue, false, json!({})).await.is_empty());
    clock.advance(1);
    let again = api.receive(&queue, false, json!({})).await;
    assert_eq!(sorted_data(&again), ["r0", "r1", "r2"]);
    for record in &again {
        assert_eq!(record["ReceiveCount"], 2);
        let before = first
            .iter()
            .find(|r| r["RecordId"] == record["RecordId"])
            .unwrap();
        assert_eq!(
            record["FirstReceiveTimestamp"],
            before["FirstReceiveTimestamp"]
        );
        assert_ne!(
            handle(record),
            handle(before),
            "a new receipt handle per receive"
        );
    }
    // The first handles expired with the new receive.
    let old: Vec<&str> = first.iter().map(handle).collect();
    let (done, failed) = api
        .settle("AcknowledgeQueueRecords", &queue, &old, None)
        .await;
    assert!(done.is_empty());
    assert_eq!(failed.len(), 3);
    assert!(
        failed
            .iter()
            .all(|f| f["ErrorCode"] == "InvalidArgumentException")
    );
    let new: Vec<&str> = again.iter().map(handle).collect();
    let (done, failed) = api
        .settle("AcknowledgeQueueRecords", &queue, &new, None)
        .await;
    assert_eq!((done.len(), failed.len()), (3, 0));
}

#[tokio::test]
async fn acknowledged_records_never_come_back_and_each_is_delivered_once() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "acked").await;
    let queue = api
        .create("workers", &stream, "TRIM_HORIZON", json!({}))
        .await;
    for i in 0..25 {
        engine
            .put("acked", &format!("key-{i}"), format!("r{i:02}").as_bytes())
            .await;
    }
    let mut seen = Vec::new();
    loop {
        let batch = api.receive(&queue, false, json!({"Limit": 10})).await;
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 10);
        let handles: Vec<&str> = batch.iter().map(handle).collect();
        let (done, failed) = api
            .settle("AcknowledgeQueueRecords", &queue, &handles, None)
            .await;
        assert_eq!((done.len(), failed.len()), (batch.len(), 0));
        seen.extend(batch.iter().map(data));
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (25, 25));
    // Far past any visibility timeout: nothing comes back.
    clock.advance(3_600_000);
    assert!(api.receive(&queue, false, json!({})).await.is_empty());
    assert!(api.receive(&queue, true, json!({})).await.is_empty());
}

#[tokio::test]
async fn visibility_changes_release_or_extend_records_in_flight() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "vis").await;
    let queue = api
        .create("workers", &stream, "TRIM_HORIZON", json!({}))
        .await;
    engine.put("vis", "a", b"released").await;
    engine.put("vis", "b", b"extended").await;
    let got = api
        .receive(&queue, false, json!({"VisibilityTimeoutSeconds": 60}))
        .await;
    assert_eq!(got.len(), 2);
    let by_data = |name: &str| got.iter().find(|r| data(r) == name).unwrap().clone();
    let (released, extended) = (by_data("released"), by_data("extended"));
    let (done, _) = api
        .settle(
            "UpdateQueueRecordsVisibility",
            &queue,
            &[handle(&released)],
            Some(0),
        )
        .await;
    assert_eq!(done.len(), 1);
    let (done, _) = api
        .settle(
            "UpdateQueueRecordsVisibility",
            &queue,
            &[handle(&extended)],
            Some(600),
        )
        .await;
    assert_eq!(done.len(), 1);
    let now = api.receive(&queue, false, json!({})).await;
    assert_eq!(sorted_data(&now), ["released"], "visible at once");
    api.settle("AcknowledgeQueueRecords", &queue, &[handle(&now[0])], None)
        .await;
    clock.advance(599_000);
    assert!(
        api.receive(&queue, false, json!({})).await.is_empty(),
        "extended to 600 s"
    );
    clock.advance(1_000);
    assert_eq!(
        sorted_data(&api.receive(&queue, false, json!({})).await),
        ["extended"]
    );
}

#[tokio::test]
async fn a_latest_queue_delivers_only_newer_records_and_a_receive_waits_for_them() {
    let engine = TestEngine::start().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "latest").await;
    engine.put("latest", "k", b"before").await;
    let queue = api.create("workers", &stream, "LATEST", json!({})).await;
    let waiting = {
        let api = QueueApi::of(&engine);
        let queue = queue.clone();
        tokio::spawn(async move {
            api.ok(
                "ReceiveQueueRecords",
                json!({"QueueARN": queue, "WaitTimeSeconds": 20}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine.put("latest", "k", b"after").await;
    let reply = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the receive returns once a record is there")
        .unwrap();
    let records = reply["QueueRecords"].as_array().unwrap();
    assert_eq!(sorted_data(records), ["after"]);
}

//! A durable engine keeps every queue's state across a restart: definitions, attributes,
//! acknowledgements, records in flight with their receive counts and receipt handles, and
//! dead-letter records; and an acknowledgement survives a SIGKILL right after it is answered.

use std::sync::Arc;

use aws_sdk_kinesis::primitives::Blob;
use core_engine::{Engine, ManualClock};
use serde_json::json;

use super::{QueueApi, data, handle, on_demand_stream, sorted_data};
use crate::common::{TestEngine, client};
use crate::support::ChildEngine;

#[tokio::test]
async fn a_restart_keeps_every_queues_state() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let start = || TestEngine::with(Engine::builder().data_dir(dir.path()).clock(clock.clone()));
    let engine = start().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "kept").await;
    let dlq = json!({
        "VisibilityTimeoutSeconds": 30,
        "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 2}
    });
    let a = api.create("a", &stream, "TRIM_HORIZON", dlq).await;
    let b = api.create("b", &stream, "TRIM_HORIZON", json!({})).await;
    for name in ["r1", "r2", "r3"] {
        engine.put("kept", name, name.as_bytes()).await;
    }
    // Queue a: r1 acknowledged, r2 in flight for 600 s, r3 received twice (a dead letter).
    let first = api.receive(&a, false, json!({})).await;
    assert_eq!(sorted_data(&first), ["r1", "r2", "r3"]);
    let find = |records: &[serde_json::Value], name: &str| {
        records.iter().find(|r| data(r) == name).unwrap().clone()
    };
    let r2 = find(&first, "r2");
    api.settle(
        "AcknowledgeQueueRecords",
        &a,
        &[handle(&find(&first, "r1"))],
        None,
    )
    .await;
    let (done, _) = api
        .settle(
            "UpdateQueueRecordsVisibility",
            &a,
            &[handle(&r2)],
            Some(600),
        )
        .await;
    assert_eq!(done.len(), 1);
    clock.advance(30_000);
    assert_eq!(
        sorted_data(&api.receive(&a, false, json!({})).await),
        ["r3"]
    );
    clock.advance(30_000);
    // Queue b: two records acknowledged, new attributes.
    let two = api.receive(&b, false, json!({"Limit": 2})).await;
    let handles: Vec<&str> = two.iter().map(handle).collect();
    api.settle("AcknowledgeQueueRecords", &b, &handles, None)
        .await;
    api.ok(
        "UpdateQueue",
        json!({"QueueARN": b, "QueueAttributes": {"VisibilityTimeoutSeconds": 45}}),
    )
    .await;
    let described_a = api.ok("DescribeQueue", json!({"QueueARN": a})).await;
    let tag = engine
        .client
        .tag_resource()
        .resource_arn(&b)
        .tags("kept", "yes");
    tag.send().await.unwrap();
    engine.handle.shutdown().await;

    let engine = start().await;
    let api = QueueApi::of(&engine);
    assert_eq!(
        api.ok("DescribeQueue", json!({"QueueARN": a})).await,
        described_a
    );
    let described_b = api.ok("DescribeQueue", json!({"QueueARN": b})).await;
    assert_eq!(
        described_b["QueueDescription"]["QueueAttributes"]["VisibilityTimeoutSeconds"],
        45
    );
    assert_eq!(
        api.ok("ListQueues", json!({})).await["QueueSummaries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // b: only the record not acknowledged, received for the first time.
    let rest = api.receive(&b, false, json!({})).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["ReceiveCount"], 1);
    // a: r1 acknowledged, r2 in flight, r3 a dead letter.
    assert!(api.receive(&a, false, json!({})).await.is_empty());
    let dead = api.receive(&a, true, json!({})).await;
    assert_eq!(sorted_data(&dead), ["r3"]);
    assert_eq!(dead[0]["ReceiveCount"], 3);
    // r2's receipt handle from before the restart still works.
    let (done, _) = api
        .settle("UpdateQueueRecordsVisibility", &a, &[handle(&r2)], Some(0))
        .await;
    assert_eq!(done.len(), 1);
    let back = api.receive(&a, false, json!({})).await;
    assert_eq!(sorted_data(&back), ["r2"]);
    assert_eq!(back[0]["ReceiveCount"], 2);
    assert_eq!(
        back[0]["FirstReceiveTimestamp"],
        r2["FirstReceiveTimestamp"]
    );
    engine.handle.shutdown().await;
}

#[tokio::test]
async fn an_acknowledgement_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let child = ChildEngine::spawn(dir.path(), &[]);
    let kinesis = client(&child.endpoint);
    let api = QueueApi::new(&child.endpoint);
    let stream = on_demand_stream(&kinesis, "killed").await;
    let queue = api
        .create(
            "q",
            &stream,
            "TRIM_HORIZON",
            json!({"VisibilityTimeoutSeconds": 0}),
        )
        .await;
    for i in 0..5 {
        kinesis
            .put_record()
            .stream_name("killed")
            .partition_key(format!("k{i}"))
            .data(Blob::new(format!("r{i}")))
            .send()
            .await
            .unwrap();
    }
    let got = api.receive(&queue, false, json!({})).await;
    assert_eq!(got.len(), 5);
    let acked: Vec<&str> = got.iter().filter(|r| data(r) != "r4").map(handle).collect();
    let (done, _) = api
        .settle("AcknowledgeQueueRecords", &queue, &acked, None)
        .await;
    assert_eq!(done.len(), 4);
    child.kill();

    let child = ChildEngine::spawn(dir.path(), &[]);
    let api = QueueApi::new(&child.endpoint);
    let left = api.receive(&queue, false, json!({})).await;
    assert_eq!(sorted_data(&left), ["r4"]);
    assert_eq!(left[0]["ReceiveCount"], 2);
}

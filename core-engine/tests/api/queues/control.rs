//! CreateQueue, DescribeQueue, ListQueues, UpdateQueue and DeleteQueue.

use serde_json::json;

use super::{QueueApi, on_demand_stream};
use crate::common::TestEngine;

#[tokio::test]
async fn a_queue_is_created_described_listed_updated_and_deleted() {
    let engine = TestEngine::start().await;
    let api = QueueApi::of(&engine);
    let stream = on_demand_stream(&engine.client, "orders").await;
    let created = api
        .ok(
            "CreateQueue",
            json!({
                "QueueName": "billing",
                "StreamConfigurationList": [{"StreamARN": stream}],
                "Tags": {"team": "payments"}
            }),
        )
        .await;
    let description = &created["QueueDescription"];
    let arn = description["QueueARN"].as_str().unwrap().to_owned();
    assert!(arn.starts_with("arn:aws:kinesis:us-east-1:000000000000:queue/"));
    assert!(
        !arn.contains("billing"),
        "the ARN's id is generated, not the name"
    );
    assert_eq!(description["QueueName"], "billing");
    assert_eq!(description["QueueStatus"], "ACTIVE");
    assert!(description["QueueCreationTimestamp"].is_number());
    assert_eq!(
        description["StreamConfigurationList"][0]["StreamARN"],
        stream.as_str()
    );
    let start = &description["StreamConfigurationList"][0]["StartingPosition"];
    assert_eq!(start["Type"], "LATEST");
    assert!(
        start["Timestamp"].is_number(),
        "ACTIVE: the effective position"
    );
    assert_eq!(
        description["QueueAttributes"],
        json!({
            "VisibilityTimeoutSeconds": 30,
            "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 6}
        })
    );
    let described = api.ok("DescribeQueue", json!({"QueueARN": arn})).await;
    assert_eq!(described["QueueDescription"], *description);

    // Tags, through the SDK's ARN-tagging operations.
    let tags = || async {
        let out = engine
            .client
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await;
        let mut tags: Vec<(String, String)> = out
            .unwrap()
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value.unwrap_or_default()))
            .collect();
        tags.sort();
        tags
    };
    assert_eq!(tags().await, [("team".to_owned(), "payments".to_owned())]);
    engine
        .client
        .tag_resource()
        .resource_arn(&arn)
        .tags("env", "test")
        .send()
        .await
        .unwrap();
    engine
        .client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    assert_eq!(tags().await, [("env".to_owned(), "test".to_owned())]);

    let updated = api
        .ok(
            "UpdateQueue",
            json!({"QueueARN": arn, "QueueAttributes": {"VisibilityTimeoutSeconds": 120}}),
        )
        .await;
    assert_eq!(
        updated["QueueDescription"]["QueueAttributes"],
        json!({
            "VisibilityTimeoutSeconds": 120,
            "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 6}
        }),
        "attributes left out are unchanged"
    );
    let updated = api
        .ok(
            "UpdateQueue",
            json!({"QueueARN": arn, "QueueAttributes": {"DeadLetterConfiguration": {"TargetType": "NONE"}}}),
        )
        .await;
    assert_eq!(
        updated["QueueDescription"]["QueueAttributes"],
        json!({"VisibilityTimeoutSeconds": 120, "DeadLetterConfiguration": {"TargetType": "NONE"}})
    );

    let listed = api.ok("ListQueues", json!({})).await;
    let summaries = listed["QueueSummaries"].as_array().unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["QueueARN"], arn.as_str());
    assert_eq!(summaries[0]["QueueStatus"], "ACTIVE");
    assert_eq!(summaries[0]["Streams"][0]["StreamARN"], stream.as_str());
    assert!(summaries[0]["Streams"][0]["StreamCreationTimestamp"].is_number());
    assert!(listed.get("NextToken").is_none());

    api.ok("DeleteQueue", json!({"QueueARN": arn})).await;
    let gone = api
        .call("DescribeQueue", json!({"QueueARN": arn}))
        .await
        .unwrap_err();
    assert_eq!(
        (gone.status, gone.code.as_str()),
        (400, "ResourceNotFoundException")
    );
    let listed = api.ok("ListQueues", json!({})).await;
    assert_eq!(listed["QueueSummaries"], json!([]));
    // With its queue gone, the stream can be deleted.
    engine
        .client
        .delete_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn list_queues_filters_by_stream_and_pages() {
    let engine = TestEngine::start().await;
    let api = QueueApi::of(&engine);
    let first = on_demand_stream(&engine.client, "first").await;
    let second = on_demand_stream(&engine.client, "second").await;
    for name in ["a", "b", "c"] {
        api.create(name, &first, "LATEST", json!({})).await;
    }
    api.create("d", &second, "TRIM_HORIZON", json!({})).await;
    let names = |reply: &serde_json::Value| -> Vec<String> {
        reply["QueueSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["QueueName"].as_str().unwrap().to_owned())
            .collect()
    };
    let only_second = api
        .ok(
            "ListQueues",
            json!({"StreamFilter": [{"StreamARN": second}]}),
        )
        .await;
    assert_eq!(names(&only_second), ["d"]);
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let mut body = json!({"MaxResults": 1, "StreamFilter": [{"StreamARN": first}]});
        if let Some(token) = &token {
            body["NextToken"] = json!(token);
        }
        let page = api.ok("ListQueues", body).await;
        all.extend(names(&page));
        match page.get("NextToken").and_then(|t| t.as_str()) {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(all, ["a", "b", "c"]);
    // A token belongs to its filter.
    let page = api
        .ok(
            "ListQueues",
            json!({"MaxResults": 1, "StreamFilter": [{"StreamARN": first}]}),
        )
        .await;
    let failure = api
        .call("ListQueues", json!({"NextToken": page["NextToken"]}))
        .await
        .unwrap_err();
    assert_eq!(failure.code, "InvalidArgumentException");
}

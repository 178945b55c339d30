//! Injected faults: each kind, through the builder, the running handle and the admin endpoint,
//! and repeatable for a given seed.

use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use core_engine::{Engine, Fault, FaultRule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TestEngine, code_of};
use crate::fan_out::{consumer, subscribe};

fn entries(count: usize) -> Vec<PutRecordsRequestEntry> {
    (0..count)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{i}"))
                .data(Blob::new("x"))
                .build()
                .unwrap()
        })
        .collect()
}

/// Which records of a 200-record PutRecords fail, and with what code.
async fn failure_pattern(seed: u64) -> Vec<Option<String>> {
    let rule = FaultRule::new("PutRecords", Fault::Throttle).with_probability(0.3);
    let engine = TestEngine::with(Engine::builder().fault(rule).fault_seed(seed)).await;
    engine.create_stream("flaky", 4).await;
    let out = engine
        .client
        .put_records()
        .stream_name("flaky")
        .set_records(Some(entries(200)))
        .send()
        .await
        .unwrap();
    let failed = out
        .records
        .iter()
        .filter(|r| r.error_code.is_some())
        .count();
    assert_eq!(out.failed_record_count, Some(failed as i32));
    // Only the records that succeeded were written.
    let mut written = 0;
    for shard in engine.shard_ids("flaky").await {
        written += engine.read_all("flaky", &shard).await.len();
    }
    assert_eq!(written, 200 - failed);
    out.records.into_iter().map(|r| r.error_code).collect()
}

#[tokio::test]
async fn put_records_faults_hit_single_records_and_repeat_for_a_seed() {
    let first = failure_pattern(11).await;
    let again = failure_pattern(11).await;
    let other = failure_pattern(12).await;
    assert_eq!(first, again, "the same seed gives the same faults");
    assert_ne!(first, other);
    let failed = first.iter().flatten().count();
    assert!(
        (20..100).contains(&failed),
        "about 30% of 200 records fail, got {failed}"
    );
    assert!(
        first
            .iter()
            .flatten()
            .all(|code| code == "ProvisionedThroughputExceededException")
    );
}

#[tokio::test]
async fn internal_failures_hit_records_or_whole_calls() {
    let engine = TestEngine::with(
        Engine::builder()
            .fault(FaultRule::new("PutRecords", Fault::InternalFailure).times(2))
            .fault(
                FaultRule::new("DescribeStreamSummary", Fault::InternalFailure).on_stream("broken"),
            ),
    )
    .await;
    engine.create_stream("broken", 1).await;
    engine.create_stream("fine", 1).await;
    let out = engine
        .client
        .put_records()
        .stream_name("fine")
        .set_records(Some(entries(5)))
        .send()
        .await
        .unwrap();
    let codes: Vec<_> = out
        .records
        .iter()
        .map(|r| r.error_code.as_deref())
        .collect();
    assert_eq!(
        codes,
        [
            Some("InternalFailure"),
            Some("InternalFailure"),
            None,
            None,
            None
        ]
    );
    let (code, _) = code_of(
        engine
            .client
            .describe_stream_summary()
            .stream_name("broken")
            .send()
            .await,
    );
    assert_eq!(code, "InternalFailure");
    engine
        .client
        .describe_stream_summary()
        .stream_name("fine")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn latency_expiry_and_dropped_connections() {
    let engine = TestEngine::start().await;
    engine.create_stream("slow", 1).await;
    let faults = engine.handle.faults();
    faults
        .add(FaultRule::new("ListShards", Fault::Latency { ms: 300 }))
        .unwrap();
    let started = Instant::now();
    engine
        .client
        .list_shards()
        .stream_name("slow")
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    faults
        .add(FaultRule::new("GetRecords", Fault::ExpireIterator).times(1))
        .unwrap();
    let iterator = engine
        .iterator(
            "slow",
            "shardId-000000000000",
            ShardIteratorType::TrimHorizon,
        )
        .await;
    let (code, _) = code_of(
        engine
            .client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await,
    );
    assert_eq!(code, "ExpiredIteratorException");
    engine
        .client
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap();

    faults
        .add(FaultRule::new("PutRecord", Fault::DropConnection).times(1))
        .unwrap();
    let dropped = engine
        .client
        .put_record()
        .stream_name("slow")
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await;
    let error = dropped.expect_err("the connection was dropped");
    assert!(
        error.as_service_error().is_none(),
        "a dropped connection is not an AWS error: {error:?}"
    );
    faults.clear();
    engine.put("slow", "k", b"after").await;
}

#[tokio::test]
async fn injected_ends_cut_subscriptions_short() {
    let engine = TestEngine::with(
        Engine::builder().fault(FaultRule::new("SubscribeToShard", Fault::EndSubscription)),
    )
    .await;
    engine.create_stream("fan", 1).await;
    engine.put("fan", "k", b"one").await;
    let consumer = consumer(&engine, "c").await;
    let mut events = subscribe(
        &engine,
        &consumer,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
    )
    .await;
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some());
    let next = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        next.is_none(),
        "the stream ends right after its first event"
    );
}

/// Sends one JSON request to the admin endpoint and returns the status and body.
async fn admin(engine: &TestEngine, method: &str, body: &str) -> (u16, String) {
    admin_with(
        engine,
        method,
        "Host: x\r\nContent-Type: application/json\r\n",
        body,
    )
    .await
}

/// Sends one request with these header lines to the admin endpoint.
async fn admin_with(engine: &TestEngine, method: &str, headers: &str, body: &str) -> (u16, String) {
    let mut socket = tokio::net::TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap();
    let request = format!(
        "{method} /_shardline/faults HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_owned())
}

#[tokio::test]
async fn the_admin_endpoint_adds_lists_and_clears_rules() {
    let engine = TestEngine::start().await;
    engine.create_stream("target", 1).await;
    engine.create_stream("other", 1).await;
    let (status, _) = admin(
        &engine,
        "POST",
        r#"{"operation":"PutRecord","stream":"target","fault":{"type":"Throttle"}}"#,
    )
    .await;
    assert_eq!(status, 200);
    let (status, listed) = admin(&engine, "GET", "").await;
    assert_eq!(status, 200);
    assert!(listed.contains(r#""stream":"target""#), "{listed}");
    let put = |stream: &'static str| {
        engine
            .client
            .put_record()
            .stream_name(stream)
            .partition_key("k")
            .data(Blob::new("x"))
            .send()
    };
    let (code, _) = code_of(put("target").await);
    assert_eq!(code, "ProvisionedThroughputExceededException");
    put("other").await.unwrap();
    let (status, message) = admin(
        &engine,
        "POST",
        r#"{"fault":{"type":"Throttle"},"probability":3}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.contains("probability"), "{message}");
    let (status, _) = admin(&engine, "DELETE", "").await;
    assert_eq!(status, 200);
    put("target").await.unwrap();
}

#[tokio::test]
async fn drop_after_apply_writes_the_records_but_answers_nothing() {
    let engine = TestEngine::start().await;
    engine.create_stream("lost-answer", 1).await;
    let faults = engine.handle.faults();
    faults
        .add(
            FaultRule::new("PutRecord", Fault::DropAfterApply)
                .on_stream("lost-answer")
                .times(1),
        )
        .unwrap();
    faults
        .add(FaultRule::new("PutRecords", Fault::DropAfterApply).times(1))
        .unwrap();
    let single = engine
        .client
        .put_record()
        .stream_name("lost-answer")
        .partition_key("k")
        .data(Blob::new("one"))
        .send()
        .await;
    let error = single.expect_err("the answer was dropped");
    assert!(error.as_service_error().is_none(), "{error:?}");
    let batch = engine
        .client
        .put_records()
        .stream_name("lost-answer")
        .set_records(Some(entries(3)))
        .send()
        .await;
    let error = batch.expect_err("the answer was dropped");
    assert!(error.as_service_error().is_none(), "{error:?}");
    let records = engine.read_all("lost-answer", "shardId-000000000000").await;
    assert_eq!(records.len(), 4, "every write was applied");
    assert_eq!(records[0].data.as_ref(), b"one");
}

#[tokio::test]
async fn the_admin_endpoint_refuses_what_a_web_page_could_send() {
    let engine = TestEngine::start().await;
    let rule = r#"{"operation":"PutRecord","fault":{"type":"Throttle"}}"#;
    let own = engine.handle.local_addr();
    let refused = [
        // A form or fetch without a preflight can only send text/plain and friends.
        (
            415,
            format!("Host: {own}\r\nContent-Type: text/plain\r\n"),
            "Content-Type",
        ),
        (415, format!("Host: {own}\r\n"), "Content-Type"),
        (
            403,
            format!(
                "Host: {own}\r\nContent-Type: application/json\r\nOrigin: http://evil.example\r\n"
            ),
            "cross-origin",
        ),
        (
            403,
            format!(
                "Host: {own}\r\nContent-Type: application/json\r\nSec-Fetch-Site: cross-site\r\n"
            ),
            "cross-origin",
        ),
        // DNS rebinding: the browser thinks it is same-origin, but the name is not ours.
        (
            403,
            format!(
                "Host: rebound.example:{}\r\nContent-Type: application/json\r\nOrigin: http://rebound.example:{}\r\n",
                own.port(),
                own.port()
            ),
            "cross-origin",
        ),
    ];
    for (status, headers, needle) in refused {
        let (got, message) = admin_with(&engine, "POST", &headers, rule).await;
        assert_eq!(got, status, "{headers}: {message}");
        assert!(message.contains(needle), "{headers}: {message}");
    }
    let (got, message) = admin_with(
        &engine,
        "DELETE",
        &format!("Host: {own}\r\nOrigin: http://evil.example\r\n"),
        "",
    )
    .await;
    assert_eq!(got, 403, "{message}");
    assert!(
        engine.handle.faults().rules().is_empty(),
        "nothing was added"
    );
    // The engine's own origin, and clients that send no origin, are served.
    let (got, message) = admin_with(
        &engine,
        "POST",
        &format!("Host: {own}\r\nContent-Type: application/json; charset=utf-8\r\nOrigin: http://{own}\r\nSec-Fetch-Site: same-origin\r\n"),
        rule,
    )
    .await;
    assert_eq!(got, 200, "{message}");
    assert_eq!(engine.handle.faults().rules().len(), 1);
}

#[tokio::test]
async fn the_admin_endpoint_bounds_rules() {
    let engine = TestEngine::start().await;
    let (status, message) = admin(
        &engine,
        "POST",
        r#"{"fault":{"type":"Latency","ms":18446744073709551615}}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.contains("at most 60000 ms"), "{message}");
    let (status, message) = admin(
        &engine,
        "POST",
        r#"{"fault":{"type":"Throttle"},"probability":-0.5}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.contains("probability"), "{message}");
    let (status, message) = admin(&engine, "POST", "not json").await;
    assert_eq!(status, 400, "{message}");
    let (status, _) = admin(
        &engine,
        "POST",
        &format!("{{\"x\":\"{}\"}}", "a".repeat(70_000)),
    )
    .await;
    assert_eq!(status, 413);
    // Rules are bounded in number: the last few go over HTTP.
    let faults = engine.handle.faults();
    for _ in 0..998 {
        faults
            .add(FaultRule::new("PutRecord", Fault::Latency { ms: 1 }).with_probability(0.0))
            .unwrap();
    }
    let rule = r#"{"operation":"PutRecord","fault":{"type":"Throttle"},"probability":0}"#;
    assert_eq!(admin(&engine, "POST", rule).await.0, 200);
    assert_eq!(admin(&engine, "POST", rule).await.0, 200);
    let (status, message) = admin(&engine, "POST", rule).await;
    assert_eq!(status, 400);
    assert!(message.contains("at most 1000 fault rules"), "{message}");
    assert_eq!(faults.rules().len(), 1000);
    // Past the limit, the engine keeps answering the AWS API.
    engine.create_stream("still-served", 1).await;
}

//! The wire itself: raw HTTP/1.1 and HTTP/2 requests, malformed bodies, unknown operations.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestEngine;

const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00";

/// Sends one HTTP/1.1 request and returns the status code, headers and body.
async fn raw_post(
    engine: &TestEngine,
    target: Option<&str>,
    auth: bool,
    body: &[u8],
) -> (u16, String, String) {
    let mut socket = TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(target) = target {
        request.push_str(&format!("X-Amz-Target: {target}\r\n"));
    }
    if auth {
        request.push_str(&format!("Authorization: {SIGNED}\r\n"));
    }
    request.push_str("\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn answers_exact_json_over_http1() {
    let engine = TestEngine::start().await;
    let (status, head, body) = raw_post(
        &engine,
        Some("Kinesis_20131202.CreateStream"),
        true,
        br#"{"StreamName":"raw","ShardCount":1}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.is_empty(),
        "CreateStream answers with an empty body: {body:?}"
    );
    assert!(head.contains("content-type: application/x-amz-json-1.1"));
    assert!(head.contains("x-amzn-requestid: "));
    let (status, _, body) = raw_post(
        &engine,
        Some("Kinesis_20131202.PutRecord"),
        true,
        br#"{"StreamName":"raw","PartitionKey":"a","Data":"aGVsbG8="}"#,
    )
    .await;
    assert_eq!(status, 200);
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["ShardId"], "shardId-000000000000");
    assert_eq!(reply["EncryptionType"], "NONE");
    assert!(
        reply["SequenceNumber"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .is_ok()
    );
}

#[tokio::test]
async fn malformed_requests_get_clean_errors() {
    let engine = TestEngine::start().await;
    // (target, signed, body, expected status, expected error code)
    type Case<'a> = (Option<&'a str>, bool, &'a [u8], u16, &'a str);
    let cases: [Case; 6] = [
        (
            Some("Kinesis_20131202.CreateStream"),
            true,
            b"{not json",
            400,
            "SerializationException",
        ),
        (
            Some("Kinesis_20131202.CreateStream"),
            true,
            br#"{"StreamName":"s","ShardCount":"two"}"#,
            400,
            "SerializationException",
        ),
        (
            Some("Kinesis_20131202.PutRecord"),
            true,
            br#"{"StreamName":"s","PartitionKey":"a","Data":"%%%"}"#,
            400,
            "SerializationException",
        ),
        (
            Some("Kinesis_20131202.Frobnicate"),
            true,
            b"{}",
            400,
            "UnknownOperationException",
        ),
        (None, true, b"{}", 400, "UnknownOperationException"),
        (
            Some("Kinesis_20131202.ListStreams"),
            false,
            b"{}",
            403,
            "MissingAuthenticationTokenException",
        ),
    ];
    for (target, auth, body, want_status, want_code) in cases {
        let (status, head, reply) = raw_post(&engine, target, auth, body).await;
        assert_eq!(status, want_status, "{target:?} {reply}");
        let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(reply["__type"], want_code);
        assert!(!reply["message"].as_str().unwrap().is_empty());
        assert!(head.contains(&format!(
            "x-amzn-errortype: {}",
            want_code.to_ascii_lowercase()
        )));
    }
    // The engine is still healthy after all of that.
    engine.client.list_streams().send().await.unwrap();
}

#[tokio::test]
async fn serves_http2_with_prior_knowledge_on_the_same_port() {
    let engine = TestEngine::start().await;
    engine.create_stream("h2", 1).await;
    let socket = TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(socket))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.DescribeStreamSummary")
        .header("authorization", SIGNED)
        .body(Full::new(Bytes::from_static(br#"{"StreamName":"h2"}"#)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["StreamDescriptionSummary"]["StreamStatus"], "ACTIVE");
    assert_eq!(reply["StreamDescriptionSummary"]["OpenShardCount"], 1);
}

/// Splits event-stream messages out of `bytes`, checking both CRCs; gives (headers, payload).
fn event_messages(mut bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut messages = Vec::new();
    while bytes.len() >= 12 {
        let total = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let headers_len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(
            crc32fast::hash(&bytes[..8]),
            u32::from_be_bytes(bytes[8..12].try_into().unwrap())
        );
        let message = &bytes[..total];
        assert_eq!(
            crc32fast::hash(&message[..total - 4]),
            u32::from_be_bytes(message[total - 4..].try_into().unwrap())
        );
        let headers = String::from_utf8_lossy(&message[12..12 + headers_len]).into_owned();
        messages.push((headers, message[12 + headers_len..total - 4].to_vec()));
        bytes = &bytes[total..];
    }
    messages
}

#[tokio::test]
async fn fan_out_streams_events_over_http2() {
    let engine = TestEngine::start().await;
    engine.create_stream("h2fan", 1).await;
    engine.put("h2fan", "k", b"over h2").await;
    let consumer = engine
        .client
        .register_stream_consumer()
        .stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/h2fan")
        .consumer_name("h2")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    let socket = TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(socket))
            .await
            .unwrap();
    tokio::spawn(connection);
    let body = serde_json::json!({"ConsumerARN": consumer, "ShardId": "shardId-000000000000", "StartingPosition": {"Type": "TRIM_HORIZON"}}).to_string();
    let request = http::Request::post("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.SubscribeToShard")
        .header("authorization", SIGNED)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let mut body = response.into_body();
    let mut received = Vec::new();
    while event_messages(&received).len() < 2 {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            received.extend_from_slice(&data);
        }
    }
    let messages = event_messages(&received);
    assert!(messages[0].0.contains("initial-response"));
    assert!(messages[1].0.contains("SubscribeToShardEvent"));
    let event: serde_json::Value = serde_json::from_slice(&messages[1].1).unwrap();
    assert_eq!(event["Records"][0]["Data"], "b3ZlciBoMg==");
    assert_eq!(event["MillisBehindLatest"], 0);
}

//! The listener's limits, with short timeouts set on the builder: idle and silent connections
//! are closed, slow request heads and stalled bodies too, SDK clients that pause (or stream)
//! keep working, connections over the limit are refused while others carry on, and an
//! oversized body is refused before it is read.

use std::time::Duration;

use aws_sdk_kinesis::types::{ShardIteratorType, SubscribeToShardEventStream};
use bytes::Bytes;
use core_engine::{Engine, EngineBuilder};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestEngine, client, code_of};
use crate::fan_out::{consumer, subscribe};

/// Long enough that a connection still open after it will not be closed by the engine.
const PATIENCE: Duration = Duration::from_secs(10);

fn with_timeouts(header: Duration, idle: Duration) -> EngineBuilder {
    Engine::builder()
        .header_read_timeout(header)
        .idle_timeout(idle)
}

async fn connect(engine: &TestEngine) -> TcpStream {
    TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap()
}

/// A whole ListStreams request, kept alive.
fn list_streams() -> String {
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n\
     X-Amz-Target: Kinesis_20131202.ListStreams\r\nAuthorization: AWS4-HMAC-SHA256 x\r\n\
     Content-Length: 2\r\n\r\n{}"
        .to_owned()
}

/// Reads one response (head and a Content-Length body); gives its status and body.
async fn read_response(socket: &mut TcpStream) -> (u16, String) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if bytes.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&bytes[end + 4..end + 4 + length]);
                return (head[9..12].parse().unwrap(), body.into_owned());
            }
        }
        let read = tokio::time::timeout(PATIENCE, socket.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(read > 0, "the connection closed before a whole response");
        bytes.extend_from_slice(&chunk[..read]);
    }
}

/// Whether the engine closes the connection (EOF or reset) within [`PATIENCE`], ignoring any
/// bytes it sends first.
async fn closed_by_engine(socket: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.is_ok()
}

#[tokio::test]
async fn a_connection_idle_after_a_request_is_closed_after_the_idle_timeout() {
    let engine = TestEngine::with(with_timeouts(PATIENCE * 3, Duration::from_millis(300))).await;
    let mut socket = connect(&engine).await;
    socket.write_all(list_streams().as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut socket).await.0, 200);
    assert!(closed_by_engine(&mut socket).await);
}

#[tokio::test]
async fn a_silent_connection_and_a_slow_head_are_closed_after_the_header_timeout() {
    let engine = TestEngine::with(with_timeouts(Duration::from_millis(300), PATIENCE * 3)).await;
    let mut silent = connect(&engine).await;
    let mut slow = connect(&engine).await;
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A second request head that stalls, on a connection that has served one already: the
    // header timeout applies, not the (long) idle timeout.
    let mut slow_second = connect(&engine).await;
    slow_second
        .write_all(list_streams().as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut slow_second).await.0, 200);
    slow_second
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(closed_by_engine(&mut silent).await, "silent connection");
    assert!(closed_by_engine(&mut slow).await, "slow first head");
    assert!(closed_by_engine(&mut slow_second).await, "slow second head");
}

#[tokio::test]
async fn a_body_that_stalls_has_its_connection_closed() {
    let engine = TestEngine::with(with_timeouts(Duration::from_millis(300), PATIENCE * 3)).await;
    let mut socket = connect(&engine).await;
    socket
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n\
              X-Amz-Target: Kinesis_20131202.ListStreams\r\nAuthorization: x\r\n\
              Content-Length: 1000\r\n\r\n{\"Limit\":",
        )
        .await
        .unwrap();
    assert!(closed_by_engine(&mut socket).await);
}

#[tokio::test]
async fn an_oversized_content_length_is_refused_before_the_body_is_read() {
    let engine = TestEngine::start().await;
    let mut socket = connect(&engine).await;
    // Only the head is sent: the answer must not wait for 40 MiB.
    socket
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n\
              X-Amz-Target: Kinesis_20131202.PutRecords\r\nAuthorization: x\r\n\
              Content-Length: 41943040\r\n\r\n",
        )
        .await
        .unwrap();
    let (status, body) = read_response(&mut socket).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("RequestEntityTooLargeException"), "{body}");
    assert!(body.contains("larger than 33554432 bytes"), "{body}");
}

#[tokio::test]
async fn sdk_clients_that_pause_keep_working() {
    let engine = TestEngine::with(with_timeouts(
        Duration::from_millis(300),
        Duration::from_millis(600),
    ))
    .await;
    engine.create_stream("pauses", 1).await;
    // Pauses shorter than the idle timeout, over several idle timeouts in all, then pauses
    // longer than it: the client's pooled connection is closed and it opens another.
    for pause in [200, 200, 200, 200, 200, 900, 900] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        engine.put("pauses", "k", b"x").await;
    }
    let records = engine.read_all("pauses", "shardId-000000000000").await;
    assert_eq!(records.len(), 7);
}

#[tokio::test]
async fn a_subscription_outlives_the_idle_timeout() {
    let engine = TestEngine::with(with_timeouts(
        Duration::from_millis(200),
        Duration::from_millis(200),
    ))
    .await;
    engine.create_stream("fan", 1).await;
    let consumer = consumer(&engine, "c").await;
    let mut events = subscribe(
        &engine,
        &consumer,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
    )
    .await;
    let mut seen = 0;
    for round in 0..4 {
        engine.put("fan", "k", format!("{round}").as_bytes()).await;
        while seen <= round {
            let event = tokio::time::timeout(PATIENCE, events.recv())
                .await
                .expect("an event in time")
                .expect("a healthy stream")
                .expect("the stream is still open");
            if let SubscribeToShardEventStream::SubscribeToShardEvent(event) = event {
                seen += event.records.len();
            }
        }
        // Longer than the idle timeout: the stream is in flight, so it stays.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(seen, 4);
}

/// A connection whose ListStreams body has stopped half way: a request in flight.
async fn busy(engine_addr: &str) -> TcpStream {
    let mut socket = TcpStream::connect(engine_addr).await.unwrap();
    socket
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n\
              X-Amz-Target: Kinesis_20131202.ListStreams\r\nAuthorization: x\r\n\
              Content-Length: 12\r\n\r\n{\"Limit\":",
        )
        .await
        .unwrap();
    socket
}

#[tokio::test]
async fn when_every_connection_is_busy_more_are_refused_and_the_busy_ones_finish() {
    let engine =
        TestEngine::with(with_timeouts(PATIENCE * 3, PATIENCE * 3).max_connections(2)).await;
    let addr = engine.handle.local_addr().to_string();
    let mut first = busy(&addr).await;
    let mut second = busy(&addr).await;
    // Let the engine take both requests in before the next connection.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut extra = connect(&engine).await;
    extra.write_all(list_streams().as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut extra).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("maximum of 2 connections"), "{body}");
    // An SDK client sees a ServiceUnavailable error (retries are off in these tests).
    let (code, _) = code_of(engine.client.list_streams().send().await);
    assert_eq!(code, "ServiceUnavailable");
    // The busy requests carry on and are answered.
    for socket in [&mut first, &mut second] {
        socket.write_all(b"10}").await.unwrap();
        assert_eq!(read_response(socket).await.0, 200);
    }
    // Now idle, they make room for new clients.
    engine.create_stream("after", 1).await;
    engine.put("after", "k", b"x").await;
    assert!(closed_by_engine(&mut first).await || closed_by_engine(&mut second).await);
}

#[tokio::test]
async fn a_flood_of_idle_connections_cannot_lock_clients_out() {
    let engine =
        TestEngine::with(with_timeouts(PATIENCE * 3, PATIENCE * 3).max_connections(3)).await;
    engine.create_stream("flood", 1).await;
    // Connections that never send a request go first, oldest first.
    let mut flood = Vec::new();
    for _ in 0..6 {
        flood.push(connect(&engine).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // With the SDK client's connection, 3 fit: each new one closed the oldest silent one.
    for (i, socket) in flood.iter_mut().enumerate().take(4) {
        assert!(closed_by_engine(socket).await, "silent connection {i}");
    }
    // The client that was already connected keeps working, and a new one gets in.
    engine.put("flood", "k", b"x").await;
    let newcomer = client(&engine.handle.endpoint_url());
    newcomer.list_streams().send().await.unwrap();
    assert!(
        closed_by_engine(&mut flood[4]).await,
        "the older remaining one"
    );
    engine.put("flood", "k", b"y").await;
    assert_eq!(
        engine.read_all("flood", "shardId-000000000000").await.len(),
        2
    );
}

/// Opens an HTTP/2 (prior knowledge) connection; gives its sender and the task driving it,
/// which ends when the engine closes the connection.
async fn http2(
    engine: &TestEngine,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let (sender, connection) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(connect(engine).await),
    )
    .await
    .unwrap();
    (sender, tokio::spawn(connection))
}

#[tokio::test]
async fn http2_connections_that_stay_silent_or_idle_are_closed() {
    let engine = TestEngine::with(with_timeouts(
        Duration::from_millis(300),
        Duration::from_millis(300),
    ))
    .await;
    let (_silent_sender, silent) = http2(&engine).await;
    let (mut sender, idle) = http2(&engine).await;
    let request = http::Request::post("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        .header("authorization", "AWS4-HMAC-SHA256 x")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    for (name, connection) in [("silent", silent), ("idle", idle)] {
        tokio::time::timeout(PATIENCE, connection)
            .await
            .unwrap_or_else(|_| panic!("the {name} connection is still open"))
            .unwrap()
            .ok();
    }
}

#[tokio::test]
async fn the_serve_command_takes_the_listener_flags() {
    let dir = tempfile::tempdir().unwrap();
    let child = crate::support::ChildEngine::spawn(
        dir.path(),
        &[
            "--header-read-timeout-ms",
            "300",
            "--idle-timeout-ms",
            "60000",
            "--max-connections",
            "1",
        ],
    );
    let addr = child.endpoint.trim_start_matches("http://").to_owned();
    let mut stalled = busy(&addr).await;
    // Let the engine take the request in (a connection that has not sent one would make room).
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut refused = TcpStream::connect(&addr).await.unwrap();
    refused.write_all(list_streams().as_bytes()).await.unwrap();
    let (status, _) = read_response(&mut refused).await;
    assert_eq!(status, 503, "one connection at most");
    assert!(
        closed_by_engine(&mut stalled).await,
        "a stalled body is closed after the header read timeout"
    );
}

//! `application/x-amz-cbor-1.1`, the Java SDK's default: raw HTTP/1.1 requests with CBOR bodies
//! built by hand, and the CBOR answers read item by item.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use minicbor::Decoder;
use minicbor::data::Type;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use core_engine::{Engine, Fault, FaultRule};

use crate::common::TestEngine;

const CBOR: &str = "application/x-amz-cbor-1.1";
const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00";

/// A decoded CBOR item, keeping what the JSON data model would lose: byte strings and tags.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Item {
    Int(i128),
    Float(f64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Item>),
    Map(Vec<(String, Item)>),
    Tag(u64, Box<Item>),
    Bool(bool),
    Null,
}

impl Item {
    pub(crate) fn get(&self, key: &str) -> &Item {
        match self {
            Item::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no {key} in {self:?}")),
            other => panic!("{other:?} is not a map"),
        }
    }

    pub(crate) fn text(&self) -> &str {
        match self {
            Item::Text(text) => text,
            other => panic!("{other:?} is not text"),
        }
    }

    pub(crate) fn array(&self) -> &[Item] {
        match self {
            Item::Array(items) => items,
            other => panic!("{other:?} is not an array"),
        }
    }
}

fn read_item(d: &mut Decoder<'_>) -> Item {
    match d.datatype().unwrap() {
        Type::Map => {
            let n = d
                .map()
                .unwrap()
                .expect("the engine writes definite lengths");
            Item::Map(
                (0..n)
                    .map(|_| (d.str().unwrap().to_owned(), read_item(d)))
                    .collect(),
            )
        }
        Type::Array => {
            let n = d
                .array()
                .unwrap()
                .expect("the engine writes definite lengths");
            Item::Array((0..n).map(|_| read_item(d)).collect())
        }
        Type::Bytes => Item::Bytes(d.bytes().unwrap().to_vec()),
        Type::String => Item::Text(d.str().unwrap().to_owned()),
        Type::Tag => {
            let tag = d.tag().unwrap().as_u64();
            Item::Tag(tag, Box::new(read_item(d)))
        }
        Type::Bool => Item::Bool(d.bool().unwrap()),
        Type::Null => {
            d.null().unwrap();
            Item::Null
        }
        Type::F64 | Type::F32 => Item::Float(d.f64().unwrap()),
        _ => Item::Int(i128::from(d.int().unwrap())),
    }
}

fn decode(body: &[u8]) -> Item {
    let mut d = Decoder::new(body);
    let item = read_item(&mut d);
    assert_eq!(d.position(), body.len(), "trailing bytes in {body:02x?}");
    item
}

/// Hand-written CBOR: each helper writes one item's head and payload.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    match n {
        0..=23 => out.push(major | n as u8),
        24..=0xff => out.extend([major | 24, n as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

pub(crate) fn text(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    head(&mut out, 3, s.len() as u64);
    out.extend(s.as_bytes());
    out
}

pub(crate) fn bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    head(&mut out, 2, b.len() as u64);
    out.extend(b);
    out
}

/// Tag 1 (`0xc1`) followed by an 8-byte integer of epoch milliseconds, as the Java SDK writes.
fn timestamp_ms(ms: i64) -> Vec<u8> {
    let mut out = vec![0xc1, 0x1b];
    out.extend(ms.to_be_bytes());
    out
}

pub(crate) fn map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    head(&mut out, 5, entries.len() as u64);
    for (key, value) in entries {
        out.extend(text(key));
        out.extend(value);
    }
    out
}

/// One answer: status, lower-cased head, body bytes.
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

async fn post(engine: &TestEngine, operation: &str, body: &[u8], signed: bool) -> Reply {
    let mut socket = TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: {CBOR}\r\n\
         X-Amz-Target: Kinesis_20131202.{operation}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if signed {
        request.push_str(&format!("Authorization: {SIGNED}\r\n"));
    }
    request.push_str("\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP head");
    let head = String::from_utf8(response[..split].to_vec())
        .unwrap()
        .to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    Reply {
        status,
        head,
        body: response[split + 4..].to_vec(),
    }
}

/// A call's status, `x-amzn-ErrorType` (lower-cased, as the whole head) and decoded body.
pub(crate) async fn post_cbor(
    engine: &TestEngine,
    operation: &str,
    body: &[u8],
) -> (u16, String, Item) {
    let reply = post(engine, operation, body, true).await;
    let error_type = reply
        .head
        .lines()
        .find_map(|line| line.strip_prefix("x-amzn-errortype:"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    (reply.status, error_type, decode(&reply.body))
}

/// A successful call's decoded answer.
pub(crate) async fn call(engine: &TestEngine, operation: &str, body: &[u8]) -> Option<Item> {
    let reply = post(engine, operation, body, true).await;
    assert_eq!(
        reply.status,
        200,
        "{operation}: {:?}",
        (!reply.body.is_empty()).then(|| decode(&reply.body))
    );
    assert!(
        reply.head.contains(&format!("content-type: {CBOR}")),
        "{}",
        reply.head
    );
    (!reply.body.is_empty()).then(|| decode(&reply.body))
}

pub(crate) async fn iterator(
    engine: &TestEngine,
    stream: &str,
    extra: &[(&str, Vec<u8>)],
) -> String {
    let mut entries = vec![
        ("StreamName", text(stream)),
        ("ShardId", text("shardId-000000000000")),
    ];
    entries.extend(extra.iter().cloned());
    let reply = call(engine, "GetShardIterator", &map(&entries))
        .await
        .unwrap();
    reply.get("ShardIterator").text().to_owned()
}

pub(crate) async fn records(engine: &TestEngine, iterator: &str) -> Vec<Item> {
    let reply = call(
        engine,
        "GetRecords",
        &map(&[("ShardIterator", text(iterator))]),
    )
    .await
    .unwrap();
    assert!(matches!(reply.get("MillisBehindLatest"), Item::Int(_)));
    reply.get("Records").array().to_vec()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_stream_is_written_and_read_entirely_in_cbor() {
    let engine = TestEngine::start().await;
    let created = call(
        &engine,
        "CreateStream",
        &map(&[("StreamName", text("cbor")), ("ShardCount", vec![0x01])]),
    )
    .await;
    assert_eq!(created, None, "CreateStream answers with an empty body");

    // Every byte value, including ones that are not valid UTF-8 or base64.
    let data: Vec<u8> = (0..=255).collect();
    let put = call(
        &engine,
        "PutRecord",
        &map(&[
            ("StreamName", text("cbor")),
            ("PartitionKey", text("pk")),
            ("Data", bytes(&data)),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(put.get("ShardId").text(), "shardId-000000000000");
    let sequence = put.get("SequenceNumber").text().to_owned();
    assert!(sequence.parse::<u128>().is_ok());

    let before = now_ms();
    let it = iterator(
        &engine,
        "cbor",
        &[("ShardIteratorType", text("TRIM_HORIZON"))],
    )
    .await;
    let records = records(&engine, &it).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.get("Data"), &Item::Bytes(data));
    assert_eq!(record.get("PartitionKey").text(), "pk");
    assert_eq!(record.get("SequenceNumber").text(), sequence);
    match record.get("ApproximateArrivalTimestamp") {
        Item::Tag(1, ms) => match **ms {
            Item::Int(ms) => {
                let ms = ms as i64;
                assert!(
                    (before - 60_000..=before + 1_000).contains(&ms),
                    "arrival {ms} ms is not close to now ({before} ms)"
                );
            }
            ref other => panic!("tag 1 must hold integer milliseconds, got {other:?}"),
        },
        other => panic!("expected tag 1, got {other:?}"),
    }

    // Control-plane timestamps are tag 1 milliseconds too.
    let summary = call(
        &engine,
        "DescribeStreamSummary",
        &map(&[("StreamName", text("cbor"))]),
    )
    .await
    .unwrap();
    let created_at = summary
        .get("StreamDescriptionSummary")
        .get("StreamCreationTimestamp");
    assert!(
        matches!(created_at, Item::Tag(1, ms) if matches!(**ms, Item::Int(ms) if (ms as i64 - before).abs() < 60_000)),
        "{created_at:?}"
    );
}

#[tokio::test]
async fn put_records_and_json_clients_see_the_same_bytes() {
    let engine = TestEngine::start().await;
    engine.create_stream("mixed", 1).await;
    let entry = |data: &[u8]| map(&[("Data", bytes(data)), ("PartitionKey", text("k"))]);
    let mut records = Vec::new();
    head(&mut records, 4, 2);
    records.extend(entry(b"\x00\x01binary"));
    records.extend(entry(&[]));
    let put = call(
        &engine,
        "PutRecords",
        &map(&[("StreamName", text("mixed")), ("Records", records)]),
    )
    .await
    .unwrap();
    assert_eq!(put.get("FailedRecordCount"), &Item::Int(0));
    assert_eq!(put.get("Records").array().len(), 2);
    // A JSON client (the Rust SDK) reads what a CBOR client wrote.
    let read = engine.read_all("mixed", "shardId-000000000000").await;
    let data: Vec<&[u8]> = read.iter().map(|r| r.data.as_ref()).collect();
    assert_eq!(data, [&b"\x00\x01binary"[..], b""]);
}

#[tokio::test]
async fn at_timestamp_takes_tag_1_milliseconds() {
    let (engine, clock) = TestEngine::with_manual_clock().await;
    engine.create_stream("when", 1).await;
    engine.put("when", "k", b"early").await;
    clock.advance(10_000);
    let boundary = 1_750_000_000_000 + 10_000;
    engine.put("when", "k", b"late").await;
    clock.advance(10_000);

    let it = iterator(
        &engine,
        "when",
        &[
            ("ShardIteratorType", text("AT_TIMESTAMP")),
            ("Timestamp", timestamp_ms(boundary)),
        ],
    )
    .await;
    let late = records(&engine, &it).await;
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].get("Data"), &Item::Bytes(b"late".to_vec()));
    assert_eq!(
        late[0].get("ApproximateArrivalTimestamp"),
        &Item::Tag(1, Box::new(Item::Int(i128::from(boundary))))
    );

    // One millisecond later excludes it.
    let it = iterator(
        &engine,
        "when",
        &[
            ("ShardIteratorType", text("AT_TIMESTAMP")),
            ("Timestamp", timestamp_ms(boundary + 1)),
        ],
    )
    .await;
    assert!(records(&engine, &it).await.is_empty());

    // A future instant is refused, and the message shows the milliseconds as sent.
    let future = boundary + 3_600_000;
    let reply = post(
        &engine,
        "GetShardIterator",
        &map(&[
            ("StreamName", text("when")),
            ("ShardId", text("shardId-000000000000")),
            ("ShardIteratorType", text("AT_TIMESTAMP")),
            ("Timestamp", timestamp_ms(future)),
        ]),
        true,
    )
    .await;
    assert_eq!(reply.status, 400);
    let error = decode(&reply.body);
    assert_eq!(error.get("__type").text(), "InvalidArgumentException");
    let message = error.get("message").text();
    assert!(
        message.contains(&format!("timestampInMillis: {future},")),
        "{message}"
    );
}

#[tokio::test]
async fn errors_come_back_as_cbor_maps() {
    let engine = TestEngine::start().await;
    let cases: [(&str, Vec<u8>, bool, u16, &str); 4] = [
        (
            "GetShardIterator",
            map(&[
                ("StreamName", text("missing")),
                ("ShardId", text("shardId-000000000000")),
                ("ShardIteratorType", text("LATEST")),
            ]),
            true,
            400,
            "ResourceNotFoundException",
        ),
        (
            "PutRecord",
            // A map announcing three entries and ending after one.
            vec![0xa3, 0x61, b'a', 0x01],
            true,
            400,
            "SerializationException",
        ),
        (
            "Frobnicate",
            map(&[]),
            true,
            400,
            "UnknownOperationException",
        ),
        (
            "ListStreams",
            map(&[]),
            false,
            403,
            "MissingAuthenticationTokenException",
        ),
    ];
    for (operation, body, signed, want_status, want_code) in cases {
        let reply = post(&engine, operation, &body, signed).await;
        assert_eq!(reply.status, want_status, "{operation}");
        assert!(reply.head.contains(&format!("content-type: {CBOR}")));
        assert!(reply.head.contains(&format!(
            "x-amzn-errortype: {}",
            want_code.to_ascii_lowercase()
        )));
        let error = decode(&reply.body);
        assert_eq!(error.get("__type").text(), want_code);
        assert!(!error.get("message").text().is_empty());
    }
    let reply = post(
        &engine,
        "DescribeStreamSummary",
        &map(&[("StreamName", text("missing"))]),
        true,
    )
    .await;
    assert_eq!(
        decode(&reply.body).get("message").text(),
        "Stream missing under account 000000000000 not found."
    );
    // The engine still answers JSON clients.
    engine.client.list_streams().send().await.unwrap();
}

/// One event-stream message: its string headers and payload (checksums are the unit tests' job).
struct Message {
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

/// Takes the complete messages off the front of `buffer`.
fn take_messages(buffer: &mut Vec<u8>) -> Vec<Message> {
    let word = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let mut messages = Vec::new();
    while buffer.len() >= 12 && buffer.len() >= word(buffer, 0) {
        let total = word(buffer, 0);
        let message: Vec<u8> = buffer.drain(..total).collect();
        let headers_end = 12 + word(&message, 4);
        let mut rest = &message[12..headers_end];
        let mut headers = Vec::new();
        while let Some((&name_len, after)) = rest.split_first() {
            let (name, after) = after.split_at(usize::from(name_len));
            assert_eq!(after[0], 7, "string header");
            let len = usize::from(u16::from_be_bytes([after[1], after[2]]));
            let value = &after[3..3 + len];
            headers.push((
                String::from_utf8(name.to_vec()).unwrap(),
                String::from_utf8(value.to_vec()).unwrap(),
            ));
            rest = &after[3 + len..];
        }
        let payload = message[headers_end..total - 4].to_vec();
        messages.push(Message { headers, payload });
    }
    messages
}

#[tokio::test]
async fn subscribe_to_shard_speaks_cbor_to_cbor_clients() {
    let engine = TestEngine::start().await;
    engine.create_stream("fan", 1).await;
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/fan";
    let registered = call(
        &engine,
        "RegisterStreamConsumer",
        &map(&[("StreamARN", text(arn)), ("ConsumerName", text("java"))]),
    )
    .await
    .unwrap();
    let consumer = registered.get("Consumer");
    assert!(matches!(
        consumer.get("ConsumerCreationTimestamp"),
        Item::Tag(1, _)
    ));
    let consumer_arn = consumer.get("ConsumerARN").text().to_owned();
    let data = b"\x00\xffpushed".to_vec();
    engine.put("fan", "k", &data).await;

    let socket = TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(socket))
        .await
        .unwrap();
    tokio::spawn(connection);
    let body = map(&[
        ("ConsumerARN", text(&consumer_arn)),
        ("ShardId", text("shardId-000000000000")),
        ("StartingPosition", map(&[("Type", text("TRIM_HORIZON"))])),
    ]);
    let request = http::Request::post("/")
        .header("host", "localhost")
        .header("content-type", CBOR)
        .header("x-amz-target", "Kinesis_20131202.SubscribeToShard")
        .header("authorization", SIGNED)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    let mut messages = Vec::new();
    while messages.len() < 2 {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("events in time")
            .expect("the stream is open")
            .unwrap();
        if let Ok(chunk) = frame.into_data() {
            buffer.extend_from_slice(&chunk);
            messages.extend(take_messages(&mut buffer));
        }
    }
    assert_eq!(messages[0].header(":event-type"), "initial-response");
    assert_eq!(decode(&messages[0].payload), Item::Map(Vec::new()));
    let event = &messages[1];
    assert_eq!(event.header(":message-type"), "event");
    assert_eq!(event.header(":event-type"), "SubscribeToShardEvent");
    assert_eq!(event.header(":content-type"), CBOR);
    let event = decode(&event.payload);
    let records = event.get("Records").array();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].get("Data"), &Item::Bytes(data));
    assert!(matches!(
        records[0].get("ApproximateArrivalTimestamp"),
        Item::Tag(1, ms) if matches!(**ms, Item::Int(ms) if (ms as i64 - now_ms()).abs() < 60_000)
    ));
    assert!(matches!(
        event.get("ContinuationSequenceNumber"),
        Item::Text(_)
    ));
}

#[tokio::test]
async fn faults_aimed_at_a_stream_hit_cbor_requests_too() {
    // The fault names a stream, which the engine reads from the (translated) body.
    let rule = FaultRule::new("DescribeStreamSummary", Fault::Throttle).on_stream("hot");
    let engine = TestEngine::with(Engine::builder().fault(rule)).await;
    engine.create_stream("hot", 1).await;
    engine.create_stream("cold", 1).await;
    let reply = post(
        &engine,
        "DescribeStreamSummary",
        &map(&[("StreamName", text("hot"))]),
        true,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        decode(&reply.body).get("__type").text(),
        "ProvisionedThroughputExceededException"
    );
    call(
        &engine,
        "DescribeStreamSummary",
        &map(&[("StreamName", text("cold"))]),
    )
    .await
    .unwrap();
}

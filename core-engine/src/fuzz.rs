//! The entry point of the whole-request fuzz target in `core-engine/fuzz`: requests through the
//! same routing, decoding, dispatch and encoding the HTTP server uses
//! ([`crate::protocol::handle`]), against one in-memory engine kept between calls. Not a stable
//! API.
//!
//! An input is one or more requests separated by [`SEPARATOR`]. A request is one selector byte,
//! which picks the operation and the wire format ([`target`]), then the body. Before a request
//! is sent, `@ITER@` in its body is replaced by the last shard iterator an answer held and
//! `@TOKEN@` by the last `NextToken`, so that sequences reach past the signed tokens.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};

use crate::engine::Engine;
use crate::protocol::{self, Services};

/// Calls served by one engine before a fresh one replaces it, so that what the fuzzer stores
/// (streams, records, tables) cannot grow without bound.
const CALLS_PER_ENGINE: u32 = 20_000;

/// Separates the requests of one input.
const SEPARATOR: &[u8] = b"\n@@\n";
/// The most requests one input sends.
const MAX_REQUESTS: usize = 16;

const KINESIS_JSON: &str = "application/x-amz-json-1.1";
const KINESIS_CBOR: &str = "application/x-amz-cbor-1.1";
const DYNAMODB_JSON: &str = "application/x-amz-json-1.0";

const KINESIS: &[&str] = &[
    "CreateStream",
    "DeleteStream",
    "DescribeStream",
    "DescribeStreamSummary",
    "ListStreams",
    "ListShards",
    "PutRecord",
    "PutRecords",
    "GetShardIterator",
    "GetRecords",
    "IncreaseStreamRetentionPeriod",
    "DecreaseStreamRetentionPeriod",
    "AddTagsToStream",
    "RemoveTagsFromStream",
    "ListTagsForStream",
    "DescribeLimits",
    "SplitShard",
    "MergeShards",
    "UpdateShardCount",
    "UpdateStreamMode",
    "UpdateMaxRecordSize",
    "RegisterStreamConsumer",
    "DescribeStreamConsumer",
    "ListStreamConsumers",
    "DeregisterStreamConsumer",
    "SubscribeToShard",
];

/// The DynamoDB operations, in the order selector bytes pick them (seeds depend on it).
const DYNAMODB: &[&str] = crate::dynamodb::OPERATIONS;

/// The target header and content type a selector byte picks: each Kinesis operation in JSON,
/// then each in CBOR, then each DynamoDB operation; the rest name an unknown operation.
fn target(selector: u8) -> (String, &'static str) {
    let mut i = usize::from(selector);
    if i < KINESIS.len() {
        return (format!("Kinesis_20131202.{}", KINESIS[i]), KINESIS_JSON);
    }
    i -= KINESIS.len();
    if i < KINESIS.len() {
        return (format!("Kinesis_20131202.{}", KINESIS[i]), KINESIS_CBOR);
    }
    i -= KINESIS.len();
    if i < DYNAMODB.len() {
        return (format!("DynamoDB_20120810.{}", DYNAMODB[i]), DYNAMODB_JSON);
    }
    ("Kinesis_20131202.NoSuchOperation".to_owned(), KINESIS_JSON)
}

fn split(mut data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while let Some(at) = data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        parts.push(&data[..at]);
        data = &data[at + SEPARATOR.len()..];
    }
    parts.push(data);
    parts
}

fn replace(body: &[u8], placeholder: &[u8], value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest
        .windows(placeholder.len())
        .position(|w| w == placeholder)
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(value.as_bytes());
        rest = &rest[at + placeholder.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Remembers the shard iterator and `NextToken` of a JSON answer.
fn remember(answer: &[u8], iterator: &mut String, token: &mut String) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return;
    };
    for key in ["ShardIterator", "NextShardIterator"] {
        if let Some(text) = value.get(key).and_then(|v| v.as_str()) {
            *iterator = text.to_owned();
        }
    }
    if let Some(text) = value.get("NextToken").and_then(|v| v.as_str()) {
        *token = text.to_owned();
    }
}

/// Sends the requests `data` holds (see the module's documentation) and returns the answers'
/// bodies.
///
/// # Panics
/// As [`fuzz_request`].
#[doc(hidden)]
pub fn fuzz_requests(data: &[u8]) -> Vec<Vec<u8>> {
    let (mut iterator, mut token) = (String::new(), String::new());
    let mut answers = Vec::new();
    for request in split(data).into_iter().take(MAX_REQUESTS) {
        let Some((&selector, body)) = request.split_first() else {
            continue;
        };
        let (target, content_type) = target(selector);
        let body = replace(&replace(body, b"@ITER@", &iterator), b"@TOKEN@", &token);
        let answer = fuzz_request(&target, content_type, &body);
        remember(&answer, &mut iterator, &mut token);
        answers.push(answer);
    }
    answers
}

struct FuzzEngine {
    runtime: tokio::runtime::Runtime,
    services: Services,
    calls: u32,
}

impl FuzzEngine {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let engine = Engine::builder()
            .in_memory()
            .stream_create_delay(Duration::ZERO)
            .table_create_delay(Duration::ZERO)
            .subscription_lifetime(Duration::from_millis(1))
            .build()
            .expect("the default settings are valid");
        // Opening spawns the retention task, which needs the runtime.
        let services = {
            let _entered = runtime.enter();
            engine.open().expect("an in-memory engine opens")
        };
        Self {
            runtime,
            services,
            calls: 0,
        }
    }
}

static ENGINE: Mutex<Option<FuzzEngine>> = Mutex::new(None);

/// Answers one request: `target` is the `X-Amz-Target` header (`Kinesis_20131202.PutRecord`,
/// `DynamoDB_20120810.Query`, …), `content_type` its `Content-Type` (JSON or CBOR), `body`
/// the body as received. Returns the answer's body (empty for an event stream, which is not
/// read, and for a dropped connection).
///
/// # Panics
/// When the engine has a bug the fuzzer should report: a panic while answering, or an answer
/// with status 500 (a DynamoDB panic surfaces as one, since its work runs on the blocking pool).
#[doc(hidden)]
pub fn fuzz_request(target: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut slot = ENGINE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let engine = match slot.as_mut() {
        Some(engine) if engine.calls < CALLS_PER_ENGINE => engine,
        _ => slot.insert(FuzzEngine::new()),
    };
    engine.calls += 1;
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(target) {
        headers.insert("x-amz-target", value);
    }
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
        ),
    );
    let uri = Uri::from_static("/");
    let body = Bytes::copy_from_slice(body);
    let services = &engine.services;
    let answer = engine.runtime.block_on(protocol::handle(
        services,
        &Method::POST,
        &uri,
        &headers,
        body,
    ));
    let Ok(response) = answer else {
        return Vec::new();
    };
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/vnd.amazon.eventstream");
    if streaming {
        return Vec::new();
    }
    let status = response.status();
    let response_body = engine.runtime.block_on(async move {
        use http_body_util::BodyExt as _;
        match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(never) => match never {},
        }
    });
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{target} answered 500: {}",
        String::from_utf8_lossy(&response_body)
    );
    response_body
}

/// The direct CBOR decoders of PutRecords and PutRecord against the JSON translation they
/// replace, for the `cbor_hot_requests` fuzz target: panics if they disagree on `data`. Not a
/// stable API.
#[doc(hidden)]
pub fn fuzz_cbor_requests(data: &[u8]) {
    crate::protocol::cbor::agree::check(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of the fuzz target runs without a panic, a stack overflow or a 500, and the
    /// sequences really reach past the signed tokens.
    #[test]
    fn the_fuzz_seeds_replay_cleanly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/whole_request");
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let answers = fuzz_requests(&std::fs::read(&path).unwrap());
            let all: Vec<String> = answers
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let text = all.join("\n");
            match path.file_name().and_then(|n| n.to_str()) {
                // PutRecord's data, read back through an iterator from the previous answer.
                Some("k_put_get") => assert!(text.contains("aGVsbG8="), "{text}"),
                // The second page, asked for with the first page's NextToken.
                Some("k_list_shards") => assert!(text.contains("shardId-000000000001"), "{text}"),
                Some("d_items") => assert!(text.contains(r#""Item":{"#), "{text}"),
                Some("d_transact") => assert!(text.contains(r#""Responses":[{"Item""#), "{text}"),
                Some("h_long_or_filter") => {
                    assert!(text.contains("Expression size has exceeded"), "{text}")
                }
                // The tags and TTL set by the earlier requests, read back.
                Some("d_control") => {
                    assert!(text.contains(r#"{"Key":"b","Value":""}"#), "{text}");
                    assert!(text.contains(r#""TimeToLiveStatus":"ENABLED""#), "{text}");
                }
                Some("h_nested_33") => assert!(text.contains("Nesting Levels"), "{text}"),
                _ => {}
            }
            seeds += 1;
        }
        assert!(seeds >= 30, "{seeds} seeds in {}", dir.display());
    }

    /// Every seed of the `cbor_hot_requests` target, its truncations and its single-byte
    /// mutations decode the same through the direct decoders and the translation.
    #[test]
    fn the_cbor_hot_request_seeds_agree() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/cbor_hot_requests");
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let seed = std::fs::read(entry.unwrap().path()).unwrap();
            for len in 0..=seed.len() {
                fuzz_cbor_requests(&seed[..len]);
            }
            for at in 0..seed.len() {
                for byte in [0x00, 0x1b, 0x5f, 0x7f, 0x9f, 0xbf, 0xc1, 0xf6, 0xff] {
                    let mut mutated = seed.clone();
                    mutated[at] = byte;
                    fuzz_cbor_requests(&mutated);
                }
            }
            seeds += 1;
        }
        assert!(seeds >= 3, "{seeds} seeds in {}", dir.display());
    }
}

//! An entry point for the whole-request fuzz target in `core-engine/fuzz`: one request body and
//! `X-Amz-Target` through the same routing, decoding, dispatch and encoding the HTTP server
//! uses ([`crate::protocol::handle`]), against one in-memory engine kept between calls. Not a
//! stable API.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};

use crate::engine::Engine;
use crate::protocol::{self, Services};

/// Calls served by one engine before a fresh one replaces it, so that what the fuzzer stores
/// (streams, records, tables) cannot grow without bound.
const CALLS_PER_ENGINE: u32 = 20_000;

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

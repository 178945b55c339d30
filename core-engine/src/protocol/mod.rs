//! The HTTP side: routes a request to an operation by `X-Amz-Target`, decodes its awsJson1.1
//! (or CBOR) body, and encodes the response or the error the way AWS does.

mod admin;
pub(crate) mod cbor;
pub(crate) mod event_stream;
pub(crate) mod json;
mod wire;

pub(crate) use wire::Wire;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

use crate::dynamodb::DynamoDb;
use crate::error::ApiError;
use crate::kinesis::Kinesis;

/// A response body: a whole buffer, or event-stream frames as they come.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// The largest request body accepted. A 10 MiB PutRecords is about 13.4 MiB once base64-encoded.
pub(crate) const MAX_BODY_BYTES: usize = 32 << 20;

const JSON_1_1: &str = "application/x-amz-json-1.1";
const KINESIS_PREFIX: &str = "Kinesis_20131202.";
const SUBSCRIBE_TARGET: &str = "Kinesis_20131202.SubscribeToShard";
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";
const DYNAMODB_PREFIX: &str = "DynamoDB_20120810.";

/// The services the engine serves on its one port, picked by the `X-Amz-Target` prefix.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    pub(crate) kinesis: Arc<Kinesis>,
    pub(crate) dynamodb: Arc<DynamoDb>,
}

/// Answers one HTTP request whose body has been read.
pub(crate) async fn handle(
    services: &Services,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, DropConnection> {
    if uri.path().starts_with(admin::PREFIX) {
        return Ok(admin::handle(services, method, uri.path(), headers, &body));
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let wire = Wire::of(headers);
    if method != Method::POST || target.is_empty() {
        return Ok(wire.error(&ApiError::UnknownOperation(format!(
            "Expected a POST request with an X-Amz-Target header, got {method} with target {target:?}"
        ))));
    }
    if !is_authenticated(headers, uri.query()) {
        return Ok(wire.error(&ApiError::MissingAuthenticationToken(
            "Missing Authentication Token".into(),
        )));
    }
    if let Some(operation) = target.strip_prefix(KINESIS_PREFIX) {
        // Everything past this point (faults included) reads the awsJson1.1 body.
        let body = match wire.request_json(operation, body) {
            Ok(body) => body,
            Err(error) => return Ok(wire.error(&error)),
        };
        let kinesis = &services.kinesis;
        let faults = crate::kinesis::call_faults(kinesis, operation, &body);
        if let Some(error) = crate::kinesis::apply_call_faults(&faults).await? {
            return Ok(wire.error(&error));
        }
        if target == SUBSCRIBE_TARGET {
            let end_early = faults.contains(&crate::faults::Fault::EndSubscription);
            return Ok(match crate::kinesis::subscribe(kinesis, &body, end_early) {
                Ok(frames) => event_stream_response(frames, wire),
                Err(error) => wire.error(&error),
            });
        }
        let answer = match crate::kinesis::dispatch(kinesis, operation, &body).await {
            Ok(body) => wire.success(operation, body),
            Err(error) => wire.error(&error),
        };
        if faults.contains(&crate::faults::Fault::DropAfterApply) {
            return Err(DropConnection);
        }
        return Ok(answer);
    }
    if let Some(operation) = target.strip_prefix(DYNAMODB_PREFIX) {
        let faults = &services.kinesis.faults;
        return crate::dynamodb::serve(&services.dynamodb, faults, operation, body).await;
    }
    Ok(wire.error(&ApiError::UnknownOperation(format!(
        "Unknown target {target:?}: this engine serves {KINESIS_PREFIX}<Operation> and {DYNAMODB_PREFIX}<Operation>"
    ))))
}

/// An injected fault asked to close the connection without answering.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

/// The response for a failed request, in awsJson1.1 (for failures before the request is read).
pub(crate) fn error_response(error: &ApiError) -> Response<Body> {
    Wire::Json.error(error)
}

/// Logs a failed request: server faults as warnings, client mistakes at debug level.
pub(crate) fn log_error(code: &str, status: u16, error: &dyn std::fmt::Display) {
    if status >= 500 {
        tracing::warn!(code, %error, "request failed");
    } else {
        tracing::debug!(code, %error, "request rejected");
    }
}

/// A response with AWS's headers: the request id, and the error type on failures.
pub(crate) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    error_type: Option<&str>,
) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        out.insert("x-amzn-RequestId", id);
    }
    if let Some(code) = error_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        out.insert("x-amzn-ErrorType", code);
    }
    response
}

/// A streaming answer: the frames of a subscription, sent as they are produced. No length is
/// set, so HTTP/1.1 uses chunked encoding and HTTP/2 data frames.
fn event_stream_response(frames: crate::kinesis::EventFrames, wire: Wire) -> Response<Body> {
    let chunks = futures::stream::unfold(frames, move |mut frames| async move {
        let frame = frames.recv().await?;
        Some((Ok(Frame::data(wire.event(frame))), frames))
    });
    let mut response = Response::new(StreamBody::new(chunks).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-RequestId", id);
    }
    response
}

/// Whether the request carries SigV4 credentials, in a header or the query string. Signatures
/// are not checked: any credentials are accepted.
fn is_authenticated(headers: &HeaderMap, query: Option<&str>) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || query.is_some_and(|q| q.split('&').any(|p| p.starts_with("X-Amz-Credential=")))
}

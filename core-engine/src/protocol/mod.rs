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

use crate::auth::{Incoming, Principal, Verifier};
use crate::dynamodb::DynamoDb;
use crate::error::ApiError;
use crate::kinesis::Kinesis;

/// A response body: a whole buffer, or event-stream frames as they come.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// The largest request body accepted. A 10 MiB PutRecords is about 13.4 MiB once base64-encoded.
pub(crate) const MAX_BODY_BYTES: usize = 32 << 20;

const JSON_1_1: &str = "application/x-amz-json-1.1";
const JSON_1_0: &str = "application/x-amz-json-1.0";
const KINESIS_PREFIX: &str = "Kinesis_20131202.";
const SUBSCRIBE_TARGET: &str = "Kinesis_20131202.SubscribeToShard";
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";
const DYNAMODB_PREFIX: &str = "DynamoDB_20120810.";
/// What Kinesis and DynamoDB say to a request without credentials.
const KINESIS_MISSING: &str = "Missing Authentication Token";
const DYNAMODB_MISSING: &str = "Request is missing Authentication Token";

/// The services the engine serves on its one port, picked by the `X-Amz-Target` prefix.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    pub(crate) kinesis: Arc<Kinesis>,
    pub(crate) dynamodb: Arc<DynamoDb>,
    /// CloudWatch metrics (PutMetricData), kept for a while.
    pub(crate) cloudwatch: Arc<crate::cloudwatch::CloudWatch>,
    /// Verifies signatures and access rules; `None` accepts any credentials.
    pub(crate) auth: Option<Arc<Verifier>>,
    /// Whether the `/_shardline/` endpoints are served at all.
    pub(crate) admin_endpoints: bool,
    /// The page's rate sampler and the extra `/metrics` sections.
    pub(crate) observe: Arc<crate::observe::Observe>,
}

/// Answers one HTTP request whose body has been read.
pub(crate) async fn handle(
    services: &Services,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, DropConnection> {
    let request = Incoming {
        method,
        uri,
        headers,
        body: &body,
    };
    if let Some(answer) = crate::observe::serve(services, &request) {
        return Ok(answer);
    }
    if uri.path().starts_with(admin::PREFIX) {
        return Ok(admin::serve(services, &request));
    }
    if let Some(answer) = crate::cloudwatch::serve(services, &request) {
        return Ok(answer);
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
    if let Some(operation) = target.strip_prefix(KINESIS_PREFIX) {
        let principal = match authenticate(services, &request, "kinesis", KINESIS_MISSING) {
            Ok(principal) => principal,
            Err(error) => return Ok(wire.error(&error)),
        };
        let kinesis = &services.kinesis;
        let principal = principal.filter(Principal::has_rules);
        // The hot CBOR operations read their CBOR body directly; the awsJson1.1 body is only
        // made for the access rules and faults, which read it.
        let direct = (wire == Wire::Cbor && cbor::is_direct(operation)).then(|| body.clone());
        let json_needed = direct.is_none() || principal.is_some() || !kinesis.faults.is_empty();
        // Everything past this point (faults included) reads the awsJson1.1 body.
        let body = match json_needed.then(|| wire.request_json(operation, body)) {
            None => Bytes::new(),
            Some(Ok(body)) => body,
            Some(Err(error)) => return Ok(wire.error(&error)),
        };
        if let Some(principal) = principal {
            let resources = crate::auth::resources::kinesis(kinesis, &body);
            if let Err(error) = principal.authorize(&format!("kinesis:{operation}"), &resources) {
                return Ok(wire.error(&error));
            }
        }
        let faults = crate::kinesis::call_faults(kinesis, operation, &body);
        if let Some(error) = crate::kinesis::apply_call_faults(&faults).await? {
            return Ok(wire.error(&error));
        }
        if target == SUBSCRIBE_TARGET {
            let end_early = faults.contains(&crate::faults::Fault::EndSubscription);
            let cbor = wire == Wire::Cbor;
            return Ok(
                match crate::kinesis::subscribe(kinesis, &body, end_early, cbor) {
                    Ok(frames) => event_stream_response(frames),
                    Err(error) => wire.error(&error),
                },
            );
        }
        let answer = match &direct {
            Some(cbor_body) => crate::kinesis::dispatch_cbor(kinesis, operation, cbor_body)
                .await
                .map(|body| wire.encoded(body)),
            None => crate::kinesis::dispatch(kinesis, operation, &body)
                .await
                .map(|body| wire.success(operation, body)),
        }
        .unwrap_or_else(|error| wire.error(&error));
        if faults.contains(&crate::faults::Fault::DropAfterApply) {
            return Err(DropConnection);
        }
        return Ok(answer);
    }
    if let Some(operation) = target.strip_prefix(DYNAMODB_PREFIX) {
        let principal = match authenticate(services, &request, "dynamodb", DYNAMODB_MISSING) {
            Ok(principal) => principal,
            Err(error) => return Ok(dynamodb_auth_error(&error)),
        };
        if let Some(principal) = principal.filter(Principal::has_rules) {
            let config = &services.kinesis.config;
            let resources =
                crate::auth::resources::dynamodb(&config.region, &config.account_id, &body);
            if let Err(error) = principal.authorize(&format!("dynamodb:{operation}"), &resources) {
                return Ok(dynamodb_auth_error(&error));
            }
        }
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
fn event_stream_response(frames: crate::kinesis::EventFrames) -> Response<Body> {
    let chunks = futures::stream::unfold(frames, |mut frames| async move {
        let frame = frames.recv().await?;
        Some((Ok(Frame::data(frame)), frames))
    });
    let mut response = Response::new(StreamBody::new(chunks).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-RequestId", id);
    }
    response
}

/// Authenticates a request to `service`: with verification on, its signature is checked
/// and the key returned; with it off, any credentials pass and only their absence fails.
pub(crate) fn authenticate(
    services: &Services,
    request: &Incoming<'_>,
    service: &str,
    missing: &str,
) -> Result<Option<Principal>, ApiError> {
    match &services.auth {
        Some(verifier) => verifier.verify(request, service, missing).map(Some),
        None if request.has_credentials() => Ok(None),
        None => Err(ApiError::MissingAuthenticationToken(missing.to_owned())),
    }
}

/// An authentication or authorization failure of a DynamoDB request, as DynamoDB answers it:
/// awsJson1.0 with the `com.amazon.coral.service#` type and status 400.
fn dynamodb_auth_error(error: &ApiError) -> Response<Body> {
    log_error(error.code(), 400, error);
    let body = serde_json::json!({
        "__type": format!("com.amazon.coral.service#{}", error.code()),
        "message": error.to_string(),
    })
    .to_string()
    .into_bytes();
    let crc = crc32fast::hash(&body);
    let mut answer = response(StatusCode::BAD_REQUEST, JSON_1_0, body, Some(error.code()));
    answer
        .headers_mut()
        .insert("x-amz-crc32", HeaderValue::from(crc));
    answer
}

//! The HTTP side: routes a request to an operation by `X-Amz-Target`, decodes its awsJson1.1
//! body, and encodes the response or the error the way AWS does.

pub(crate) mod json;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;

use crate::error::ApiError;
use crate::kinesis::Kinesis;

/// The largest request body accepted. A 10 MiB PutRecords is about 13.4 MiB once base64-encoded.
pub(crate) const MAX_BODY_BYTES: usize = 32 << 20;

const JSON_1_1: &str = "application/x-amz-json-1.1";
const KINESIS_PREFIX: &str = "Kinesis_20131202.";

/// Answers one HTTP request whose body has been read.
pub(crate) async fn handle(
    kinesis: &Kinesis,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Response<Full<Bytes>> {
    match route(kinesis, method, headers, query, body).await {
        Ok(body) => response(StatusCode::OK, body, None),
        Err(error) => error_response(&error),
    }
}

/// The response for a failed request.
pub(crate) fn error_response(error: &ApiError) -> Response<Full<Bytes>> {
    if error.status() >= 500 {
        tracing::warn!(code = error.code(), %error, "request failed");
    } else {
        tracing::debug!(code = error.code(), %error, "request rejected");
    }
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    response(status, json::encode_error(error), Some(error.code()))
}

fn response(
    status: StatusCode,
    body: Vec<u8>,
    error_type: Option<&'static str>,
) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        out.insert("x-amzn-RequestId", id);
    }
    if let Some(code) = error_type {
        out.insert("x-amzn-ErrorType", HeaderValue::from_static(code));
    }
    response
}

async fn route(
    kinesis: &Kinesis,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if method != Method::POST || target.is_empty() {
        return Err(ApiError::UnknownOperation(format!(
            "Expected a POST request with an X-Amz-Target header, got {method} with target {target:?}"
        )));
    }
    if !is_authenticated(headers, query) {
        return Err(ApiError::MissingAuthenticationToken(
            "Missing Authentication Token".into(),
        ));
    }
    match target.strip_prefix(KINESIS_PREFIX) {
        Some(operation) => crate::kinesis::dispatch(kinesis, operation, &body).await,
        None => Err(ApiError::UnknownOperation(format!(
            "Unknown target {target:?}: this engine serves {KINESIS_PREFIX}<Operation>"
        ))),
    }
}

/// Whether the request carries SigV4 credentials, in a header or the query string. Signatures
/// are not checked: any credentials are accepted.
fn is_authenticated(headers: &HeaderMap, query: Option<&str>) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || query.is_some_and(|q| q.split('&').any(|p| p.starts_with("X-Amz-Credential=")))
}

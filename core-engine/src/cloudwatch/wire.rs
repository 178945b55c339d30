//! CloudWatch's three wire protocols, as the engine recognises and answers them:
//!
//! - **Smithy RPC v2 CBOR** (current SDKs: aws-sdk-cloudwatch for Rust, botocore since it
//!   listed `smithy-rpc-v2-cbor` first): `POST /service/GraniteServiceVersion20100801/operation/
//!   <Operation>` with `smithy-protocol: rpc-v2-cbor` and a CBOR body; answered in CBOR with the
//!   same header; errors carry `__type` (the shape ID) and `message`.
//! - **awsJson1.0**: `X-Amz-Target: GraniteServiceVersion20100801.<Operation>`.
//! - **awsQuery** (older clients): a form-encoded POST with `Action=<Operation>`, answered in XML.
//!
//! CloudWatch is `@awsQueryCompatible`: the CBOR and JSON errors also carry
//! `x-amzn-query-error: <Code>;<Sender|Receiver>`, from which SDKs take the error code.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde_json::Value;

use super::error::CwError;
use crate::protocol::Body;

/// The path prefix of RPC v2 CBOR requests.
pub(crate) const CBOR_PATH: &str = "/service/GraniteServiceVersion20100801/operation/";
/// The `X-Amz-Target` prefix of awsJson1.0 requests.
pub(crate) const JSON_PREFIX: &str = "GraniteServiceVersion20100801.";
/// The Smithy namespace of CloudWatch's shapes, for `__type`.
const SHAPE_NAMESPACE: &str = "com.amazonaws.cloudwatch#";
const FORM: &str = "application/x-www-form-urlencoded";

/// How a CloudWatch request arrived, and so how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Smithy RPC v2 CBOR.
    Cbor,
    /// awsJson1.0.
    Json,
    /// awsQuery (form in, XML out).
    Query,
}

/// The protocol of a CloudWatch request and its operation (`None` for awsQuery, whose
/// operation is in the body), or `None` if the request is not for CloudWatch.
pub(crate) fn recognise<'a>(
    method: &Method,
    path: &'a str,
    headers: &'a HeaderMap,
) -> Option<(Protocol, Option<&'a str>)> {
    if let Some(operation) = path.strip_prefix(CBOR_PATH) {
        return Some((Protocol::Cbor, Some(operation)));
    }
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    if let Some(operation) = target.and_then(|t| t.strip_prefix(JSON_PREFIX)) {
        return Some((Protocol::Json, Some(operation)));
    }
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with(FORM));
    (method == Method::POST && target.is_none() && form).then_some((Protocol::Query, None))
}

/// A successful answer: `output` is the operation's output as JSON (for awsQuery, the inner
/// XML of its `<Result>` comes from `query_result`).
pub(crate) fn success(
    protocol: Protocol,
    operation: &str,
    output: &Value,
    query_result: &str,
) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (content_type, body) = match protocol {
        Protocol::Cbor => ("application/cbor", to_cbor(output)),
        Protocol::Json => (
            "application/x-amz-json-1.0",
            output.to_string().into_bytes(),
        ),
        Protocol::Query => (
            "text/xml",
            super::query::success_xml(operation, query_result, &request_id).into_bytes(),
        ),
    };
    finish(
        protocol,
        StatusCode::OK,
        content_type,
        body,
        &request_id,
        None,
    )
}

/// An error answer.
pub(crate) fn error(protocol: Protocol, error: &CwError) -> Response<Body> {
    crate::protocol::log_error(&error.code, error.status, error);
    let request_id = uuid::Uuid::new_v4().to_string();
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let fields = serde_json::json!({
        "__type": format!("{SHAPE_NAMESPACE}{}", error.shape()),
        "message": error.message,
    });
    let (content_type, body) = match protocol {
        Protocol::Cbor => ("application/cbor", to_cbor(&fields)),
        Protocol::Json => (
            "application/x-amz-json-1.0",
            fields.to_string().into_bytes(),
        ),
        Protocol::Query => (
            "text/xml",
            super::query::error_xml(error, &request_id).into_bytes(),
        ),
    };
    finish(
        protocol,
        status,
        content_type,
        body,
        &request_id,
        Some(error),
    )
}

fn finish(
    protocol: Protocol,
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    request_id: &str,
    error: Option<&CwError>,
) -> Response<Body> {
    let code = error.map(|e| e.code.as_str());
    let mut response = crate::protocol::response(status, content_type, body, code);
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", id);
    }
    if protocol == Protocol::Cbor {
        headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    if let Some(error) = error.filter(|_| protocol != Protocol::Query) {
        let value = format!("{};{}", error.code, error.fault());
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert("x-amzn-query-error", value);
        }
    }
    response
}

/// The request body with any `Content-Encoding: gzip` undone (the SDKs compress PutMetricData
/// bodies over 10 KiB), at most `limit` bytes once inflated.
pub(crate) fn decoded_body(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, CwError> {
    let encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" => {
            use std::io::Read as _;
            let mut inflated = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| {
                    CwError::malformed(format!("The gzip request body does not inflate: {e}"))
                })?;
            if inflated.len() > limit {
                return Err(CwError::malformed(format!(
                    "The request body inflates to more than {limit} bytes."
                )));
            }
            Ok(inflated.into())
        }
        other => Err(CwError::malformed(format!(
            "Unsupported Content-Encoding {other:?}."
        ))),
    }
}

/// Encodes a JSON value as CBOR (maps with text keys, arrays, text, numbers, booleans, null).
/// Numbers under a `Timestamp` key, and in a list under a `Timestamps` key (CloudWatch's output
/// timestamps, epoch seconds in the JSON), become tag 1 + a float of epoch seconds, as RPC v2
/// CBOR has them.
pub(crate) fn to_cbor(value: &Value) -> Vec<u8> {
    let mut encoder = minicbor::Encoder::new(Vec::new());
    encode(&mut encoder, value, false);
    encoder.into_writer()
}

fn encode(encoder: &mut minicbor::Encoder<Vec<u8>>, value: &Value, timestamp: bool) {
    // Writing to a Vec cannot fail.
    let _ = match value {
        Value::Null => encoder.null().map(|_| ()),
        Value::Bool(b) => encoder.bool(*b).map(|_| ()),
        Value::Number(n) if timestamp => encoder
            .tag(minicbor::data::Tag::new(1))
            .and_then(|e| e.f64(n.as_f64().unwrap_or_default()))
            .map(|_| ()),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => encoder.i64(i).map(|_| ()),
            (None, Some(f)) => encoder.f64(f).map(|_| ()),
            (None, None) => encoder.null().map(|_| ()),
        },
        Value::String(s) => encoder.str(s).map(|_| ()),
        Value::Array(items) => {
            let _ = encoder.array(items.len() as u64);
            for item in items {
                encode(encoder, item, timestamp);
            }
            Ok(())
        }
        Value::Object(fields) => {
            let _ = encoder.map(fields.len() as u64);
            for (key, item) in fields {
                let _ = encoder.str(key);
                encode(encoder, item, key == "Timestamp" || key == "Timestamps");
            }
            Ok(())
        }
    };
}

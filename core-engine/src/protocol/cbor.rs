//! `application/x-amz-cbor-1.1`: the Kinesis API in CBOR, which the Java SDKs (v1 and v2, and so
//! the KCL and the KPL's Java side) use by default.
//!
//! The protocol is awsJson1.1 with the body in CBOR instead of JSON: the same operations, member
//! names and errors, with two differences in value encodings:
//! - blobs are byte strings (major type 2), not base64 text;
//! - timestamps are tag 1 (`0xc1`) followed by an **integer of epoch milliseconds**, not a number
//!   of epoch seconds. RFC 8949 defines tag 1 as seconds; AWS uses milliseconds, and a generic
//!   decoder that trusts the RFC lands in the year 55995 (LocalStack issue 10037).
//!
//! It is served as a translation layer around the JSON service: [`cbor_request_to_json`] turns
//! the request body into the JSON body the operation would have received, and
//! [`json_response_to_cbor`] turns the JSON response back into CBOR, using a table of which
//! members are blobs and timestamps ([`shapes`]) rather than guessing from the values. Both are
//! pure functions over byte slices. SubscribeToShard's event-stream messages get the same
//! treatment one by one ([`event_message_to_cbor`]): the Java SDK reads event payloads with the
//! protocol's own parser, so a CBOR subscriber needs CBOR events.
//!
//! The hot paths skip the translation: PutRecords and PutRecord requests are decoded straight
//! into the JSON path's request forms ([`requests`]), and PutRecord(s) and GetRecords answers
//! and `SubscribeToShardEvent`s are written as CBOR directly ([`writer`]), byte for byte what
//! the translation would make of the JSON answer. Every other operation, and the rare event
//! messages, still go through the translation.

pub(crate) mod agree;
mod decode;
mod encode;
pub(crate) mod requests;
pub(crate) mod shapes;
mod time;
pub(crate) mod writer;

#[cfg(test)]
mod direct_tests;
#[cfg(test)]
mod tests;

pub(crate) use shapes::{Shape, input_shape, output_shape};

use super::event_stream;
use crate::error::ApiError;

/// The `Content-Type` of CBOR requests and responses.
pub(crate) const CONTENT_TYPE: &str = "application/x-amz-cbor-1.1";

/// Converts a CBOR request body into the equivalent awsJson1.1 body.
///
/// Byte strings become base64 strings; tag 1 values become epoch seconds; so do bare numbers in
/// the timestamp members of `shape` (integers are milliseconds, floats seconds, see `time`).
/// Maps, arrays, text, integers, floats, booleans and null (and undefined) keep their meaning;
/// indefinite-length items are accepted. An empty body stays empty (no members).
///
/// # Errors
/// `SerializationException` for anything that is not a well-formed CBOR map with text keys,
/// nested at most 32 deep, with no bytes after it, and no tags but 1 and 55799.
pub(crate) fn cbor_request_to_json(body: &[u8], shape: Shape) -> Result<Vec<u8>, ApiError> {
    decode::to_json(body, shape)
}

/// Converts an awsJson1.1 response body into CBOR: blob members of `shape` become byte strings
/// and its timestamp members tag 1 + integer epoch milliseconds. An empty body stays empty.
///
/// # Errors
/// `InternalFailure` if `json` is not valid JSON or a blob member is not base64, which the
/// engine's own responses never are.
pub(crate) fn json_response_to_cbor(json: &[u8], shape: Shape) -> Result<Vec<u8>, ApiError> {
    encode::from_json(json, shape)
}

/// The body of an error response: the CBOR map `{"__type": code, "message": text}`.
pub(crate) fn encode_error(error: &ApiError) -> Vec<u8> {
    let message = error.to_string();
    let mut out = Vec::with_capacity(message.len() + 64);
    encode::head(&mut out, encode::MAP, 2);
    encode::text(&mut out, "__type");
    encode::text(&mut out, error.code());
    encode::text(&mut out, "message");
    encode::text(&mut out, &message);
    out
}

/// The headers of an event message of `event_type` with a CBOR payload.
pub(crate) fn event_headers(event_type: &str) -> [(&str, &str); 3] {
    [
        (":message-type", "event"),
        (":event-type", event_type),
        (":content-type", CONTENT_TYPE),
    ]
}

/// Whether `operation` is served over CBOR without the translation (see the module's doc).
pub(crate) fn is_direct(operation: &str) -> bool {
    matches!(operation, "PutRecord" | "PutRecords" | "GetRecords")
}

/// Re-encodes one event-stream message for a CBOR subscriber: its JSON payload becomes CBOR
/// (`SubscribeToShardEvent` records with byte-string data and tag-1 arrival times) and its
/// `:content-type` header says so. `None` if `message` is not exactly one valid message with a
/// JSON payload.
pub(crate) fn event_message_to_cbor(message: &[u8]) -> Option<Vec<u8>> {
    let (decoded, used) = event_stream::decode(message).ok()?;
    if used != message.len() {
        return None;
    }
    let header = |name: &str| {
        decoded
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let shape = shapes::event_shape(header(":event-type").unwrap_or_default());
    let payload = json_response_to_cbor(&decoded.payload, shape).ok()?;
    let headers: Vec<(&str, &str)> = decoded
        .headers
        .iter()
        .map(|(name, value)| match name.as_str() {
            ":content-type" => (":content-type", CONTENT_TYPE),
            _ => (name.as_str(), value.as_str()),
        })
        .collect();
    Some(event_stream::encode(&headers, &payload))
}

//! The engine's own HTTP endpoints, beside the AWS API: fault injection.
//!
//! - `GET /_shardline/faults`: the rules in force, as a JSON array.
//! - `POST /_shardline/faults`: add the rule in the body (see [`crate::faults::FaultRule`]).
//! - `DELETE /_shardline/faults`: remove every rule.

use bytes::Bytes;
use http::{Method, Response, StatusCode};

use super::{Body, response};
use crate::faults::FaultRule;

/// Paths under this prefix are the engine's own, never AWS operations.
pub(crate) const PREFIX: &str = "/_shardline/";
const JSON: &str = "application/json";

pub(crate) fn handle(
    services: &super::Services,
    method: &Method,
    path: &str,
    body: &Bytes,
) -> Response<Body> {
    let faults = &services.kinesis.faults;
    let reply = |status: StatusCode, value: serde_json::Value| {
        response(status, JSON, value.to_string().into_bytes(), None)
    };
    match (method, path.trim_end_matches('/')) {
        (&Method::GET, "/_shardline/faults") => {
            reply(StatusCode::OK, serde_json::json!(faults.rules()))
        }
        (&Method::DELETE, "/_shardline/faults") => {
            faults.clear();
            reply(StatusCode::OK, serde_json::json!([]))
        }
        (&Method::POST, "/_shardline/faults") => {
            let added = serde_json::from_slice::<FaultRule>(body)
                .map_err(|e| e.to_string())
                .and_then(|rule| faults.add(rule));
            match added {
                Ok(()) => reply(StatusCode::OK, serde_json::json!(faults.rules())),
                Err(message) => reply(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({ "message": message }),
                ),
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "message": format!("no endpoint {method} {path}") }),
        ),
    }
}

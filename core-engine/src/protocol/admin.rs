//! The engine's own HTTP endpoints, beside the AWS API: fault injection.
//!
//! - `GET /_shardline/faults`: the rules in force, as a JSON array.
//! - `POST /_shardline/faults`: add the rule in the body (see [`crate::faults::FaultRule`]),
//!   sent as `Content-Type: application/json`.
//! - `DELETE /_shardline/faults`: remove every rule.
//!
//! When the engine verifies signatures, these requests must be signed like any other, for the
//! service `shardline` and the engine's region, with a key marked `admin`; other keys get 403
//! `AccessDeniedException`, and bad signatures the same errors as API calls, with status 403.
//! [`EngineBuilder::admin_endpoints(false)`](crate::EngineBuilder::admin_endpoints) (`serve
//! --no-admin`) removes the endpoints: every path answers 404.
//!
//! Without verification the endpoints need no credentials, so web pages must not reach them: a request a browser
//! sends on behalf of another site is refused (403), whether it says so with `Sec-Fetch-Site`
//! or with an `Origin` other than the engine's own (`http://` and the `Host` it was reached
//! at, which must be `localhost` or an IP address, so a name rebound to this machine does not
//! count). Requiring JSON also means a browser must ask before posting, which it never gets
//! an answer to. Bad rules are answered 400 with the reason (see
//! [`FaultRule::validate`](crate::faults::FaultRule::validate)).

use http::{HeaderMap, Method, Response, StatusCode, header};

use super::{Body, response};
use crate::auth::{ADMIN_SERVICE, Incoming};
use crate::error::ApiError;
use crate::faults::FaultRule;

/// Paths under this prefix are the engine's own, never AWS operations.
pub(crate) const PREFIX: &str = "/_shardline/";
const JSON: &str = "application/json";

/// The largest rule accepted, in bytes.
const MAX_RULE_BYTES: usize = 64 << 10;

/// Serves an admin request: 404 when the endpoints are off, 403 when verification is on and
/// the request is not signed by an admin key.
pub(crate) fn serve(services: &super::Services, request: &Incoming<'_>) -> Response<Body> {
    let path = request.uri.path();
    if !services.admin_endpoints {
        let message = format!("no endpoint {path}: the admin endpoints are switched off");
        return response(
            StatusCode::NOT_FOUND,
            JSON,
            serde_json::json!({ "message": message })
                .to_string()
                .into_bytes(),
            None,
        );
    }
    if let Some(verifier) = &services.auth {
        let denied = match verifier.verify(request, ADMIN_SERVICE, "Missing Authentication Token") {
            Ok(principal) if principal.is_admin() => None,
            Ok(principal) => Some(ApiError::AccessDenied(format!(
                "User: {} is not authorized to perform: shardline:{} on resource: {path} \
                 because the access key is not marked admin",
                principal.arn(),
                request.method
            ))),
            Err(error) => Some(error),
        };
        if let Some(error) = denied {
            tracing::debug!(code = error.code(), %error, "refused an admin request");
            let body = serde_json::json!({ "__type": error.code(), "message": error.to_string() });
            return response(
                StatusCode::FORBIDDEN,
                JSON,
                body.to_string().into_bytes(),
                Some(error.code()),
            );
        }
    }
    handle(
        services,
        request.method,
        path,
        request.headers,
        request.body,
    )
}

fn handle(
    services: &super::Services,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Body> {
    let faults = &services.kinesis.faults;
    let reply = |status: StatusCode, value: serde_json::Value| {
        response(status, JSON, value.to_string().into_bytes(), None)
    };
    let refuse = |status: StatusCode, message: String| {
        tracing::debug!(%status, message, "refused an admin request");
        reply(status, serde_json::json!({ "message": message }))
    };
    if let Err(message) = same_origin(headers) {
        return refuse(StatusCode::FORBIDDEN, message);
    }
    match (method, path.trim_end_matches('/')) {
        (&Method::GET, "/_shardline/faults") => {
            reply(StatusCode::OK, serde_json::json!(faults.rules()))
        }
        (&Method::DELETE, "/_shardline/faults") => {
            faults.clear();
            reply(StatusCode::OK, serde_json::json!([]))
        }
        (&Method::POST, "/_shardline/faults") => {
            if !is_json(headers) {
                return refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("a fault rule must be sent as Content-Type: {JSON}"),
                );
            }
            if body.len() > MAX_RULE_BYTES {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("a fault rule must be at most {MAX_RULE_BYTES} bytes"),
                );
            }
            let added = serde_json::from_slice::<FaultRule>(body)
                .map_err(|e| e.to_string())
                .and_then(|rule| faults.add(rule));
            match added {
                Ok(()) => reply(StatusCode::OK, serde_json::json!(faults.rules())),
                Err(message) => refuse(StatusCode::BAD_REQUEST, message),
            }
        }
        _ => refuse(
            StatusCode::NOT_FOUND,
            format!("no endpoint {method} {path}"),
        ),
    }
}

/// Whether the body is declared as JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(JSON))
}

/// Refuses requests a browser makes for another site. Clients other than browsers send
/// neither header and pass.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let text = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("<not text>"))
    };
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(format!(
            "cross-origin requests are refused (Sec-Fetch-Site: {site})"
        ));
    }
    let Some(origin) = text(header::ORIGIN.as_str()) else {
        return Ok(());
    };
    let host = text(header::HOST.as_str()).unwrap_or_default();
    let own = format!("http://{host}");
    if !host.is_empty() && origin.eq_ignore_ascii_case(&own) && is_local_name(host) {
        return Ok(());
    }
    Err(format!(
        "cross-origin requests are refused (Origin {origin} is not this engine's origin)"
    ))
}

/// Whether a `Host` header names this machine by address or as `localhost` (with any port).
fn is_local_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // An IPv6 literal, `[::1]:4567`.
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn only_the_engines_own_origin_passes() {
        let ok = |pairs| same_origin(&headers(pairs)).is_ok();
        assert!(ok(&[("host", "127.0.0.1:4567")]));
        assert!(ok(&[
            ("host", "127.0.0.1:4567"),
            ("origin", "http://127.0.0.1:4567")
        ]));
        assert!(ok(&[
            ("host", "localhost:4567"),
            ("origin", "http://localhost:4567")
        ]));
        assert!(ok(&[
            ("host", "[::1]:4567"),
            ("origin", "http://[::1]:4567")
        ]));
        assert!(ok(&[
            ("host", "127.0.0.1:4567"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(!ok(&[
            ("host", "127.0.0.1:4567"),
            ("origin", "http://evil.example")
        ]));
        assert!(!ok(&[
            ("host", "127.0.0.1:4567"),
            ("origin", "http://127.0.0.1:3000")
        ]));
        assert!(!ok(&[("host", "127.0.0.1:4567"), ("origin", "null")]));
        // A name rebound to this machine: same origin to the browser, refused here.
        assert!(!ok(&[
            ("host", "rebound.example:4567"),
            ("origin", "http://rebound.example:4567")
        ]));
        assert!(!ok(&[
            ("host", "127.0.0.1:4567"),
            ("sec-fetch-site", "cross-site")
        ]));
        assert!(!ok(&[
            ("host", "127.0.0.1:4567"),
            ("sec-fetch-site", "same-site")
        ]));
    }

    #[test]
    fn json_is_recognised_with_parameters() {
        assert!(is_json(&headers(&[("content-type", "application/json")])));
        assert!(is_json(&headers(&[(
            "content-type",
            "Application/JSON; charset=utf-8"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
        assert!(!is_json(&headers(&[])));
    }
}

//! Signing a request for the engine, for tools and tests that call the admin endpoints (or
//! anything else) without an AWS SDK.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Request};

use super::{sigv4, time};

/// Signs `request` with SigV4 in its `Authorization` header: sets `host` (from the URI if
/// absent), `x-amz-date` and, given a session token, `x-amz-security-token`, then signs every
/// header present and the body. For the admin endpoints, `service` is
/// [`ADMIN_SERVICE`](super::ADMIN_SERVICE) and `region` the engine's.
///
/// # Errors
/// A message if a header value cannot be built (a key id or token with control characters).
pub fn sign_request<B: AsRef<[u8]>>(
    request: &mut Request<B>,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
    region: &str,
    service: &str,
    at: SystemTime,
) -> Result<(), String> {
    let epoch_ms = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let amz_date = time::format_amz_date(epoch_ms);
    let value = |text: &str| HeaderValue::from_str(text).map_err(|e| e.to_string());
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    let headers = request.headers_mut();
    if !headers.contains_key(http::header::HOST)
        && let Some(authority) = authority
    {
        headers.insert(http::header::HOST, value(&authority)?);
    }
    headers.insert("x-amz-date", value(&amz_date)?);
    if let Some(token) = session_token {
        headers.insert("x-amz-security-token", value(token)?);
    }
    headers.remove(http::header::AUTHORIZATION);
    let pairs: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let parts = sigv4::RequestParts {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: request.uri().query().unwrap_or_default(),
        headers: &pairs,
    };
    let creq =
        sigv4::canonical_request(&parts, &names, &sigv4::hex_sha256(request.body().as_ref()));
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/{service}/{}", sigv4::TERMINATOR);
    let key = sigv4::signing_key(secret_access_key, date, region, service);
    let signature = sigv4::signature(&key, &sigv4::string_to_sign(&amz_date, &scope, &creq));
    let authorization = format!(
        "{} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={signature}",
        sigv4::ALGORITHM,
        names.join(";")
    );
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, value(&authorization)?);
    Ok(())
}

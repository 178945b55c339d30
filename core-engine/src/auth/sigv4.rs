//! The Signature Version 4 algorithm, as the server sees it: rebuilding the canonical request
//! from what arrived, the string to sign, the signing key and the signature.
//!
//! Follows the AWS SigV4 specification for services other than S3: the path is normalised
//! (dot segments removed, empty segments collapsed) and URI-encoded again (the path on the wire
//! is already encoded once, so this is the "double encoding" the SDKs do); query parameters are
//! decoded, re-encoded and sorted; header names are lowercased and sorted, their values
//! trimmed with inner runs of whitespace collapsed, and repeated headers joined with commas.
//! The AWS test suite as shipped in botocore checks these functions (see the tests).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The only algorithm accepted.
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of a credential scope.
pub(crate) const TERMINATOR: &str = "aws4_request";
/// The payload hash of a request whose body is not signed.
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

type HmacSha256 = Hmac<Sha256>;

/// The hex SHA-256 of `bytes`, as used for payload hashes and in the string to sign.
pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Decodes lowercase or uppercase hex; `None` if it is not hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// URI-encodes `text` as SigV4 does: every byte but the unreserved characters
/// (`A-Z a-z 0-9 - _ . ~`) becomes `%XY` with uppercase hex; `/` too unless `keep_slash`.
pub(crate) fn uri_encode(text: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XY` escapes; anything else (including `+`) is kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The canonical URI of a path as received: normalised (`.` and `..` segments resolved, empty
/// segments dropped, a trailing slash kept) and URI-encoded with `/` kept.
pub(crate) fn canonical_uri(path: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut normalised = String::from("/");
    normalised.push_str(&segments.join("/"));
    let ends_in_dir = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if ends_in_dir && !segments.is_empty() {
        normalised.push('/');
    }
    uri_encode(normalised.as_bytes(), true)
}

/// The query parameters of `query` as decoded `(name, value)` pairs, in order.
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                String::from_utf8_lossy(&percent_decode(name)).into_owned(),
                String::from_utf8_lossy(&percent_decode(value)).into_owned(),
            )
        })
        .collect()
}

/// The canonical query string: each name and value re-encoded, sorted by name then value,
/// joined with `&`. `X-Amz-Signature` is left out (it cannot sign itself).
pub(crate) fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name), false),
                uri_encode(&percent_decode(value), false),
            )
        })
        .filter(|(name, _)| name != "X-Amz-Signature")
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as signed: trimmed, each run of whitespace inside it one space.
pub(crate) fn canonical_header_value(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .split_ascii_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the canonical request is built from, as received.
#[derive(Debug)]
pub(crate) struct RequestParts<'a> {
    /// The HTTP method, such as `POST`.
    pub(crate) method: &'a str,
    /// The path as it arrived (still percent-encoded).
    pub(crate) path: &'a str,
    /// The query string as it arrived, without `?`.
    pub(crate) query: &'a str,
    /// Every header as `(lowercase name, value)`, in arrival order.
    pub(crate) headers: &'a [(String, Vec<u8>)],
}

/// The canonical request for `parts`, signing the (lowercase, sorted) `signed_headers` and the
/// given payload hash.
pub(crate) fn canonical_request(
    parts: &RequestParts<'_>,
    signed_headers: &[&str],
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(parts.method);
    out.push('\n');
    out.push_str(&canonical_uri(parts.path));
    out.push('\n');
    out.push_str(&canonical_query(parts.query));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = parts
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| canonical_header_value(v))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// The string to sign: algorithm, request time, credential scope and the hash of the
/// canonical request.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex_sha256(canonical_request.as_bytes())
    )
}

fn hmac(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac
}

/// The signing key derived from a secret for one day, region and service.
pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes()).finalize();
    let k_region = hmac(&k_date.into_bytes(), region.as_bytes()).finalize();
    let k_service = hmac(&k_region.into_bytes(), service.as_bytes()).finalize();
    hmac(&k_service.into_bytes(), TERMINATOR.as_bytes())
        .finalize()
        .into_bytes()
        .to_vec()
}

/// The signature of `string_to_sign`, in hex.
pub(crate) fn signature(signing_key: &[u8], string_to_sign: &str) -> String {
    hex(&hmac(signing_key, string_to_sign.as_bytes())
        .finalize()
        .into_bytes())
}

/// Whether `claimed` (hex) is the signature of `string_to_sign`, compared in constant time
/// so that the answer time does not tell how many leading bytes matched.
pub(crate) fn signature_matches(signing_key: &[u8], string_to_sign: &str, claimed: &str) -> bool {
    let Some(claimed) = unhex(claimed) else {
        return false;
    };
    hmac(signing_key, string_to_sign.as_bytes())
        .verify_slice(&claimed)
        .is_ok()
}

#[cfg(test)]
mod tests;

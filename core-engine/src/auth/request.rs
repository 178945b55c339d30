//! Reading the SigV4 elements of a request: from the `Authorization` header, or from the
//! query string of a presigned request. Structural problems are `IncompleteSignatureException`.

use super::{Incoming, sigv4, time};
use crate::error::ApiError;

/// The most seconds a presigned request may be valid for: one week, as in AWS.
const MAX_EXPIRES_S: i64 = 7 * 24 * 3600;

/// The signature elements of one request, with what its canonical request is built from.
#[derive(Debug)]
pub(super) struct Signed {
    pub(super) access_key_id: String,
    pub(super) date: String,
    pub(super) region: String,
    pub(super) service: String,
    pub(super) terminator: String,
    pub(super) signed_headers: Vec<String>,
    pub(super) signature: String,
    pub(super) amz_date: String,
    pub(super) time_ms: i64,
    /// `X-Amz-Expires` of a presigned request; `None` for header signing.
    pub(super) expires_s: Option<i64>,
    pub(super) session_token: Option<String>,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
}

fn incomplete(message: String) -> ApiError {
    ApiError::IncompleteSignature(message)
}

impl Signed {
    /// The signature elements of `request`; `None` if it carries no credentials at all.
    pub(super) fn parse(request: &Incoming<'_>) -> Result<Option<Self>, ApiError> {
        let mut headers: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        // HTTP/2 carries the host as `:authority`, which hyper keeps in the URI.
        if !headers.iter().any(|(n, _)| n == "host")
            && let Some(authority) = request.uri.authority()
        {
            headers.push(("host".into(), authority.as_str().as_bytes().to_vec()));
        }
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let query = request.uri.query().unwrap_or_default();
        let mut signed = if let Some(authorization) = header("authorization") {
            let Some(mut signed) = Self::from_header(&authorization)? else {
                return Ok(None);
            };
            signed.amz_date = header("x-amz-date").ok_or_else(|| {
                incomplete(format!(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a \
                     'Date' header. Authorization={authorization}"
                ))
            })?;
            signed.session_token = header("x-amz-security-token");
            signed
        } else {
            let pairs = sigv4::query_pairs(query);
            let has = |name: &str| pairs.iter().any(|(n, _)| n == name);
            if !has("X-Amz-Algorithm") && !has("X-Amz-Credential") && !has("X-Amz-Signature") {
                return Ok(None);
            }
            Self::from_query(&pairs)?
        };
        signed.time_ms = time::parse_amz_date(&signed.amz_date).ok_or_else(|| {
            incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'. See \
                 http://en.wikipedia.org/wiki/ISO_8601",
                signed.amz_date
            ))
        })?;
        signed.method = request.method.as_str().to_owned();
        signed.path = request.uri.path().to_owned();
        signed.query = query.to_owned();
        signed.headers = headers;
        Ok(Some(signed))
    }

    /// `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
    fn from_header(authorization: &str) -> Result<Option<Self>, ApiError> {
        let trimmed = authorization.trim();
        let (algorithm, rest) = trimmed
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((trimmed, ""));
        if algorithm.is_empty() {
            return Ok(None);
        }
        if algorithm != sigv4::ALGORITHM {
            return Err(incomplete(format!(
                "Unsupported AWS 'algorithm': '{algorithm}'. Authorization={authorization}"
            )));
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(incomplete(format!(
                    "'{part}' not a valid key=value pair (missing equal-sign) in Authorization \
                     header: '{authorization}'."
                )));
            };
            match name.trim() {
                "Credential" => credential = Some(value.trim()),
                "SignedHeaders" => signed_headers = Some(value.trim()),
                "Signature" => signature = Some(value.trim()),
                _ => {}
            }
        }
        let mut missing = String::new();
        for (name, value) in [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ] {
            if value.is_none_or(str::is_empty) {
                missing.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        if !missing.is_empty() {
            return Err(incomplete(format!(
                "{missing}Authorization={authorization}"
            )));
        }
        let mut signed = Self::from_credential(credential.unwrap_or_default())?;
        signed.signed_headers = split_signed_headers(signed_headers.unwrap_or_default());
        signed.signature = signature.unwrap_or_default().to_owned();
        Ok(Some(signed))
    }

    /// `?X-Amz-Algorithm=...&X-Amz-Credential=...&X-Amz-Date=...&X-Amz-Expires=...
    /// &X-Amz-SignedHeaders=...&X-Amz-Signature=...[&X-Amz-Security-Token=...]`.
    fn from_query(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let required = [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Signature",
            "X-Amz-Date",
            "X-Amz-SignedHeaders",
            "X-Amz-Expires",
        ];
        let missing: Vec<&str> = required
            .into_iter()
            .filter(|n| get(n).is_none_or(str::is_empty))
            .collect();
        if !missing.is_empty() {
            return Err(incomplete(format!(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, \
                 X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and \
                 X-Amz-Expires parameters; missing: {}.",
                missing.join(", ")
            )));
        }
        let algorithm = get("X-Amz-Algorithm").unwrap_or_default();
        if algorithm != sigv4::ALGORITHM {
            return Err(incomplete(format!(
                "Unsupported AWS 'algorithm': '{algorithm}'."
            )));
        }
        let expires = get("X-Amz-Expires").unwrap_or_default();
        let expires_s = expires
            .parse::<i64>()
            .ok()
            .filter(|e| (0..=MAX_EXPIRES_S).contains(e))
            .ok_or_else(|| {
                incomplete(format!(
                    "X-Amz-Expires must be a number of seconds from 0 to {MAX_EXPIRES_S} (one \
                     week), got '{expires}'."
                ))
            })?;
        let mut signed = Self::from_credential(get("X-Amz-Credential").unwrap_or_default())?;
        signed.signed_headers =
            split_signed_headers(get("X-Amz-SignedHeaders").unwrap_or_default());
        signed.signature = get("X-Amz-Signature").unwrap_or_default().to_owned();
        signed.amz_date = get("X-Amz-Date").unwrap_or_default().to_owned();
        signed.expires_s = Some(expires_s);
        signed.session_token = get("X-Amz-Security-Token").map(str::to_owned);
        Ok(signed)
    }

    /// `AKID/20150830/us-east-1/kinesis/aws4_request`.
    fn from_credential(credential: &str) -> Result<Self, ApiError> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [id, date, region, service, terminator] = parts[..] else {
            return Err(incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. \
                 keyid/date/region/service/term, got '{credential}'"
            )));
        };
        Ok(Self {
            access_key_id: id.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            terminator: terminator.to_owned(),
            signed_headers: Vec::new(),
            signature: String::new(),
            amz_date: String::new(),
            time_ms: 0,
            expires_s: None,
            session_token: None,
            method: String::new(),
            path: String::new(),
            query: String::new(),
            headers: Vec::new(),
        })
    }

    /// What the canonical request is built from.
    pub(super) fn parts(&self) -> sigv4::RequestParts<'_> {
        sigv4::RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
        }
    }

    /// The payload hashes the signer may have used. With header signing: `UNSIGNED-PAYLOAD`
    /// if `x-amz-content-sha256` says so, else the hash of the body (whatever the header
    /// claims, so that a body cannot be swapped under a signed hash). A presigned request may
    /// have been signed either way, so both are tried.
    pub(super) fn payload_hashes(&self, body: &[u8]) -> Vec<String> {
        let declared = self
            .headers
            .iter()
            .find(|(n, _)| n == "x-amz-content-sha256")
            .map(|(_, v)| v.as_slice());
        if declared == Some(sigv4::UNSIGNED_PAYLOAD.as_bytes()) {
            return vec![sigv4::UNSIGNED_PAYLOAD.into()];
        }
        let hash = sigv4::hex_sha256(body);
        if self.expires_s.is_some() {
            vec![hash, sigv4::UNSIGNED_PAYLOAD.into()]
        } else {
            vec![hash]
        }
    }
}

fn split_signed_headers(list: &str) -> Vec<String> {
    list.split(';')
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

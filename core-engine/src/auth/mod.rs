//! Request authentication (AWS Signature Version 4) and authorization (access rules).
//!
//! Off by default: any credentials are accepted, and only a request with none at all is
//! refused (`MissingAuthenticationToken`). Given [`Credentials`] (the builder's
//! [`credentials`](crate::EngineBuilder::credentials), or `serve --access-key/--secret-key` or
//! `serve --credentials FILE`), the engine verifies every request as AWS does:
//!
//! - the signature, in the `Authorization` header or in the query string (presigned), with
//!   the real SigV4 algorithm; the payload is hashed from the body, or is
//!   `UNSIGNED-PAYLOAD` when `x-amz-content-sha256` says so (or, for a presigned request,
//!   when the signer left it unsigned);
//! - the credential scope: the engine's region (a request signed for another region is
//!   refused, as AWS refuses it), the service (`kinesis`, `dynamodb`, or `shardline` for the
//!   admin endpoints) and `aws4_request`; `host` must be signed;
//! - the time: within 15 minutes of the engine's clock (for a presigned request, also not
//!   past `X-Amz-Expires`);
//! - the access key, and its session token when it has one;
//! - then the key's access [`Rule`]s for the operation and the stream, consumer or table ARN
//!   it touches.
//!
//! Each failure gets AWS's error type and message: `MissingAuthenticationToken`,
//! `IncompleteSignatureException`, `InvalidSignatureException` (a wrong signature, scope or
//! time), `UnrecognizedClientException` (an unknown key or a wrong session token) and
//! `AccessDeniedException`.

mod credentials;
mod request;
pub(crate) mod resources;
mod rules;
mod sign;
pub(crate) mod sigv4;
pub(crate) mod time;

use std::collections::HashMap;
use std::sync::Arc;

pub use credentials::{AccessKey, Credentials};
pub use rules::{Effect, Rule};
pub use sign::sign_request;

use crate::clock::Clock;
use crate::error::ApiError;
use request::Signed;
use rules::Decision;

/// How far a request's time may be from the engine's, either way.
pub(crate) const MAX_SKEW_MS: i64 = 15 * 60 * 1000;

/// The service name admin requests are signed for.
pub const ADMIN_SERVICE: &str = "shardline";

const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const BAD_TOKEN: &str = "The security token included in the request is invalid.";

/// Checks requests against the configured keys.
#[derive(Debug)]
pub(crate) struct Verifier {
    keys: HashMap<String, Arc<AccessKey>>,
    region: String,
    account_id: String,
    clock: Arc<dyn Clock>,
}

/// Who sent a verified request.
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    key: Arc<AccessKey>,
    account_id: String,
}

/// A request as received, for verification.
#[derive(Debug)]
pub(crate) struct Incoming<'a> {
    pub(crate) method: &'a http::Method,
    pub(crate) uri: &'a http::Uri,
    pub(crate) headers: &'a http::HeaderMap,
    pub(crate) body: &'a [u8],
}

impl Incoming<'_> {
    /// Whether the request carries credentials in any form (what an engine that does not
    /// verify requires).
    pub(crate) fn has_credentials(&self) -> bool {
        self.headers.contains_key(http::header::AUTHORIZATION)
            || self.uri.query().is_some_and(|q| {
                q.split('&').any(|p| {
                    p.starts_with("X-Amz-Credential=") || p.starts_with("X-Amz-Algorithm=")
                })
            })
    }
}

impl Verifier {
    /// A verifier for `credentials`, which [`Credentials::validate`] accepted.
    pub(crate) fn new(
        credentials: &Credentials,
        region: &str,
        account_id: &str,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let keys = credentials
            .keys
            .iter()
            .map(|k| (k.access_key_id.clone(), Arc::new(k.clone())))
            .collect();
        Self {
            keys,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            clock,
        }
    }

    /// Verifies the signature of `request` for `service`; `missing` is the message for a
    /// request without credentials (it differs between services).
    pub(crate) fn verify(
        &self,
        request: &Incoming<'_>,
        service: &str,
        missing: &str,
    ) -> Result<Principal, ApiError> {
        let Some(signed) = Signed::parse(request)? else {
            return Err(ApiError::MissingAuthenticationToken(missing.to_owned()));
        };
        self.check_scope(&signed, service)?;
        self.check_time(&signed)?;
        let key = self
            .keys
            .get(&signed.access_key_id)
            .ok_or_else(|| ApiError::UnrecognizedClient(BAD_TOKEN.into()))?;
        if key.session_token.as_deref() != signed.session_token.as_deref() {
            return Err(ApiError::UnrecognizedClient(BAD_TOKEN.into()));
        }
        let signing_key =
            sigv4::signing_key(&key.secret_access_key, &signed.date, &self.region, service);
        let scope = format!(
            "{}/{}/{service}/{}",
            signed.date,
            self.region,
            sigv4::TERMINATOR
        );
        let signed_headers: Vec<&str> = signed.signed_headers.iter().map(String::as_str).collect();
        let matches = signed.payload_hashes(request.body).iter().any(|hash| {
            let creq = sigv4::canonical_request(&signed.parts(), &signed_headers, hash);
            let sts = sigv4::string_to_sign(&signed.amz_date, &scope, &creq);
            sigv4::signature_matches(&signing_key, &sts, &signed.signature)
        });
        if !matches {
            return Err(ApiError::InvalidSignature(BAD_SIGNATURE.into()));
        }
        Ok(Principal {
            key: key.clone(),
            account_id: self.account_id.clone(),
        })
    }

    fn check_scope(&self, signed: &Signed, service: &str) -> Result<(), ApiError> {
        let invalid = |m: String| Err(ApiError::InvalidSignature(m));
        if signed.amz_date.get(..8) != Some(signed.date.as_str()) {
            return invalid(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}', from '{}'.",
                signed.date,
                signed.amz_date.get(..8).unwrap_or_default(),
                signed.amz_date
            ));
        }
        if signed.region != self.region {
            return invalid(format!(
                "Credential should be scoped to a valid region, not '{}'.",
                signed.region
            ));
        }
        if signed.service != service {
            return invalid(format!(
                "Credential should be scoped to correct service: '{service}'."
            ));
        }
        if signed.terminator != sigv4::TERMINATOR {
            return invalid(format!(
                "Credential should be scoped with a valid terminator: '{}', not '{}'.",
                sigv4::TERMINATOR,
                signed.terminator
            ));
        }
        if !signed.signed_headers.iter().any(|h| h == "host") {
            return invalid(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
            );
        }
        Ok(())
    }

    fn check_time(&self, signed: &Signed) -> Result<(), ApiError> {
        let now = self.clock.now_ms();
        let at = signed.time_ms;
        let stamp = time::format_amz_date;
        if at > now + MAX_SKEW_MS {
            return Err(ApiError::InvalidSignature(format!(
                "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                signed.amz_date,
                stamp(now + MAX_SKEW_MS),
                stamp(now)
            )));
        }
        match signed.expires_s {
            // A presigned request is good for its X-Amz-Expires seconds.
            Some(expires) if now > at + expires * 1000 => Err(ApiError::InvalidSignature(format!(
                "Signature expired: {} is now earlier than {} ({} - {expires} sec.)",
                signed.amz_date,
                stamp(now - expires * 1000),
                stamp(now)
            ))),
            None if at < now - MAX_SKEW_MS => Err(ApiError::InvalidSignature(format!(
                "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                signed.amz_date,
                stamp(now - MAX_SKEW_MS),
                stamp(now)
            ))),
            _ => Ok(()),
        }
    }
}

impl Principal {
    /// Whether the key may call the admin endpoints.
    pub(crate) fn is_admin(&self) -> bool {
        self.key.admin
    }

    /// Whether the key has access rules at all (without any, it may do everything).
    pub(crate) fn has_rules(&self) -> bool {
        !self.key.rules.is_empty()
    }

    /// The IAM user ARN named in messages.
    pub(crate) fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:user/{}",
            self.account_id,
            self.key.user_name()
        )
    }

    /// Checks that the key's rules allow `action` on every one of `resources`.
    pub(crate) fn authorize(&self, action: &str, resources: &[String]) -> Result<(), ApiError> {
        for resource in resources {
            let reason = match rules::evaluate(&self.key.rules, action, resource) {
                Decision::Allowed => continue,
                Decision::ExplicitDeny => {
                    "with an explicit deny in an identity-based policy".to_owned()
                }
                Decision::ImplicitDeny => {
                    format!("because no identity-based policy allows the {action} action")
                }
            };
            return Err(ApiError::AccessDenied(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} {reason}",
                self.arn()
            )));
        }
        Ok(())
    }
}

//! `NextToken` values for paginated listings: opaque, signed, and expiring like AWS's.
//!
//! Layout before URL-safe base64: format byte (2), issue time (i64 ms, big-endian), scope length
//! (u16), scope (the stream name, or empty), filter length (u16), filter (the listing's filter,
//! or empty), the key to continue after, and an HMAC of the rest under the engine's
//! [`TokenKey`] (as shard iterators carry), so an edited token is refused, never followed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;
use crate::model::iterator::TokenKey;

/// How long a token stays valid, as in Kinesis.
pub(crate) const TOKEN_TTL_MS: i64 = 5 * 60 * 1000;
/// Format 1 carried a CRC32 instead of a MAC; its tokens are refused.
const FORMAT: u8 = 2;

/// Where a listing continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PageToken {
    pub(crate) issued_ms: i64,
    /// The stream the listing is about, or empty for account-wide listings.
    pub(crate) scope: String,
    /// The filter of the first request, which later pages keep applying.
    pub(crate) filter: String,
    /// The last key returned; the next page starts after it.
    pub(crate) after: String,
}

impl PageToken {
    pub(crate) fn encode(&self, key: &TokenKey) -> String {
        let mut bytes = vec![FORMAT];
        bytes.extend_from_slice(&self.issued_ms.to_be_bytes());
        for field in [&self.scope, &self.filter] {
            // Stream names and filters are far shorter than 64 KiB.
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&field.as_bytes()[..usize::from(len)]);
        }
        bytes.extend_from_slice(self.after.as_bytes());
        URL_SAFE_NO_PAD.encode(key.seal(bytes))
    }

    fn decode(token: &str, key: &TokenKey) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let body = key.open(&bytes)?;
        let (&format, rest) = body.split_first()?;
        let (issued, rest) = rest.split_first_chunk::<8>()?;
        let (scope, rest) = split_field(rest)?;
        let (filter, after) = split_field(rest)?;
        (format == FORMAT).then_some(())?;
        Some(Self {
            issued_ms: i64::from_be_bytes(*issued),
            scope,
            filter,
            after: String::from_utf8(after.to_vec()).ok()?,
        })
    }

    /// Decodes and checks a token received at `now_ms`.
    pub(crate) fn parse(token: &str, now_ms: i64, key: &TokenKey) -> Result<Self, ApiError> {
        let parsed = Self::decode(token, key)
            .ok_or_else(|| ApiError::InvalidArgument(format!("Invalid NextToken: {token}")))?;
        if now_ms - parsed.issued_ms > TOKEN_TTL_MS {
            return Err(ApiError::ExpiredNextToken(format!(
                "The NextToken has expired: it was issued at {} and tokens are valid for {TOKEN_TTL_MS} ms.",
                parsed.issued_ms
            )));
        }
        Ok(parsed)
    }
}

/// Splits a u16-length-prefixed UTF-8 field off the front of `bytes`.
fn split_field(bytes: &[u8]) -> Option<(String, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let (field, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    Some((String::from_utf8(field.to_vec()).ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_edits() {
        let token = PageToken {
            issued_ms: 5,
            scope: "orders".into(),
            filter: "AT_LATEST".into(),
            after: "shardId-000000000001".into(),
        };
        let key = TokenKey::random();
        let text = token.encode(&key);
        let bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        assert_eq!(&bytes[..11], &[2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 6]);
        assert_eq!(&bytes[11..17], b"orders");
        assert_eq!(&bytes[17..19], &[0, 9]);
        assert_eq!(&bytes[19..28], b"AT_LATEST");
        assert_eq!(&bytes[28..48], b"shardId-000000000001");
        assert_eq!(bytes.len(), 48 + crate::model::iterator::TAG_LEN);
        assert_eq!(PageToken::parse(&text, 10, &key).unwrap(), token);
        for i in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[i] ^= 1;
            let err = PageToken::parse(&URL_SAFE_NO_PAD.encode(edited), 10, &key).unwrap_err();
            assert_eq!(err.code(), "InvalidArgumentException", "byte {i}");
        }
        let err = PageToken::parse(&text, 10, &TokenKey::random()).unwrap_err();
        assert_eq!(err.code(), "InvalidArgumentException");
        let err = PageToken::parse(&text, 5 + TOKEN_TTL_MS + 1, &key).unwrap_err();
        assert_eq!(err.code(), "ExpiredNextTokenException");
    }
}

//! awsJson1.1 value encodings: blobs are base64 strings, timestamps are epoch seconds as numbers
//! with a millisecond fraction, and errors are `{"__type", "message"}` objects.

pub(crate) mod writer;

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ApiError;

/// A blob member of a request: base64 on the wire, bytes here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Blob(pub(crate) Bytes);

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Base64Visitor;
        impl Visitor<'_> for Base64Visitor {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64-encoded string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Blob, E> {
                STANDARD
                    .decode(text)
                    .map(|bytes| Blob(Bytes::from(bytes)))
                    .map_err(|_| E::custom("Base64 encoded data is not valid"))
            }
        }
        d.deserialize_str(Base64Visitor)
    }
}

/// A string member borrowed from the request body when it has no escapes (the common case),
/// owned when unescaping had to build it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

/// A blob member of a response, written as base64 without an intermediate string.
pub(crate) struct Base64Out<'a>(pub(crate) &'a [u8]);

impl Serialize for Base64Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

/// A timestamp member: epoch milliseconds here, epoch seconds (a JSON number) on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timestamp(pub(crate) i64);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / 1000.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let seconds = f64::deserialize(d)?;
        if !seconds.is_finite() || seconds.abs() > 1e13 {
            return Err(de::Error::custom("timestamp out of range"));
        }
        Ok(Self((seconds * 1000.0).round() as i64))
    }
}

/// Parses a request body. An empty body reads as `{}`, as AWS does.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    decode_borrowed(body)
}

/// Parses a request body into a shape that may borrow strings from it (see [`Text`]).
pub(crate) fn decode_borrowed<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Data => format!("Invalid request: {e}"),
            _ => format!("Malformed JSON request body: {e}"),
        };
        ApiError::Serialization(message)
    })
}

/// Serialises a response body.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("responses always serialise")
}

/// The body of an error response.
pub(crate) fn encode_error(error: &ApiError) -> Vec<u8> {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        __type: &'a str,
        message: String,
    }
    encode(&ErrorBody {
        __type: error.code(),
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    struct Sample {
        data: Option<Blob>,
        timestamp: Option<Timestamp>,
    }

    #[test]
    fn decodes_blobs_and_timestamps_from_exact_bytes() {
        let sample: Sample = decode(br#"{"Data":"aGVsbG8=","Timestamp":1459799926.48}"#).unwrap();
        assert_eq!(sample.data, Some(Blob(Bytes::from_static(b"hello"))));
        assert_eq!(sample.timestamp, Some(Timestamp(1_459_799_926_480)));
        // JSON may escape '/' in base64.
        let escaped: Sample = decode(br#"{"Data":"\/w=="}"#).unwrap();
        assert_eq!(escaped.data, Some(Blob(Bytes::from_static(&[0xff]))));
        let empty: Sample = decode(b"").unwrap();
        assert!(empty.data.is_none());
    }

    #[test]
    fn encodes_blobs_and_timestamps_to_exact_bytes() {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Out<'a> {
            data: Base64Out<'a>,
            approximate_arrival_timestamp: Timestamp,
        }
        let out = encode(&Out {
            data: Base64Out(b"hello"),
            approximate_arrival_timestamp: Timestamp(1_459_799_926_480),
        });
        assert_eq!(
            out,
            br#"{"Data":"aGVsbG8=","ApproximateArrivalTimestamp":1459799926.48}"#
        );
    }

    #[test]
    fn malformed_input_is_a_serialization_error() {
        for body in [
            &b"{"[..],
            b"[1,2]",
            b"\xff\xfe",
            br#"{"Data":"***"}"#,
            br#"{"Data":5}"#,
        ] {
            let err = decode::<Sample>(body).unwrap_err();
            assert_eq!(err.code(), "SerializationException", "{body:?}");
        }
    }

    #[test]
    fn errors_have_the_aws_shape() {
        let body = encode_error(&ApiError::ResourceNotFound(
            "Stream x under account 1 not found.".into(),
        ));
        assert_eq!(
            body,
            br#"{"__type":"ResourceNotFoundException","message":"Stream x under account 1 not found."}"#
        );
    }
}

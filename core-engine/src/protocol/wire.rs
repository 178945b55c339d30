//! The body format of a request, picked from its `Content-Type`; the answer uses the same one.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};

use super::{Body, JSON_1_1, cbor, json, log_error, response};
use crate::error::ApiError;

/// How request and response bodies are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    /// `application/x-amz-json-1.1`, and anything that does not ask for CBOR.
    Json,
    /// `application/x-amz-cbor-1.1`.
    Cbor,
}

impl Wire {
    /// The format a request's `Content-Type` asks for. Parameters and case are ignored.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let media_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if media_type.eq_ignore_ascii_case(cbor::CONTENT_TYPE) {
            Self::Cbor
        } else {
            Self::Json
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => JSON_1_1,
            Self::Cbor => cbor::CONTENT_TYPE,
        }
    }

    /// The request body as the awsJson1.1 body of `operation`.
    pub(crate) fn request_json(self, operation: &str, body: Bytes) -> Result<Bytes, ApiError> {
        match self {
            Self::Json => Ok(body),
            Self::Cbor => {
                cbor::cbor_request_to_json(&body, cbor::input_shape(operation)).map(Bytes::from)
            }
        }
    }

    /// The successful answer to `operation`, whose output is the awsJson1.1 body `json`.
    pub(crate) fn success(self, operation: &str, json: Vec<u8>) -> Response<Body> {
        let body = match self {
            Self::Json => json,
            Self::Cbor => match cbor::json_response_to_cbor(&json, cbor::output_shape(operation)) {
                Ok(body) => body,
                Err(error) => return self.error(&error),
            },
        };
        response(StatusCode::OK, self.content_type(), body, None)
    }

    /// The successful answer whose body is already in this format.
    pub(crate) fn encoded(self, body: Vec<u8>) -> Response<Body> {
        response(StatusCode::OK, self.content_type(), body, None)
    }

    /// The answer to a failed request: AWS's status, `x-amzn-ErrorType` header and
    /// `{"__type", "message"}` body.
    pub(crate) fn error(self, error: &ApiError) -> Response<Body> {
        log_error(error.code(), error.status(), error);
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = match self {
            Self::Json => json::encode_error(error),
            Self::Cbor => cbor::encode_error(error),
        };
        response(status, self.content_type(), body, Some(error.code()))
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn wire(content_type: Option<&'static str>) -> Wire {
        let mut headers = HeaderMap::new();
        if let Some(value) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        }
        Wire::of(&headers)
    }

    #[test]
    fn cbor_is_picked_by_content_type_only() {
        assert_eq!(wire(Some("application/x-amz-cbor-1.1")), Wire::Cbor);
        assert_eq!(
            wire(Some("Application/X-Amz-Cbor-1.1; charset=x")),
            Wire::Cbor
        );
        assert_eq!(wire(Some("application/x-amz-json-1.1")), Wire::Json);
        assert_eq!(wire(Some("application/json")), Wire::Json);
        assert_eq!(wire(None), Wire::Json);
    }

    #[test]
    fn answers_carry_the_request_content_type() {
        let ok = Wire::Cbor.success("ListStreams", br#"{"StreamNames":[]}"#.to_vec());
        assert_eq!(ok.headers()[header::CONTENT_TYPE], cbor::CONTENT_TYPE);
        let failed = Wire::Cbor.error(&ApiError::ResourceNotFound("gone".into()));
        assert_eq!(failed.status(), StatusCode::BAD_REQUEST);
        assert_eq!(failed.headers()[header::CONTENT_TYPE], cbor::CONTENT_TYPE);
        assert_eq!(
            failed.headers()["x-amzn-ErrorType"],
            "ResourceNotFoundException"
        );
        let failed = Wire::Json.error(&ApiError::InternalFailure("boom".into()));
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed.headers()[header::CONTENT_TYPE], JSON_1_1);
    }
}

//! CBOR request bodies to awsJson1.1 bodies.
//!
//! The walk reads the CBOR with `minicbor`'s zero-copy decoder and writes JSON text as it goes:
//! maps, arrays, text, integers, floats, booleans and null as themselves, byte strings as base64
//! strings, and timestamps (tag 1, or a bare number where the shape has a timestamp) as epoch
//! seconds. Every length is checked against the remaining input before use, nesting is capped,
//! and anything malformed is a `SerializationException`.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use minicbor::Decoder;
use minicbor::data::Type;

use super::shapes::{Cursor, Member, Shape};
use super::time;
use crate::error::ApiError;

/// The deepest nesting accepted. Kinesis shapes nest four levels at most.
pub(super) const MAX_DEPTH: usize = 32;

/// Tag 1: an epoch-based date/time (milliseconds in AWS's CBOR).
const TAG_EPOCH: u64 = 1;
/// Tag 55799: "this is CBOR", which some encoders put first; it means nothing else.
pub(super) const TAG_SELF_DESCRIBED: u64 = 55799;

/// Converts a CBOR request body of `shape` to the equivalent awsJson1.1 body.
pub(crate) fn to_json(body: &[u8], shape: Shape) -> Result<Vec<u8>, ApiError> {
    // An empty body means "no members", as in JSON.
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let mut walk = Walk {
        decoder: Decoder::new(body),
        out: Vec::with_capacity(body.len().saturating_mul(4) / 3 + 16),
    };
    if !matches!(walk.peek()?, Type::Map | Type::MapIndef | Type::Tag) {
        return Err(malformed("the body must be a CBOR map"));
    }
    walk.value(Cursor::root(shape), 0)?;
    if walk.decoder.position() != body.len() {
        return Err(malformed(format!(
            "unexpected data after the body's map at byte {}",
            walk.decoder.position()
        )));
    }
    Ok(walk.out)
}

/// Skips the item at the decoder's position, found `depth` containers deep, after checking it
/// exactly as the translation would (so a malformed unknown member fails the same way).
pub(super) fn skip(decoder: &mut Decoder<'_>, depth: usize) -> Result<(), ApiError> {
    let mut walk = Walk {
        decoder: decoder.clone(),
        out: Vec::new(),
    };
    walk.value(Cursor::root(Shape::PLAIN), depth)?;
    decoder.set_position(walk.decoder.position());
    Ok(())
}

/// A byte string, definite or in chunks.
pub(super) fn bytes<'b>(decoder: &mut Decoder<'b>) -> Result<Cow<'b, [u8]>, ApiError> {
    if decoder.datatype().map_err(malformed)? == Type::Bytes {
        return Ok(decoder.bytes().map_err(malformed)?.into());
    }
    let mut joined = Vec::new();
    for chunk in decoder.bytes_iter().map_err(malformed)? {
        joined.extend_from_slice(chunk.map_err(malformed)?);
    }
    Ok(joined.into())
}

/// A text string, definite or in chunks.
pub(super) fn text<'b>(decoder: &mut Decoder<'b>) -> Result<Cow<'b, str>, ApiError> {
    if decoder.datatype().map_err(malformed)? == Type::String {
        return Ok(decoder.str().map_err(malformed)?.into());
    }
    let mut joined = String::new();
    for chunk in decoder.str_iter().map_err(malformed)? {
        joined.push_str(chunk.map_err(malformed)?);
    }
    Ok(joined.into())
}

pub(super) fn malformed(detail: impl std::fmt::Display) -> ApiError {
    ApiError::Serialization(format!("Malformed CBOR request body: {detail}"))
}

struct Walk<'b> {
    decoder: Decoder<'b>,
    out: Vec<u8>,
}

impl<'b> Walk<'b> {
    fn peek(&self) -> Result<Type, ApiError> {
        self.decoder.datatype().map_err(malformed)
    }

    /// Converts the next item, found at `cursor`, nested `depth` containers deep.
    fn value(&mut self, cursor: Cursor, depth: usize) -> Result<(), ApiError> {
        if depth > MAX_DEPTH {
            return Err(malformed(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let kind = cursor.member_kind();
        match self.peek()? {
            Type::Map | Type::MapIndef => self.map(cursor, depth),
            Type::Array | Type::ArrayIndef => self.array(cursor, depth),
            Type::Tag => self.tagged(cursor, depth),
            Type::Bytes | Type::BytesIndef => {
                let bytes = self.bytes()?;
                write_base64_string(&bytes, &mut self.out);
                Ok(())
            }
            Type::String | Type::StringIndef => {
                let text = self.text()?;
                write_json_string(&text, &mut self.out);
                Ok(())
            }
            Type::Bool => {
                let value = self.decoder.bool().map_err(malformed)?;
                self.out
                    .extend_from_slice(if value { b"true" } else { b"false" });
                Ok(())
            }
            Type::Null => {
                self.decoder.null().map_err(malformed)?;
                self.out.extend_from_slice(b"null");
                Ok(())
            }
            Type::Undefined => {
                self.decoder.undefined().map_err(malformed)?;
                self.out.extend_from_slice(b"null");
                Ok(())
            }
            Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::I8
            | Type::I16
            | Type::I32
            | Type::I64
            | Type::Int => {
                let value = i128::from(self.decoder.int().map_err(malformed)?);
                if kind == Member::Timestamp {
                    time::write_millis_as_seconds(value, &mut self.out);
                } else {
                    self.out.extend_from_slice(value.to_string().as_bytes());
                }
                Ok(())
            }
            Type::F16 | Type::F32 | Type::F64 => {
                let value = self.float()?;
                if kind == Member::Timestamp {
                    return time::write_float_as_seconds(value, &mut self.out).map_err(malformed);
                }
                if !value.is_finite() {
                    return Err(malformed(format!("{value} has no JSON equivalent")));
                }
                self.out.extend_from_slice(format!("{value:?}").as_bytes());
                Ok(())
            }
            other => Err(malformed(format!(
                "unexpected {other} at byte {}",
                self.decoder.position()
            ))),
        }
    }

    fn map(&mut self, cursor: Cursor, depth: usize) -> Result<(), ApiError> {
        let length = self.decoder.map().map_err(malformed)?;
        self.out.push(b'{');
        let mut index = 0_u64;
        loop {
            if self.at_end(length, index)? {
                break;
            }
            if index > 0 {
                self.out.push(b',');
            }
            if !matches!(self.peek()?, Type::String | Type::StringIndef) {
                return Err(malformed(format!(
                    "map keys must be text, found {} at byte {}",
                    self.peek()?,
                    self.decoder.position()
                )));
            }
            let key = self.text()?;
            write_json_string(&key, &mut self.out);
            self.out.push(b':');
            self.value(cursor.member(&key), depth + 1)?;
            index += 1;
        }
        self.out.push(b'}');
        Ok(())
    }

    fn array(&mut self, cursor: Cursor, depth: usize) -> Result<(), ApiError> {
        let length = self.decoder.array().map_err(malformed)?;
        self.out.push(b'[');
        let element = cursor.element();
        let mut index = 0_u64;
        loop {
            if self.at_end(length, index)? {
                break;
            }
            if index > 0 {
                self.out.push(b',');
            }
            self.value(element, depth + 1)?;
            index += 1;
        }
        self.out.push(b']');
        Ok(())
    }

    /// Whether a container of `length` items (`None`: indefinite) ends before item `index`,
    /// consuming the break that ends an indefinite one.
    fn at_end(&mut self, length: Option<u64>, index: u64) -> Result<bool, ApiError> {
        match length {
            // A count larger than the input is caught by running out of input: no allocation
            // depends on it.
            Some(length) => Ok(index >= length),
            None if self.peek()? == Type::Break => {
                self.decoder.set_position(self.decoder.position() + 1);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn tagged(&mut self, cursor: Cursor, depth: usize) -> Result<(), ApiError> {
        let at = self.decoder.position();
        match self.decoder.tag().map_err(malformed)?.as_u64() {
            TAG_EPOCH => {
                if !is_number(self.peek()?) {
                    return Err(malformed(format!(
                        "tag 1 at byte {at} must hold a number, found {}",
                        self.peek()?
                    )));
                }
                // Tag 1 is a timestamp wherever it appears.
                self.value(Cursor::root(Shape::TIMESTAMP), depth + 1)
            }
            TAG_SELF_DESCRIBED => self.value(cursor, depth + 1),
            other => Err(malformed(format!("unsupported tag {other} at byte {at}"))),
        }
    }

    fn bytes(&mut self) -> Result<Cow<'b, [u8]>, ApiError> {
        bytes(&mut self.decoder)
    }

    fn text(&mut self) -> Result<Cow<'b, str>, ApiError> {
        text(&mut self.decoder)
    }

    fn float(&mut self) -> Result<f64, ApiError> {
        if self.peek()? != Type::F16 {
            return self.decoder.f64().map_err(malformed);
        }
        // minicbor reads half floats only with its `half` feature; two bytes do not justify it.
        let at = self.decoder.position();
        let bits = self
            .decoder
            .input()
            .get(at + 1..at + 3)
            .ok_or_else(|| malformed("end of input in a half float"))?;
        self.decoder.set_position(at + 3);
        Ok(half_to_f64(u16::from_be_bytes([bits[0], bits[1]])))
    }
}

fn is_number(kind: Type) -> bool {
    matches!(
        kind,
        Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::I8
            | Type::I16
            | Type::I32
            | Type::I64
            | Type::Int
            | Type::F16
            | Type::F32
            | Type::F64
    )
}

/// Decodes an IEEE 754 half-precision float (RFC 8949 appendix D).
fn half_to_f64(bits: u16) -> f64 {
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x3ff);
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (mantissa + 1024.0) * 2f64.powi(exponent - 25),
    };
    if bits & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Writes `bytes` as a JSON string of base64, encoding straight into the output.
fn write_base64_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let start = out.len();
    // A slice in memory is far below the length whose base64 would overflow a usize.
    let encoded = base64::encoded_len(bytes.len(), true).unwrap_or_default();
    out.resize(start + encoded, 0);
    let written = STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or_default();
    out.truncate(start + written);
    out.push(b'"');
}

/// Writes `text` as a JSON string literal.
fn write_json_string(text: &str, out: &mut Vec<u8>) {
    // Serialising a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_decode_like_the_rfc_examples() {
        // RFC 8949 appendix A.
        assert_eq!(half_to_f64(0x0000), 0.0);
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0x3e00), 1.5);
        assert_eq!(half_to_f64(0x7bff), 65504.0);
        assert_eq!(half_to_f64(0x0001), 5.960464477539063e-8);
        assert_eq!(half_to_f64(0x0400), 6.103515625e-5);
        assert_eq!(half_to_f64(0xc400), -4.0);
        assert_eq!(half_to_f64(0x7c00), f64::INFINITY);
        assert_eq!(half_to_f64(0xfc00), f64::NEG_INFINITY);
        assert!(half_to_f64(0x7e00).is_nan());
    }
}

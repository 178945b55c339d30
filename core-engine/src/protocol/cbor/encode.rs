//! awsJson1.1 response bodies to CBOR.
//!
//! The JSON is read once with `serde_json`, in document order, and CBOR is written as it goes:
//! blob members (per the operation's [`Shape`]) become byte strings, timestamp members become
//! tag 1 + integer epoch milliseconds, everything else keeps its type. Maps and arrays get
//! definite lengths: their items are written first and the head is slotted in front of them
//! once counted, because JSON does not say how many items follow.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::shapes::{Cursor, Member, Shape};
use super::time;
use crate::error::ApiError;

/// CBOR major types (RFC 8949 section 3.1).
pub(crate) const UNSIGNED: u8 = 0;
pub(crate) const NEGATIVE: u8 = 1;
pub(crate) const BYTES: u8 = 2;
pub(crate) const TEXT: u8 = 3;
pub(crate) const ARRAY: u8 = 4;
pub(crate) const MAP: u8 = 5;
pub(crate) const TAG: u8 = 6;

const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;
const FLOAT64: u8 = 0xfb;

/// Converts a JSON response body of `shape` to CBOR.
pub(crate) fn from_json(json: &[u8], shape: Shape) -> Result<Vec<u8>, ApiError> {
    // Operations without output answer with an empty body, in CBOR as in JSON.
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(json.len());
    let mut reader = serde_json::Deserializer::from_slice(json);
    Item {
        out: &mut out,
        cursor: Cursor::root(shape),
    }
    .deserialize(&mut reader)
    .and_then(|()| reader.end())
    .map_err(|e| {
        ApiError::InternalFailure(format!("Could not encode the response as CBOR: {e}"))
    })?;
    Ok(out)
}

/// Writes the head of an item: its major type and its argument, in the shortest form.
pub(crate) fn head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let major = major << 5;
    match argument {
        0..=23 => out.push(major | argument as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, argument as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(argument as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(argument as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&argument.to_be_bytes());
        }
    }
}

/// Writes a text string.
pub(crate) fn text(out: &mut Vec<u8>, value: &str) {
    head(out, TEXT, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

/// Writes an integer.
fn integer(out: &mut Vec<u8>, value: i64) {
    match u64::try_from(value) {
        Ok(positive) => head(out, UNSIGNED, positive),
        // CBOR stores -1 - n for negative n.
        Err(_) => head(out, NEGATIVE, value.unsigned_abs() - 1),
    }
}

/// Writes a timestamp the way AWS's CBOR does: tag 1, then integer epoch milliseconds.
fn timestamp<E: de::Error>(out: &mut Vec<u8>, seconds: f64) -> Result<(), E> {
    let millis = time::seconds_to_millis(seconds)
        .ok_or_else(|| E::custom(format!("timestamp {seconds} is out of range")))?;
    head(out, TAG, 1);
    integer(out, millis);
    Ok(())
}

/// Slots the head of a container of `count` items in front of its items, which start at `at`.
fn insert_head(out: &mut Vec<u8>, at: usize, major: u8, count: u64) {
    let mut prefix = Vec::with_capacity(9);
    head(&mut prefix, major, count);
    out.splice(at..at, prefix);
}

/// One JSON value to convert, found at `cursor`.
struct Item<'a> {
    out: &'a mut Vec<u8>,
    cursor: Cursor,
}

impl<'de> DeserializeSeed<'de> for Item<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.out.push(if value { TRUE } else { FALSE });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        if self.cursor.member_kind() == Member::Timestamp {
            return timestamp(self.out, value as f64);
        }
        integer(self.out, value);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        if self.cursor.member_kind() == Member::Timestamp {
            return timestamp(self.out, value as f64);
        }
        head(self.out, UNSIGNED, value);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        if self.cursor.member_kind() == Member::Timestamp {
            return timestamp(self.out, value);
        }
        self.out.push(FLOAT64);
        self.out.extend_from_slice(&value.to_be_bytes());
        Ok(())
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        if self.cursor.member_kind() == Member::Blob {
            let bytes = STANDARD
                .decode(value)
                .map_err(|e| E::custom(format!("blob member is not base64: {e}")))?;
            head(self.out, BYTES, bytes.len() as u64);
            self.out.extend_from_slice(&bytes);
        } else {
            text(self.out, value);
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push(NULL);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let start = self.out.len();
        let element = self.cursor.element();
        let mut count = 0_u64;
        while items
            .next_element_seed(Item {
                out: &mut *self.out,
                cursor: element,
            })?
            .is_some()
        {
            count += 1;
        }
        insert_head(self.out, start, ARRAY, count);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let start = self.out.len();
        let mut count = 0_u64;
        while let Some(cursor) = entries.next_key_seed(Key {
            out: &mut *self.out,
            cursor: self.cursor,
        })? {
            entries.next_value_seed(Item {
                out: &mut *self.out,
                cursor,
            })?;
            count += 1;
        }
        insert_head(self.out, start, MAP, count);
        Ok(())
    }
}

/// A map key: written as text, and followed to the cursor of its value.
struct Key<'a> {
    out: &'a mut Vec<u8>,
    cursor: Cursor,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Cursor;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cursor, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Cursor;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Cursor, E> {
        text(self.out, key);
        Ok(self.cursor.member(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_bytes(major: u8, argument: u64) -> Vec<u8> {
        let mut out = Vec::new();
        head(&mut out, major, argument);
        out
    }

    #[test]
    fn heads_use_the_shortest_form() {
        // RFC 8949 appendix A.
        assert_eq!(head_bytes(UNSIGNED, 0), [0x00]);
        assert_eq!(head_bytes(UNSIGNED, 23), [0x17]);
        assert_eq!(head_bytes(UNSIGNED, 24), [0x18, 0x18]);
        assert_eq!(head_bytes(UNSIGNED, 1000), [0x19, 0x03, 0xe8]);
        assert_eq!(
            head_bytes(UNSIGNED, 1_000_000),
            [0x1a, 0x00, 0x0f, 0x42, 0x40]
        );
        assert_eq!(
            head_bytes(UNSIGNED, 1_000_000_000_000),
            [0x1b, 0x00, 0x00, 0x00, 0xe8, 0xd4, 0xa5, 0x10, 0x00]
        );
        assert_eq!(head_bytes(MAP, 2), [0xa2]);
        let mut out = Vec::new();
        integer(&mut out, -1);
        integer(&mut out, -1000);
        integer(&mut out, i64::MIN);
        assert_eq!(
            out,
            [
                0x20, 0x39, 0x03, 0xe7, 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]
        );
    }

    #[test]
    fn containers_get_definite_lengths_slotted_in_front() {
        let json = format!("[{}]", vec!["1"; 30].join(","));
        let cbor = from_json(json.as_bytes(), Shape::PLAIN).unwrap();
        assert_eq!(&cbor[..2], [0x98, 30]);
        assert_eq!(cbor.len(), 32);
        let cbor = from_json(br#"{"a":[],"b":{}}"#, Shape::PLAIN).unwrap();
        assert_eq!(cbor, [0xa2, 0x61, b'a', 0x80, 0x61, b'b', 0xa0]);
    }
}

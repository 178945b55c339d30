//! The hot requests (PutRecords, PutRecord) decoded straight from CBOR into the request forms
//! the awsJson1.1 path parses into, without the JSON translation: text members are borrowed
//! from the body, and record data is taken from the byte strings as it is (no base64 either
//! way).
//!
//! The result is what the translation and `serde_json` would have made of the same body:
//! members are matched by exact name, unknown members are skipped (after the same checks the
//! translation makes, so a malformed one is an error all the same), null reads as absent, a
//! member given twice or with the wrong type is an error, and so is anything after the body's
//! map; a byte string where text belongs reads as its base64 text. Every error is a `SerializationException`; `super::tests` checks the two paths agree.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use minicbor::Decoder;
use minicbor::data::Type;

use super::decode::{self, MAX_DEPTH, TAG_SELF_DESCRIBED, malformed};
use crate::error::ApiError;
use crate::kinesis::put::{DataIn, PutRecordInput, PutRecordsEntry, PutRecordsInput};
use crate::protocol::json::{Blob, Text};

/// Decodes a CBOR PutRecords request.
///
/// # Errors
/// `SerializationException` for malformed CBOR or members of the wrong type.
pub(crate) fn put_records(body: &[u8]) -> Result<PutRecordsInput<'_>, ApiError> {
    let mut input = PutRecordsInput::default();
    let mut reader = Reader::new(body);
    if !body.is_empty() {
        reader.structure(
            0,
            &["StreamName", "StreamARN", "Records"],
            |r, key, depth| {
                match key {
                    "StreamName" => input.stream_name = r.text()?,
                    "StreamARN" => input.stream_arn = r.text()?,
                    "Records" => input.records = r.list(depth, Reader::entry)?,
                    _ => r.skip(depth)?,
                }
                Ok(())
            },
        )?;
    }
    reader.finish()?;
    Ok(input)
}

/// Decodes a CBOR PutRecord request.
///
/// # Errors
/// `SerializationException` for malformed CBOR, members of the wrong type or data given as
/// text that is not base64.
pub(crate) fn put_record(body: &[u8]) -> Result<PutRecordInput, ApiError> {
    const MEMBERS: [&str; 6] = [
        "StreamName",
        "StreamARN",
        "Data",
        "PartitionKey",
        "ExplicitHashKey",
        "SequenceNumberForOrdering",
    ];
    let mut input = PutRecordInput::default();
    let mut reader = Reader::new(body);
    if !body.is_empty() {
        reader.structure(0, &MEMBERS, |r, key, depth| {
            let owned = |text: Option<Text<'_>>| text.map(|t| t.0.into_owned());
            match key {
                "StreamName" => input.stream_name = owned(r.text()?),
                "StreamARN" => input.stream_arn = owned(r.text()?),
                "Data" => input.data = r.data()?.map(blob).transpose()?,
                "PartitionKey" => input.partition_key = owned(r.text()?),
                "ExplicitHashKey" => input.explicit_hash_key = owned(r.text()?),
                "SequenceNumberForOrdering" => {
                    input.sequence_number_for_ordering = owned(r.text()?);
                }
                _ => r.skip(depth)?,
            }
            Ok(())
        })?;
    }
    reader.finish()?;
    Ok(input)
}

/// PutRecord's data as an owned blob.
fn blob(data: DataIn<'_>) -> Result<Blob, ApiError> {
    match data {
        DataIn::Bytes(bytes) => Ok(Blob(match bytes {
            Cow::Borrowed(slice) => Bytes::copy_from_slice(slice),
            Cow::Owned(joined) => Bytes::from(joined),
        })),
        DataIn::Base64(text) => STANDARD
            .decode(text.0.as_bytes())
            .map(|bytes| Blob(Bytes::from(bytes)))
            .map_err(|_| {
                ApiError::Serialization("Invalid request: Base64 encoded data is not valid".into())
            }),
    }
}

/// A walk through a request body, item by item.
struct Reader<'b> {
    decoder: Decoder<'b>,
}

impl<'b> Reader<'b> {
    fn new(body: &'b [u8]) -> Self {
        Self {
            decoder: Decoder::new(body),
        }
    }

    fn peek(&self) -> Result<Type, ApiError> {
        self.decoder.datatype().map_err(malformed)
    }

    fn at(&self) -> usize {
        self.decoder.position()
    }

    /// The type of the next item, after any tags 55799 ("this is CBOR") in front of it. Any
    /// other tag is wrong where the reader expects a member's value.
    fn untagged(&mut self) -> Result<Type, ApiError> {
        for _ in 0..=MAX_DEPTH {
            let kind = self.peek()?;
            if kind != Type::Tag {
                return Ok(kind);
            }
            let at = self.at();
            let tag = self.decoder.tag().map_err(malformed)?.as_u64();
            if tag != TAG_SELF_DESCRIBED {
                return Err(malformed(format!("unexpected tag {tag} at byte {at}")));
            }
        }
        Err(malformed(format!("nested deeper than {MAX_DEPTH} levels")))
    }

    /// Consumes a null (or undefined), which reads as an absent member.
    fn null(&mut self, kind: Type) -> Result<bool, ApiError> {
        match kind {
            Type::Null => self.decoder.null().map_err(malformed)?,
            Type::Undefined => self.decoder.undefined().map_err(malformed)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn wrong_type(&self, kind: Type, expected: &str) -> ApiError {
        malformed(format!(
            "expected {expected}, found {kind} at byte {}",
            self.at()
        ))
    }

    /// A text member, borrowed from the body unless it came in chunks. A byte string reads as
    /// its base64 text, as the translation has it.
    fn text(&mut self) -> Result<Option<Text<'b>>, ApiError> {
        let kind = self.untagged()?;
        if self.null(kind)? {
            return Ok(None);
        }
        match kind {
            Type::String | Type::StringIndef => Ok(Some(Text(decode::text(&mut self.decoder)?))),
            Type::Bytes | Type::BytesIndef => {
                let bytes = decode::bytes(&mut self.decoder)?;
                Ok(Some(Text(Cow::Owned(STANDARD.encode(bytes)))))
            }
            other => Err(self.wrong_type(other, "text")),
        }
    }

    /// A blob member: a byte string, or (as the translation allows) base64 text.
    fn data(&mut self) -> Result<Option<DataIn<'b>>, ApiError> {
        let kind = self.untagged()?;
        if self.null(kind)? {
            return Ok(None);
        }
        match kind {
            Type::Bytes | Type::BytesIndef => {
                Ok(Some(DataIn::Bytes(decode::bytes(&mut self.decoder)?)))
            }
            Type::String | Type::StringIndef => {
                Ok(Some(DataIn::Base64(Text(decode::text(&mut self.decoder)?))))
            }
            other => Err(self.wrong_type(other, "a byte string")),
        }
    }

    /// One PutRecords entry.
    fn entry(&mut self, depth: usize) -> Result<PutRecordsEntry<'b>, ApiError> {
        let mut entry = PutRecordsEntry::default();
        self.structure(
            depth,
            &["Data", "PartitionKey", "ExplicitHashKey"],
            |r, key, depth| {
                match key {
                    "Data" => entry.data = r.data()?,
                    "PartitionKey" => entry.partition_key = r.text()?,
                    "ExplicitHashKey" => entry.explicit_hash_key = r.text()?,
                    _ => r.skip(depth)?,
                }
                Ok(())
            },
        )?;
        Ok(entry)
    }

    /// A list member whose elements `element` reads; null reads as absent.
    fn list<T>(
        &mut self,
        depth: usize,
        mut element: impl FnMut(&mut Self, usize) -> Result<T, ApiError>,
    ) -> Result<Option<Vec<T>>, ApiError> {
        check_depth(depth)?;
        let kind = self.untagged()?;
        if self.null(kind)? {
            return Ok(None);
        }
        if !matches!(kind, Type::Array | Type::ArrayIndef) {
            return Err(self.wrong_type(kind, "a list"));
        }
        let length = self.decoder.array().map_err(malformed)?;
        // Every element takes a byte at least, so the input bounds the allocation.
        let remaining = self.decoder.input().len() - self.at();
        let mut items = Vec::with_capacity(length.map_or(0, |n| n.min(remaining as u64) as usize));
        while !self.at_end(length, items.len() as u64)? {
            items.push(element(self, depth + 1)?);
        }
        Ok(Some(items))
    }

    /// A structure: calls `member` with each member's name, the reader at its value. A name of
    /// `known` given twice is an error, as it is to `serde`.
    fn structure(
        &mut self,
        depth: usize,
        known: &[&str],
        mut member: impl FnMut(&mut Self, &str, usize) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        check_depth(depth)?;
        let kind = self.untagged()?;
        if !matches!(kind, Type::Map | Type::MapIndef) {
            return Err(self.wrong_type(kind, "a structure (a CBOR map)"));
        }
        let length = self.decoder.map().map_err(malformed)?;
        let mut seen = 0_u64;
        let mut index = 0_u64;
        while !self.at_end(length, index)? {
            let kind = self.peek()?;
            if !matches!(kind, Type::String | Type::StringIndef) {
                return Err(malformed(format!(
                    "map keys must be text, found {kind} at byte {}",
                    self.at()
                )));
            }
            let key = decode::text(&mut self.decoder)?;
            if let Some(i) = known.iter().position(|k| *k == key) {
                if seen & 1 << i != 0 {
                    return Err(malformed(format!("duplicate member {key}")));
                }
                seen |= 1 << i;
            }
            member(self, &key, depth + 1)?;
            index += 1;
        }
        Ok(())
    }

    /// Whether a container of `length` items (`None`: indefinite) ends before item `index`,
    /// consuming the break that ends an indefinite one.
    fn at_end(&mut self, length: Option<u64>, index: u64) -> Result<bool, ApiError> {
        match length {
            Some(length) => Ok(index >= length),
            None if self.peek()? == Type::Break => {
                self.decoder.set_position(self.at() + 1);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Skips an unknown member's value.
    fn skip(&mut self, depth: usize) -> Result<(), ApiError> {
        decode::skip(&mut self.decoder, depth)
    }

    /// Checks that nothing follows the body's map.
    fn finish(&self) -> Result<(), ApiError> {
        let end = self.decoder.input().len();
        if self.at() != end {
            return Err(malformed(format!(
                "unexpected data after the body's map at byte {}",
                self.at()
            )));
        }
        Ok(())
    }
}

fn check_depth(depth: usize) -> Result<(), ApiError> {
    if depth > MAX_DEPTH {
        return Err(malformed(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(())
}

//! A hand-written CBOR writer for the hot responses (PutRecord(s), GetRecords and fan-out
//! events), byte for byte what the translation layer ([`super::json_response_to_cbor`]) makes
//! of the JSON writer's output for the same values, without the JSON in between: data goes
//! into byte strings as it is (no base64 either way), sequence numbers are formatted in place,
//! and timestamps are written as the tag 1 + integer milliseconds they are stored as.
//!
//! It shares the response model with the JSON writer ([`RecordView`]); `super::tests` compares
//! the two paths on tricky and random inputs.

use serde::Serialize;

use super::encode::{self, ARRAY, BYTES, MAP, NEGATIVE, TAG, TEXT, UNSIGNED};
use super::shapes::Shape;
use crate::protocol::json::writer::{RecordView, u128_digits};

pub(crate) use super::encode::text;

/// CBOR's null (`NextShardIterator` at a shard's end).
const NULL: u8 = 0xf6;

/// Writes the head of a map of `entries` members.
pub(crate) fn map(out: &mut Vec<u8>, entries: usize) {
    encode::head(out, MAP, entries as u64);
}

/// Writes the head of an array of `items` items.
pub(crate) fn array(out: &mut Vec<u8>, items: usize) {
    encode::head(out, ARRAY, items as u64);
}

/// Writes null.
pub(crate) fn null(out: &mut Vec<u8>) {
    out.push(NULL);
}

/// Writes a byte string (a blob member).
pub(crate) fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    encode::head(out, BYTES, data.len() as u64);
    out.extend_from_slice(data);
}

/// Writes an integer.
pub(crate) fn int(out: &mut Vec<u8>, value: i64) {
    match u64::try_from(value) {
        Ok(positive) => encode::head(out, UNSIGNED, positive),
        // CBOR stores -1 - n for negative n.
        Err(_) => encode::head(out, NEGATIVE, value.unsigned_abs() - 1),
    }
}

/// Writes a timestamp as AWS's CBOR has it: tag 1, then integer epoch milliseconds.
pub(crate) fn timestamp(out: &mut Vec<u8>, ms: i64) {
    encode::head(out, TAG, 1);
    int(out, ms);
}

/// Writes a text string whose ASCII content `write` appends, and which is shorter than 256
/// bytes (digits, shard ids): the head is reserved in its longest form for that range and
/// shortened once the length is known.
pub(crate) fn short_text_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    write(out);
    let len = out.len() - at - 2;
    match len {
        0..=23 => {
            out[at] = TEXT << 5 | len as u8;
            out.copy_within(at + 2.., at + 1);
            out.pop();
        }
        24..=0xff => out[at..at + 2].copy_from_slice(&[TEXT << 5 | 24, len as u8]),
        _ => {
            // Not reached by the callers; kept correct all the same.
            let mut head = Vec::with_capacity(9);
            encode::head(&mut head, TEXT, len as u64);
            out.splice(at..at + 2, head);
        }
    }
}

/// Writes a decimal number as a text string, as sequence numbers are sent.
pub(crate) fn u128_text(out: &mut Vec<u8>, value: u128) {
    short_text_with(out, |out| u128_digits(out, value));
}

/// Writes a record in the shape GetRecords and fan-out events share, with the members of the
/// JSON writer's `record` in the same order and under the same conditions.
pub(crate) fn record(out: &mut Vec<u8>, record: &RecordView<'_>) {
    let members = 3 + usize::from(!record.partition_key.is_empty()) + usize::from(record.encrypted);
    map(out, members);
    text(out, "SequenceNumber");
    u128_text(out, record.sequence_number);
    text(out, "ApproximateArrivalTimestamp");
    timestamp(out, record.arrival_ms);
    text(out, "Data");
    bytes(out, record.data);
    if !record.partition_key.is_empty() {
        text(out, "PartitionKey");
        text(out, record.partition_key);
    }
    if record.encrypted {
        text(out, "EncryptionType");
        text(out, "KMS");
    }
}

/// About how many bytes a record's CBOR takes, to size buffers once.
pub(crate) fn record_size_hint(record: &RecordView<'_>) -> usize {
    record.data.len() + record.partition_key.len() + 120
}

/// Writes a rare, small value with no blob or timestamp members (`ChildShards`) through its
/// serde form and the translation layer.
pub(crate) fn translated<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let json = serde_json::to_vec(value)
        .unwrap_or_else(|_| unreachable!("response shapes always serialise"));
    let cbor = super::encode::from_json(&json, Shape::PLAIN)
        .unwrap_or_else(|_| unreachable!("serde_json's output is valid JSON"));
    out.extend_from_slice(&cbor);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out);
        out
    }

    #[test]
    fn short_texts_get_the_shortest_head() {
        assert_eq!(written(|out| u128_text(out, 0)), [0x61, b'0']);
        let twenty_three = 10_u128.pow(22);
        let mut expected = vec![0x77];
        expected.extend_from_slice(twenty_three.to_string().as_bytes());
        assert_eq!(written(|out| u128_text(out, twenty_three)), expected);
        let mut expected = vec![0x78, 24];
        expected.extend_from_slice((10 * twenty_three).to_string().as_bytes());
        assert_eq!(written(|out| u128_text(out, 10 * twenty_three)), expected);
        let mut expected = vec![0x78, 39];
        expected.extend_from_slice(u128::MAX.to_string().as_bytes());
        assert_eq!(written(|out| u128_text(out, u128::MAX)), expected);
        // The fallback of a long text.
        let long = "7".repeat(300);
        let mut expected = vec![0x79, 0x01, 0x2c];
        expected.extend_from_slice(long.as_bytes());
        assert_eq!(
            written(|out| short_text_with(out, |out| out.extend_from_slice(long.as_bytes()))),
            expected
        );
        // Bytes before the text stay where they are.
        assert_eq!(
            written(|out| {
                out.push(0xa1);
                u128_text(out, 42);
            }),
            [0xa1, 0x62, b'4', b'2']
        );
    }

    #[test]
    fn records_and_timestamps_match_the_byte_vectors() {
        let data = [0xde, 0xad];
        let view = RecordView {
            sequence_number: 7,
            arrival_ms: 1_459_799_926_480,
            data: &data,
            partition_key: "k",
            encrypted: true,
        };
        let mut expected = vec![0xa5, 0x6e];
        expected.extend_from_slice(b"SequenceNumber");
        expected.extend_from_slice(&[0x61, b'7', 0x78, 27]);
        expected.extend_from_slice(b"ApproximateArrivalTimestamp");
        // tag 1, then 1459799926480 as an 8-byte unsigned integer
        expected.extend_from_slice(&[0xc1, 0x1b, 0, 0, 0x01, 0x53, 0xe2, 0xdb, 0x26, 0xd0]);
        expected.extend_from_slice(&[0x64, b'D', b'a', b't', b'a', 0x42, 0xde, 0xad]);
        expected.extend_from_slice(&[0x6c]);
        expected.extend_from_slice(b"PartitionKey");
        expected.extend_from_slice(&[0x61, b'k', 0x6e]);
        expected.extend_from_slice(b"EncryptionType");
        expected.extend_from_slice(&[0x63, b'K', b'M', b'S']);
        assert_eq!(written(|out| record(out, &view)), expected);
        assert_eq!(written(|out| timestamp(out, -1)), [0xc1, 0x20]);
        assert_eq!(
            written(|out| timestamp(out, i64::MIN)),
            [0xc1, 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            written(|out| timestamp(out, i64::MAX)),
            [0xc1, 0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        let big = vec![0u8; 1 << 20];
        let mut expected = vec![0x5a, 0x00, 0x10, 0x00, 0x00];
        expected.extend_from_slice(&big);
        assert_eq!(written(|out| bytes(out, &big)), expected);
        assert_eq!(written(|out| bytes(out, &[])), [0x40]);
    }
}

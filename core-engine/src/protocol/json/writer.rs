//! A hand-written awsJson1.1 writer for the hot responses (PutRecord(s), GetRecords and fan-out
//! events), byte for byte what `serde_json` writes for the same values, without a string per
//! value: base64 goes straight into the output, sequence numbers are formatted on the stack,
//! and strings known to need no escaping (base64, digits) skip the escaping pass.
//!
//! `tests` compares it with `serde_json` on tricky and random inputs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::storage::StoredRecord;

/// The parts of a record its wire shape shows. The one place that reads a stored record's
/// fields, so a change of the storage representation is a one-place edit.
pub(crate) struct RecordView<'a> {
    pub(crate) sequence_number: u128,
    pub(crate) arrival_ms: i64,
    pub(crate) data: &'a [u8],
    pub(crate) partition_key: &'a str,
    pub(crate) encrypted: bool,
}

impl<'a> RecordView<'a> {
    /// The view of a stored record.
    pub(crate) fn of(record: &'a StoredRecord) -> Self {
        Self {
            sequence_number: record.sequence_number,
            arrival_ms: record.arrival_ms,
            data: &record.data,
            partition_key: &record.partition_key,
            encrypted: record.encrypted,
        }
    }

    /// About how many bytes its JSON takes, to size buffers once.
    pub(crate) fn json_size_hint(&self) -> usize {
        self.data.len().div_ceil(3) * 4 + self.partition_key.len() + 160
    }
}

/// Writes a record in the shape GetRecords and fan-out events share:
/// `{"SequenceNumber","ApproximateArrivalTimestamp","Data","PartitionKey"?,"EncryptionType"?}`.
/// The partition key is absent when empty (AUTO streams without one), the encryption type
/// present only for encrypted records, as on AWS.
pub(crate) fn record(out: &mut Vec<u8>, record: &RecordView<'_>) {
    out.extend_from_slice(b"{\"SequenceNumber\":");
    u128_string(out, record.sequence_number);
    out.extend_from_slice(b",\"ApproximateArrivalTimestamp\":");
    timestamp(out, record.arrival_ms);
    out.extend_from_slice(b",\"Data\":");
    base64(out, record.data);
    if !record.partition_key.is_empty() {
        out.extend_from_slice(b",\"PartitionKey\":");
        string(out, record.partition_key);
    }
    if record.encrypted {
        out.extend_from_slice(b",\"EncryptionType\":\"KMS\"");
    }
    out.push(b'}');
}

/// Writes a JSON string, escaped exactly as `serde_json` escapes it: `"`, `\` and control
/// characters (the usual short forms, else `\u00xx`); everything else as is.
pub(crate) fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if byte >= 0x20 && byte != b'"' && byte != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0d => out.extend_from_slice(b"\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes bytes as a base64 JSON string (the alphabet needs no escaping).
pub(crate) fn base64(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'"');
    let at = out.len();
    let len = data.len().div_ceil(3) * 4;
    out.resize(at + len, 0);
    let written = STANDARD
        .encode_slice(data, &mut out[at..])
        .unwrap_or_else(|_| unreachable!("the buffer is sized for the encoding"));
    out.truncate(at + written);
    out.push(b'"');
}

/// Writes a decimal number as a JSON string, as sequence numbers and hash keys are sent.
pub(crate) fn u128_string(out: &mut Vec<u8>, value: u128) {
    out.push(b'"');
    u128_digits(out, value);
    out.push(b'"');
}

/// Writes the decimal digits of `value`, without allocating. Sequence numbers need all 128
/// bits, and a u128 division is a slow library call, so the value is divided by 10^9 as four
/// 32-bit limbs (plain u64 arithmetic), giving nine digits at a time.
pub(crate) fn u128_digits(out: &mut Vec<u8>, value: u128) {
    const BILLION: u64 = 1_000_000_000;
    if let Ok(small) = u64::try_from(value) {
        return u64_digits(out, small);
    }
    let mut limbs = [
        (value >> 96) as u32,
        (value >> 64) as u32,
        (value >> 32) as u32,
        value as u32,
    ];
    // Nine-digit groups, least significant first; 39 digits at most make five.
    let mut groups = [0u32; 5];
    let mut count = 0;
    while limbs != [0; 4] {
        let mut rest = 0u64;
        for limb in &mut limbs {
            let current = rest << 32 | u64::from(*limb);
            *limb = (current / BILLION) as u32;
            rest = current % BILLION;
        }
        groups[count] = rest as u32;
        count += 1;
    }
    u64_digits(out, u64::from(groups[count - 1]));
    for &group in groups[..count - 1].iter().rev() {
        let mut digits = [b'0'; 9];
        let mut rest = group;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend_from_slice(&digits);
    }
}

/// Writes the decimal digits of a u64.
fn u64_digits(out: &mut Vec<u8>, mut value: u64) {
    let mut buf = [0u8; 20];
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[start..]);
}

/// Writes an integer JSON number.
pub(crate) fn int(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    u128_digits(out, u128::from(value.unsigned_abs()));
}

/// Writes epoch milliseconds as the JSON number of epoch seconds `serde_json` writes for
/// `ms as f64 / 1000.0` (the shortest form that reads back: `1459799926.48`, `12.0`).
pub(crate) fn timestamp(out: &mut Vec<u8>, ms: i64) {
    // Below 10^15 ms (year 33658) the f64 is precise to far under a millisecond, so the
    // shortest decimal is the exact one; beyond, let serde_json's formatter decide.
    if ms.unsigned_abs() >= 1_000_000_000_000_000 {
        let seconds = ms as f64 / 1000.0;
        serde_json::to_writer(&mut *out, &seconds)
            .unwrap_or_else(|_| unreachable!("writing a number to memory cannot fail"));
        return;
    }
    if ms < 0 {
        out.push(b'-');
    }
    let ms = ms.unsigned_abs();
    u128_digits(out, u128::from(ms / 1000));
    out.push(b'.');
    let frac = ms % 1000;
    let digits = [
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    // Trailing zeros go, but one digit stays: `12.0`, `12.5`, `12.25`, `12.125`.
    let keep = if frac.is_multiple_of(100) {
        1
    } else if frac.is_multiple_of(10) {
        2
    } else {
        3
    };
    out.extend_from_slice(&digits[..keep]);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the property tests need no crate.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut tricky: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        tricky.extend(
            [
                "",
                "plain",
                "quote\"back\\slash",
                "ключ-🔑",
                "\u{2028}\u{2029}</script>",
                "\u{7f}\u{80}\u{ffff}",
                "tab\tnew\nline\r\u{0}\u{1f}",
            ]
            .map(String::from),
        );
        for text in &tricky {
            assert_eq!(
                written(|out| string(out, text)),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn random_strings_match_serde_json() {
        let alphabet: Vec<char> = "aZ09-_\"\\/\u{0}\u{8}\u{c}\u{1b}\u{7f}é漢🔑\n\t\r "
            .chars()
            .collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5_000 {
            let len = rng.below(40) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            assert_eq!(
                written(|out| string(out, &text)),
                serde_json::to_string(&text).unwrap()
            );
        }
    }

    #[test]
    fn numbers_match_their_display_form() {
        let mut rng = Rng(42);
        let mut values = vec![
            0,
            1,
            9,
            10,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
            10_u128.pow(19) - 1,
            10_u128.pow(19),
            10_u128.pow(27),
            10_u128.pow(27) + 1,
            10_u128.pow(36) + 5,
            10_u128.pow(38),
            49_000_000_000_000_000_000_000_000_000_000_000_000,
            u128::MAX,
        ];
        values.extend(
            (0..2_000).map(|_| u128::from(rng.next()) << rng.below(64) | u128::from(rng.next())),
        );
        for value in values {
            assert_eq!(written(|out| u128_digits(out, value)), value.to_string());
            assert_eq!(
                written(|out| u128_string(out, value)),
                format!("\"{value}\"")
            );
        }
        for value in [0, 1, -1, 42, i64::MAX, i64::MIN, -1_000_000_007] {
            assert_eq!(written(|out| int(out, value)), value.to_string());
        }
    }

    #[test]
    fn timestamps_match_serde_json_floats() {
        let mut values = vec![
            0,
            1,
            10,
            100,
            999,
            1_000,
            1_001,
            1_010,
            1_100,
            -1,
            -1_500,
            1_459_799_926_480,
            1_459_799_926_400,
            1_459_799_926_000,
            1_459_799_926_001,
            999_999_999_999_999,
            1_000_000_000_000_000,
            -999_999_999_999_999,
            i64::MAX,
            i64::MIN,
        ];
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            // Mostly today's epoch range, some anywhere below the fast path's bound.
            values.push(1_700_000_000_000 + rng.below(200_000_000_000) as i64);
            values.push(rng.below(1_000_000_000_000_000) as i64);
            values.push(-(rng.below(10_000_000) as i64));
        }
        for ms in values {
            assert_eq!(
                written(|out| timestamp(out, ms)),
                serde_json::to_string(&(ms as f64 / 1000.0)).unwrap(),
                "{ms}"
            );
        }
    }

    #[test]
    fn base64_matches_the_standard_encoding() {
        for len in 0..70 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(
                written(|out| base64(out, &data)),
                format!("\"{}\"", STANDARD.encode(&data))
            );
        }
    }
}

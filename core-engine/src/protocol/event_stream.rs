//! The `application/vnd.amazon.eventstream` framing SubscribeToShard answers with.
//!
//! A message is:
//!
//! ```text
//! total length u32 | headers length u32 | CRC32 of the 8 bytes before | headers | payload |
//! CRC32 of everything before
//! ```
//!
//! All integers big-endian, CRC32 the IEEE polynomial. A header is a name length (u8), the
//! name, a type byte and a value; the engine only writes string headers (type 7: u16 length
//! then UTF-8). Messages are pure byte functions: [`encode`] writes one; [`decode`] reads one
//! back, checking both checksums (for tests, and to re-encode payloads for CBOR clients).

/// Most bytes one message may hold.
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 << 20;
const PRELUDE_BYTES: usize = 12;
const STRING_HEADER: u8 = 7;

/// Encodes a message with string headers.
pub(crate) fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    encode_with(headers, payload.len(), |out| out.extend_from_slice(payload))
}

/// Encodes a message with string headers whose payload `write` appends to the message itself,
/// so that a large payload is written once, in place. `size_hint` is about its length.
pub(crate) fn encode_with(
    headers: &[(&str, &str)],
    size_hint: usize,
    write: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let headers_len: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let mut message = Vec::with_capacity(PRELUDE_BYTES + headers_len + size_hint + 4);
    // The prelude is filled in once the length is known.
    message.resize(PRELUDE_BYTES, 0);
    for (name, value) in headers {
        debug_assert!(name.len() <= 127 && value.len() <= usize::from(u16::MAX));
        message.push(name.len() as u8);
        message.extend_from_slice(name.as_bytes());
        message.push(STRING_HEADER);
        message.extend_from_slice(&(value.len() as u16).to_be_bytes());
        message.extend_from_slice(value.as_bytes());
    }
    debug_assert_eq!(message.len(), PRELUDE_BYTES + headers_len);
    write(&mut message);
    let total = message.len() + 4;
    message[0..4].copy_from_slice(&(total as u32).to_be_bytes());
    message[4..8].copy_from_slice(&(headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&message[..8]);
    message[8..12].copy_from_slice(&prelude_crc.to_be_bytes());
    let message_crc = crc32fast::hash(&message);
    message.extend_from_slice(&message_crc.to_be_bytes());
    message
}

/// The headers of an event message of the given type with a JSON payload.
fn event_headers(event_type: &str) -> [(&str, &str); 3] {
    [
        (":message-type", "event"),
        (":event-type", event_type),
        (":content-type", "application/json"),
    ]
}

/// An event message of the given type with a JSON payload.
pub(crate) fn event(event_type: &str, json: &[u8]) -> Vec<u8> {
    encode(&event_headers(event_type), json)
}

/// An event message of the given type whose JSON payload `write` appends in place.
pub(crate) fn event_with(
    event_type: &str,
    size_hint: usize,
    write: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    encode_with(&event_headers(event_type), size_hint, write)
}

/// An exception message: the stream's last, for errors after it started.
pub(crate) fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    let payload = serde_json::json!({ "message": message }).to_string();
    encode(
        &[
            (":message-type", "exception"),
            (":exception-type", exception_type),
            (":content-type", "application/json"),
        ],
        payload.as_bytes(),
    )
}

/// A decoded message with string headers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) payload: Vec<u8>,
}

/// Why bytes are not a valid message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// More bytes are needed.
    Incomplete,
    /// The bytes can never form a valid message.
    Invalid(&'static str),
}

/// Decodes the message at the start of `bytes`; gives it and the bytes it used.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Message, usize), DecodeError> {
    let Some(prelude) = bytes.get(..PRELUDE_BYTES) else {
        return Err(DecodeError::Incomplete);
    };
    let word = |at: usize| {
        u32::from_be_bytes([
            prelude[at],
            prelude[at + 1],
            prelude[at + 2],
            prelude[at + 3],
        ])
    };
    let (total, headers_len, prelude_crc) = (word(0) as usize, word(4) as usize, word(8));
    if crc32fast::hash(&prelude[..8]) != prelude_crc {
        return Err(DecodeError::Invalid("prelude checksum mismatch"));
    }
    if total > MAX_MESSAGE_BYTES || total < PRELUDE_BYTES + 4 + headers_len {
        return Err(DecodeError::Invalid("impossible message length"));
    }
    let Some(message) = bytes.get(..total) else {
        return Err(DecodeError::Incomplete);
    };
    let (body, crc) = message.split_at(total - 4);
    if crc32fast::hash(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(DecodeError::Invalid("message checksum mismatch"));
    }
    let mut rest = &body[PRELUDE_BYTES..PRELUDE_BYTES + headers_len];
    let mut headers = Vec::new();
    while let Some((&name_len, after)) = rest.split_first() {
        let (name, after) = after
            .split_at_checked(usize::from(name_len))
            .ok_or(DecodeError::Invalid("short header name"))?;
        let (&kind, after) = after
            .split_first()
            .ok_or(DecodeError::Invalid("missing header type"))?;
        if kind != STRING_HEADER {
            return Err(DecodeError::Invalid("unsupported header type"));
        }
        let (len, after) = after
            .split_first_chunk::<2>()
            .ok_or(DecodeError::Invalid("short header value"))?;
        let (value, after) = after
            .split_at_checked(usize::from(u16::from_be_bytes(*len)))
            .ok_or(DecodeError::Invalid("short header value"))?;
        let text = |b: &[u8]| {
            String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Invalid("header is not UTF-8"))
        };
        headers.push((text(name)?, text(value)?));
        rest = after;
    }
    let payload = body[PRELUDE_BYTES + headers_len..].to_vec();
    Ok((Message { headers, payload }, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn empty_message_matches_the_reference_vector() {
        // The empty message of the AWS event-stream test suite.
        assert_eq!(encode(&[], b""), hex("000000100000000005c248eb7d98c8ff"));
    }

    #[test]
    fn initial_response_matches_bytes_computed_independently() {
        // Computed with Python's struct and zlib.crc32.
        let expected = hex(concat!(
            "00000068000000564e6817240d3a6d6573736167652d747970650700056576656e740b3a6576656e742d",
            "74797065070010696e697469616c2d726573706f6e73650d3a636f6e74656e742d7479706507001061",
            "70706c69636174696f6e2f6a736f6e7b7dfe942c1d"
        ));
        let message = event("initial-response", b"{}");
        assert_eq!(message, expected);
        let (decoded, used) = decode(&message).unwrap();
        assert_eq!(used, message.len());
        assert_eq!(
            decoded.headers[1],
            (":event-type".into(), "initial-response".into())
        );
        assert_eq!(decoded.payload, b"{}");
    }

    #[test]
    fn payloads_written_in_place_match_copied_ones() {
        let payload = br#"{"Records":[],"MillisBehindLatest":0}"#;
        let copied = event("SubscribeToShardEvent", payload);
        let in_place = event_with("SubscribeToShardEvent", 3, |out| {
            out.extend_from_slice(payload)
        });
        assert_eq!(in_place, copied);
        let (decoded, used) = decode(&in_place).unwrap();
        assert_eq!(
            (decoded.payload.as_slice(), used),
            (&payload[..], in_place.len())
        );
    }

    #[test]
    fn exceptions_carry_their_type_and_message() {
        let (message, _) = decode(&exception("ResourceInUseException", "taken over")).unwrap();
        assert_eq!(
            message.headers[0],
            (":message-type".into(), "exception".into())
        );
        assert_eq!(
            message.headers[1],
            (":exception-type".into(), "ResourceInUseException".into())
        );
        assert_eq!(message.payload, br#"{"message":"taken over"}"#);
    }

    #[test]
    fn damaged_or_short_input_is_an_error_not_a_panic() {
        let message = event("SubscribeToShardEvent", br#"{"Records":[]}"#);
        for cut in 0..message.len() {
            assert_eq!(
                decode(&message[..cut]).unwrap_err(),
                DecodeError::Incomplete,
                "cut at {cut}"
            );
        }
        for at in 0..message.len() {
            for bit in [0x01u8, 0x80] {
                let mut damaged = message.clone();
                damaged[at] ^= bit;
                assert!(decode(&damaged).is_err(), "flip at {at}");
            }
        }
    }
}

//! Shard iterators: opaque tokens that remember where a reader is.
//!
//! A token is the URL-safe base64 of: format byte, issue time (i64 ms), stream incarnation id
//! (u64), shard index (u32), position (u128: the next read starts at the first record whose
//! sequence number is at or above it), the stream name, and a CRC32 of all of that. It is checked
//! on every use, so a token that was edited or truncated is "invalid", not misread. Integers are
//! big-endian.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long an iterator stays valid after it is issued, as in Kinesis.
pub const ITERATOR_TTL_MS: i64 = 5 * 60 * 1000;

const FORMAT: u8 = 1;
const FIXED_LEN: usize = 1 + 8 + 8 + 4 + 16;

/// The decoded content of a shard iterator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardIterator {
    /// When the iterator was issued, epoch ms.
    pub issued_ms: i64,
    /// The stream incarnation it reads.
    pub stream_id: u64,
    /// The stream's name.
    pub stream_name: String,
    /// The shard it reads.
    pub shard_index: u32,
    /// The next read returns records with sequence numbers at or above this.
    pub position: u128,
}

impl ShardIterator {
    /// Encodes the iterator as the token handed to clients.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(FIXED_LEN + self.stream_name.len() + 4);
        bytes.push(FORMAT);
        bytes.extend_from_slice(&self.issued_ms.to_be_bytes());
        bytes.extend_from_slice(&self.stream_id.to_be_bytes());
        bytes.extend_from_slice(&self.shard_index.to_be_bytes());
        bytes.extend_from_slice(&self.position.to_be_bytes());
        bytes.extend_from_slice(self.stream_name.as_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes a token; `None` if it was not made by this engine or was altered.
    pub fn decode(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (body, crc) = bytes.split_last_chunk::<4>()?;
        if crc32fast::hash(body) != u32::from_be_bytes(*crc) {
            return None;
        }
        let (fixed, name) = body.split_at_checked(FIXED_LEN)?;
        let (format, rest) = fixed.split_first()?;
        if *format != FORMAT {
            return None;
        }
        let (issued, rest) = rest.split_first_chunk::<8>()?;
        let (stream_id, rest) = rest.split_first_chunk::<8>()?;
        let (shard, rest) = rest.split_first_chunk::<4>()?;
        let position: [u8; 16] = rest.try_into().ok()?;
        Some(Self {
            issued_ms: i64::from_be_bytes(*issued),
            stream_id: u64::from_be_bytes(*stream_id),
            stream_name: String::from_utf8(name.to_vec()).ok()?,
            shard_index: u32::from_be_bytes(*shard),
            position: u128::from_be_bytes(position),
        })
    }

    /// Whether the iterator has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        now_ms - self.issued_ms > ITERATOR_TTL_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShardIterator {
        ShardIterator {
            issued_ms: 1_700_000_000_000,
            stream_id: 3,
            stream_name: "orders".into(),
            shard_index: 2,
            position: 1 << 100,
        }
    }

    #[test]
    fn encodes_to_exact_bytes_and_back() {
        let token = sample().encode();
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert_eq!(&bytes[..1], &[1]);
        assert_eq!(&bytes[1..9], &1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&bytes[9..17], &3u64.to_be_bytes());
        assert_eq!(&bytes[17..21], &2u32.to_be_bytes());
        assert_eq!(&bytes[21..37], &(1u128 << 100).to_be_bytes());
        assert_eq!(&bytes[37..43], b"orders");
        assert_eq!(bytes.len(), 47);
        assert_eq!(ShardIterator::decode(&token), Some(sample()));
    }

    #[test]
    fn any_alteration_is_rejected() {
        let bytes = URL_SAFE_NO_PAD.decode(sample().encode()).unwrap();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            assert_eq!(
                ShardIterator::decode(&URL_SAFE_NO_PAD.encode(&altered)),
                None,
                "byte {i}"
            );
            assert_eq!(
                ShardIterator::decode(&URL_SAFE_NO_PAD.encode(&bytes[..i])),
                None
            );
        }
        assert_eq!(ShardIterator::decode("not an iterator!"), None);
        assert_eq!(ShardIterator::decode(""), None);
    }

    #[test]
    fn expires_after_five_minutes() {
        let it = sample();
        assert!(!it.is_expired(it.issued_ms + ITERATOR_TTL_MS));
        assert!(it.is_expired(it.issued_ms + ITERATOR_TTL_MS + 1));
    }
}

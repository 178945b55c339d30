//! Shard iterators: opaque tokens that remember where a reader is.
//!
//! A token is the URL-safe base64 of: format byte, issue time (i64 ms), stream incarnation id
//! (u64), shard index (u32), position (u128: the next read starts at the first record whose
//! sequence number is at or above it), the stream name, and an HMAC-SHA256 of all of that under
//! the engine's [`TokenKey`], cut to 16 bytes. It is checked on every use, so a token that was
//! edited, truncated or made by hand is "invalid", never read as another position or stream.
//! Integers are big-endian.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

use crate::storage::StorageError;

/// How long an iterator stays valid after it is issued, as in Kinesis.
pub const ITERATOR_TTL_MS: i64 = 5 * 60 * 1000;

/// Format 1 carried a CRC32 instead of a MAC; its tokens are refused.
const FORMAT: u8 = 2;
const FIXED_LEN: usize = 1 + 8 + 8 + 4 + 16;

/// Bytes of MAC a token carries: HMAC-SHA256 cut to 128 bits.
pub(crate) const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// The key's file in a data directory.
const KEY_FILE: &str = "token.key";

/// The secret that signs shard iterators and `NextToken`s, so that the engine reads back only
/// tokens it made. Random per engine; a durable engine keeps it in its data directory
/// ([`TokenKey::load_or_create`]), so that iterators stay valid across a restart.
#[derive(Clone)]
pub struct TokenKey([u8; KEY_LEN]);

/// Never prints the key.
impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let mut key = [0; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// The key kept in `dir` (the data directory), made and saved first if there is none. The
    /// file is written whole under a temporary name, synced and renamed, so a crash leaves
    /// either no key or the whole key. A key file of the wrong size is replaced, with a
    /// warning: that costs only the iterators and tokens handed out before.
    ///
    /// # Errors
    /// The file or the directory could not be read or written.
    pub fn load_or_create(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(KEY_FILE);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StorageError::Io { path, source }
        };
        match std::fs::read(&path) {
            Ok(bytes) => match <[u8; KEY_LEN]>::try_from(bytes.as_slice()) {
                Ok(key) => return Ok(Self(key)),
                Err(_) => tracing::warn!(
                    path = %path.display(),
                    bytes = bytes.len(),
                    "the token key file has the wrong size; making a new key (earlier shard iterators and NextTokens become invalid)"
                ),
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(&path)(error)),
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key = Self::random();
        let temporary = dir.join(format!("{KEY_FILE}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(io(&temporary))?;
        file.write_all(&key.0)
            .and_then(|()| file.sync_all())
            .map_err(io(&temporary))?;
        drop(file);
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        // Make the rename durable (directories cannot be opened as files elsewhere).
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(key)
    }

    fn mac(&self, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(bytes);
        mac
    }

    /// The tag that authenticates `bytes`.
    pub(crate) fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        let full = self.mac(bytes).finalize().into_bytes();
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// `bytes` followed by their tag.
    pub(crate) fn seal(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        bytes
    }

    /// The bytes before the tag, if `sealed` ends with their tag (compared in constant time).
    pub(crate) fn open<'b>(&self, sealed: &'b [u8]) -> Option<&'b [u8]> {
        let (body, tag) = sealed.split_last_chunk::<TAG_LEN>()?;
        self.mac(body).verify_truncated_left(tag).ok()?;
        Some(body)
    }
}

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
    /// Encodes the iterator as the token handed to clients, signed with `key`.
    pub fn encode(&self, key: &TokenKey) -> String {
        let mut bytes = Vec::with_capacity(FIXED_LEN + self.stream_name.len() + TAG_LEN);
        bytes.push(FORMAT);
        bytes.extend_from_slice(&self.issued_ms.to_be_bytes());
        bytes.extend_from_slice(&self.stream_id.to_be_bytes());
        bytes.extend_from_slice(&self.shard_index.to_be_bytes());
        bytes.extend_from_slice(&self.position.to_be_bytes());
        bytes.extend_from_slice(self.stream_name.as_bytes());
        URL_SAFE_NO_PAD.encode(key.seal(bytes))
    }

    /// Decodes a token; `None` if it was not made with `key` or was altered.
    pub fn decode(token: &str, key: &TokenKey) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let body = key.open(&bytes)?;
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
        let key = TokenKey([7; KEY_LEN]);
        let token = sample().encode(&key);
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert_eq!(&bytes[..1], &[2]);
        assert_eq!(&bytes[1..9], &1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&bytes[9..17], &3u64.to_be_bytes());
        assert_eq!(&bytes[17..21], &2u32.to_be_bytes());
        assert_eq!(&bytes[21..37], &(1u128 << 100).to_be_bytes());
        assert_eq!(&bytes[37..43], b"orders");
        assert_eq!(&bytes[43..], &key.tag(&bytes[..43]));
        assert_eq!(bytes.len(), 43 + TAG_LEN);
        assert_eq!(ShardIterator::decode(&token, &key), Some(sample()));
    }

    #[test]
    fn any_alteration_is_rejected() {
        let key = TokenKey::random();
        let bytes = URL_SAFE_NO_PAD.decode(sample().encode(&key)).unwrap();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            assert_eq!(
                ShardIterator::decode(&URL_SAFE_NO_PAD.encode(&altered), &key),
                None,
                "byte {i}"
            );
            assert_eq!(
                ShardIterator::decode(&URL_SAFE_NO_PAD.encode(&bytes[..i]), &key),
                None
            );
        }
        assert_eq!(ShardIterator::decode("not an iterator!", &key), None);
        assert_eq!(ShardIterator::decode("", &key), None);
    }

    #[test]
    fn a_recomputed_checksum_or_another_key_is_rejected() {
        let key = TokenKey::random();
        // What a hand-made token with a valid CRC (the old format) looks like.
        let mut forged = URL_SAFE_NO_PAD.decode(sample().encode(&key)).unwrap();
        forged.truncate(43);
        forged[0] = 1;
        let crc = crc32fast::hash(&forged);
        forged.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(
            ShardIterator::decode(&URL_SAFE_NO_PAD.encode(&forged), &key),
            None
        );
        let other = TokenKey::random();
        assert_eq!(ShardIterator::decode(&sample().encode(&other), &key), None);
    }

    #[test]
    fn the_key_file_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = TokenKey::load_or_create(dir.path()).unwrap();
        let token = sample().encode(&first);
        let again = TokenKey::load_or_create(dir.path()).unwrap();
        assert_eq!(ShardIterator::decode(&token, &again), Some(sample()));
        assert_eq!(
            std::fs::read(dir.path().join(KEY_FILE)).unwrap().len(),
            KEY_LEN
        );
        assert!(!dir.path().join(format!("{KEY_FILE}.tmp")).exists());
        // A damaged key file is replaced rather than stopping the engine.
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let replaced = TokenKey::load_or_create(dir.path()).unwrap();
        assert_eq!(ShardIterator::decode(&token, &replaced), None);
        let kept = TokenKey::load_or_create(dir.path()).unwrap();
        assert_eq!(kept.0, replaced.0);
    }

    #[test]
    fn expires_after_five_minutes() {
        let it = sample();
        assert!(!it.is_expired(it.issued_ms + ITERATOR_TTL_MS));
        assert!(it.is_expired(it.issued_ms + ITERATOR_TTL_MS + 1));
    }
}

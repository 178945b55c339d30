//! Encryption at rest: the master key, the per-stream data keys it wraps, and the sealing of log
//! frames, all AES-256-GCM (`aws-lc-rs`).
//!
//! - **Master key** (32 bytes): given to the engine (a file or the builder), or made at the
//!   first StartStreamEncryption of a durable engine as `<data-dir>/master.key` (mode 0600). It
//!   only wraps data keys; no record is encrypted with it.
//! - **Data key** (32 random bytes): one per stream incarnation, made at its first
//!   StartStreamEncryption. The metadata snapshot keeps it wrapped: `nonce (12) || ciphertext
//!   (32) || tag (16)`, 60 bytes, sealed under the master key with a random nonce and the
//!   stream id as associated data, so a wrapped key copied to another stream does not open.
//! - **Sealed frames**: each batch of an encrypted stream is sealed whole under the stream's
//!   data key, with a fresh random 96-bit nonce from the system's CSPRNG and the frame's stream
//!   id field as associated data (layout in [`super::wal`]). One seal per batch keeps the cost
//!   per record to a share of one AES-GCM call.
//!
//! Why random nonces are safe here: a data key belongs to one stream incarnation, and NIST SP
//! 800-38D (section 8.3) allows 2^32 random-nonce seals per key, which keeps the chance of any
//! nonce repeating under 2^-32. That is 4.3 billion batches (PutRecord or PutRecords calls) to
//! one stream incarnation; a counter could repeat after a crash cut an unacknowledged frame
//! off the log, a random nonce does not depend on what the log kept.
//!
//! What this protects: the segment files and the metadata of a data directory read without the
//! master key. A `master.key` made by the engine sits in the same directory, so it protects
//! against someone who has the segments but not that file (a copied volume, a backup of the log
//! alone); keep the key elsewhere (`serve --master-key-file`) for more.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use parking_lot::Mutex;

use super::{StorageError, StreamId};

/// Bytes of every key.
pub const KEY_LEN: usize = 32;
/// Bytes of a GCM tag.
pub(crate) const TAG_LEN: usize = 16;
/// Bytes of a wrapped data key: nonce, encrypted key, tag.
pub(crate) const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
/// The file a durable engine makes for its master key when none is given.
pub(crate) const MASTER_KEY_FILE: &str = "master.key";

/// The key that wraps every stream's data key; see the [module docs](self).
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

/// Never prints the key.
impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A master key of these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn random() -> Self {
        let mut key = [0; KEY_LEN];
        fill_random(&mut key);
        Self(key)
    }

    /// Reads a key file's content: exactly 32 raw bytes, or 64 hex digits, or the standard
    /// base64 of 32 bytes (text forms may have surrounding whitespace, such as a final newline).
    ///
    /// # Errors
    /// The content is none of these.
    pub fn parse(content: &[u8]) -> Result<Self, String> {
        if let Ok(raw) = <[u8; KEY_LEN]>::try_from(content) {
            return Ok(Self(raw));
        }
        let text = std::str::from_utf8(content).unwrap_or_default().trim();
        if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut key = [0; KEY_LEN];
            for (i, byte) in key.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or_default();
            }
            return Ok(Self(key));
        }
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
            && let Ok(raw) = <[u8; KEY_LEN]>::try_from(bytes.as_slice())
        {
            return Ok(Self(raw));
        }
        Err(format!(
            "a master key is 32 raw bytes, 64 hex digits or the base64 of 32 bytes; got {} bytes \
             that are none of these",
            content.len()
        ))
    }

    /// The key in the file at `path` (see [`MasterKey::parse`]).
    ///
    /// # Errors
    /// The file cannot be read ([`StorageError::Io`]) or holds no key ([`StorageError::Key`]).
    pub fn from_file(path: &Path) -> Result<Self, StorageError> {
        let content = std::fs::read(path).map_err(|source| StorageError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&content)
            .map_err(|reason| StorageError::Key(format!("{}: {reason}", path.display())))
    }

    fn aead(&self) -> LessSafeKey {
        aead_key(&self.0)
    }

    /// Wraps the data key of `stream` (see the [module docs](self)).
    pub(crate) fn wrap(&self, stream: StreamId, data_key: &[u8; KEY_LEN]) -> Vec<u8> {
        let mut nonce = [0; NONCE_LEN];
        fill_random(&mut nonce);
        let mut out = nonce.to_vec();
        let mut body = data_key.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(wrap_aad(stream)),
                &mut body,
            )
            .expect("AES-GCM seals 32 bytes");
        out.extend_from_slice(&body);
        out
    }

    /// The data key of `stream` that [`MasterKey::wrap`] wrapped, or `None` if `wrapped` was
    /// wrapped by another master key, for another stream, or altered.
    pub(crate) fn unwrap(&self, stream: StreamId, wrapped: &[u8]) -> Option<[u8; KEY_LEN]> {
        if wrapped.len() != WRAPPED_LEN {
            return None;
        }
        let (nonce, body) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(wrap_aad(stream)), &mut body)
            .ok()?;
        <[u8; KEY_LEN]>::try_from(&*plain).ok()
    }

    /// Writes the key to `<dir>/master.key` with mode 0600, whole (temporary file, sync, rename,
    /// directory sync). Fails if the file exists: a key is never replaced, since the data it
    /// wrapped would be lost.
    fn create_file(&self, dir: &Path) -> Result<PathBuf, StorageError> {
        let path = dir.join(MASTER_KEY_FILE);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StorageError::Io { path, source }
        };
        let temporary = dir.join(format!("{MASTER_KEY_FILE}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(io(&temporary))?;
        file.write_all(&self.0)
            .and_then(|()| file.sync_all())
            .map_err(io(&temporary))?;
        drop(file);
        if path.exists() {
            return Err(StorageError::Key(format!(
                "{} appeared while making a new master key; not replacing it",
                path.display()
            )));
        }
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(path)
    }
}

/// Associated data of a wrapped data key: a label and the stream id.
fn wrap_aad(stream: StreamId) -> [u8; 24] {
    let mut aad = [0; 24];
    aad[..16].copy_from_slice(b"shardline-dkey-1");
    aad[16..].copy_from_slice(&stream.to_le_bytes());
    aad
}

/// Where an engine's master key comes from, resolved lazily: an engine that never encrypts a
/// stream never makes a key file.
#[derive(Debug)]
pub(crate) struct MasterKeySlot {
    key: Mutex<Option<MasterKey>>,
    /// Where to make one if there is none (a durable engine's data directory).
    create_in: Option<PathBuf>,
}

impl MasterKeySlot {
    /// A slot holding `key`.
    pub(crate) fn given(key: MasterKey) -> Self {
        Self {
            key: Mutex::new(Some(key)),
            create_in: None,
        }
    }

    /// The key of data directory `dir`: `<dir>/master.key` if it exists, else one made there
    /// when first needed.
    pub(crate) fn in_dir(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(MASTER_KEY_FILE);
        let key = match path.try_exists() {
            Ok(true) => Some(MasterKey::from_file(&path)?),
            Ok(false) => None,
            Err(source) => return Err(StorageError::Io { path, source }),
        };
        Ok(Self {
            key: Mutex::new(key),
            create_in: Some(dir.to_owned()),
        })
    }

    /// No key, and none is ever made (an in-memory engine keeps no data to protect).
    pub(crate) fn none() -> Self {
        Self {
            key: Mutex::new(None),
            create_in: None,
        }
    }

    /// The key, if there is one.
    pub(crate) fn get(&self) -> Option<MasterKey> {
        self.key.lock().clone()
    }

    /// The key, made (and saved in the data directory) if there is none yet; `None` for an
    /// engine that keeps nothing on disk.
    pub(crate) fn get_or_create(&self) -> Result<Option<MasterKey>, StorageError> {
        let mut key = self.key.lock();
        if key.is_none()
            && let Some(dir) = &self.create_in
        {
            let made = MasterKey::random();
            let path = made.create_file(dir)?;
            tracing::info!(path = %path.display(), "made a master key for encryption at rest");
            *key = Some(made);
        }
        Ok(key.clone())
    }
}

/// A stream's data key, ready to seal and open frames.
pub struct DataKey(LessSafeKey);

/// Never prints the key.
impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random data key and its bytes (to wrap).
    pub(crate) fn generate() -> (Self, [u8; KEY_LEN]) {
        let mut raw = [0; KEY_LEN];
        fill_random(&mut raw);
        (Self::new(&raw), raw)
    }

    /// The data key of these bytes.
    pub(crate) fn new(raw: &[u8; KEY_LEN]) -> Self {
        Self(aead_key(raw))
    }

    /// Encrypts `buf[from..]` in place and appends the tag, authenticating `aad` too; returns
    /// the random nonce used.
    pub(crate) fn seal(&self, aad: &[u8], buf: &mut Vec<u8>, from: usize) -> [u8; NONCE_LEN] {
        let mut nonce = [0; NONCE_LEN];
        fill_random(&mut nonce);
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf[from..],
            )
            .expect("AES-GCM seals any frame the log accepts");
        buf.extend_from_slice(tag.as_ref());
        nonce
    }

    /// Decrypts `sealed` (ciphertext then tag) in place; returns the plaintext's length, or
    /// `None` if it does not authenticate under this key, `nonce` and `aad`.
    pub(crate) fn open(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        sealed: &mut [u8],
    ) -> Option<usize> {
        self.0
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
            .ok()
            .map(|plain| plain.len())
    }
}

fn aead_key(raw: &[u8; KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, raw).expect("32 bytes make an AES-256 key"))
}

fn fill_random(buf: &mut [u8]) {
    aws_lc_rs::rand::fill(buf).expect("the system's random number generator works");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_raw_hex_or_base64() {
        let raw = [7u8; KEY_LEN];
        assert_eq!(MasterKey::parse(&raw).unwrap().0, raw);
        let hex = format!("{}\n", "07".repeat(32));
        assert_eq!(MasterKey::parse(hex.as_bytes()).unwrap().0, raw);
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(MasterKey::parse(b64.as_bytes()).unwrap().0, raw);
        assert!(MasterKey::parse(b"short").is_err());
        assert!(MasterKey::parse(&[1; 33]).is_err());
    }

    #[test]
    fn a_wrapped_key_opens_only_with_its_master_key_and_stream() {
        let master = MasterKey::random();
        let (_, raw) = DataKey::generate();
        let wrapped = master.wrap(5, &raw);
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert_eq!(master.unwrap(5, &wrapped), Some(raw));
        assert_eq!(master.unwrap(6, &wrapped), None);
        assert_eq!(MasterKey::random().unwrap(5, &wrapped), None);
        let mut altered = wrapped.clone();
        altered[20] ^= 1;
        assert_eq!(master.unwrap(5, &altered), None);
    }

    #[test]
    fn sealing_uses_a_new_nonce_each_time_and_authenticates() {
        let (key, _) = DataKey::generate();
        let mut one = b"headerplaintext".to_vec();
        let mut two = one.clone();
        let n1 = key.seal(b"aad", &mut one, 6);
        let n2 = key.seal(b"aad", &mut two, 6);
        assert_ne!(n1, n2);
        assert_ne!(one, two);
        assert!(!one.windows(9).any(|w| w == b"plaintext"));
        let mut body = one[6..].to_vec();
        let len = key.open(n1, b"aad", &mut body).unwrap();
        assert_eq!(&body[..len], b"plaintext");
        let mut body = one[6..].to_vec();
        assert_eq!(key.open(n1, b"other", &mut body), None);
    }
}

//! StartStreamEncryption and StopStreamEncryption: server-side encryption as AWS answers it.
//!
//! Both take the stream (name or ARN), `EncryptionType` (only `KMS` is valid) and `KeyId` (1 to
//! 2,048 characters), need the stream ACTIVE (else ResourceInUseException), and turn it
//! UPDATING for the engine's stream create delay; records put meanwhile keep the previous
//! setting, and the new one applies once the stream is ACTIVE again, as on AWS. Each may
//! succeed 25 times per stream in a rolling 24 hours (LimitExceededException).
//!
//! Without KMS the engine checks only the form of `KeyId`: a key id (a UUID, or `mrk-` and 32
//! hex digits for a multi-Region key), a key ARN, an alias name (`alias/...`, such as
//! `alias/aws/kinesis`) or an alias ARN. Anything else is KMSNotFoundException, which is what
//! AWS answers for a key that does not exist; a well-formed id is taken as a usable key.
//!
//! In a durable engine the first StartStreamEncryption of a stream makes its data key, wrapped
//! by the master key, and saves it in the metadata before any record is sealed with it (see
//! `storage::crypto` and the ordering rule in `storage::wal`).

use serde::Deserialize;

use crate::error::ApiError;
use crate::model::registry::Pending;
use crate::model::stream::StreamKey;
use crate::storage::crypto::DataKey;

use super::Kinesis;
use super::validate::Violations;

/// Successful starts (and stops) allowed per stream in a rolling day.
const CHANGES_PER_DAY: usize = 25;
const DAY_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EncryptionInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    encryption_type: Option<String>,
    key_id: Option<String>,
}

impl Kinesis {
    pub(crate) fn start_encryption(&self, input: EncryptionInput) -> Result<(), ApiError> {
        self.set_encryption(input, true)
    }

    pub(crate) fn stop_encryption(&self, input: EncryptionInput) -> Result<(), ApiError> {
        self.set_encryption(input, false)
    }

    fn set_encryption(&self, input: EncryptionInput, start: bool) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.encryption_type, "encryptionType");
        v.require(&input.key_id, "keyId");
        if let Some(kind) = &input.encryption_type {
            v.check(
                kind == "KMS" || kind == "NONE",
                kind,
                "encryptionType",
                "satisfy enum value set: [KMS, NONE]",
            );
        }
        if let Some(key_id) = &input.key_id {
            v.length(key_id, "keyId", 1, 2048);
        }
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        if input.encryption_type.as_deref() != Some("KMS") {
            return Err(ApiError::InvalidArgument(
                "Invalid EncryptionType NONE: the only valid value is KMS.".into(),
            ));
        }
        let key_id = input.key_id.unwrap_or_default();
        if !is_key_id(&key_id) {
            return Err(ApiError::KmsNotFound(format!(
                "Invalid keyId {key_id}: not a KMS key id, key ARN, alias name or alias ARN."
            )));
        }
        let stream = self.stream(&name)?;
        let _guard = self.control.lock();
        let now = self.now_ms();
        let (mut meta, needs_key) = {
            let mut state = stream.state.lock();
            if state.deleted {
                return Err(self.stream_not_found(&name));
            }
            let status = self.status_of(&stream, &state);
            if status != "ACTIVE" {
                return Err(ApiError::ResourceInUse(format!(
                    "Stream {name} under account {} not ACTIVE, instead in state {status}.",
                    self.config.account_id
                )));
            }
            let history = match start {
                true => &mut state.encryption.starts_ms,
                false => &mut state.encryption.stops_ms,
            };
            history.retain(|&at| at > now - DAY_MS);
            if history.len() >= CHANGES_PER_DAY {
                let operation = if start { "started" } else { "stopped" };
                return Err(ApiError::LimitExceeded(format!(
                    "Encryption of stream {name} under account {} was {operation} \
                     {CHANGES_PER_DAY} times in the last 24 hours, the most allowed.",
                    self.config.account_id
                )));
            }
            // The data key is made once per stream, by the first start of a durable engine.
            let needs_key = start && self.config.durable && state.encryption.data_key.is_none();
            let mut meta = state.encryption.to_meta().unwrap_or_default();
            meta.key_id = start.then(|| key_id.clone());
            (meta, needs_key)
        };
        // Made without the stream's lock (making the master key writes a file); the control
        // lock keeps any other change of the stream out meanwhile.
        let new_key = needs_key
            .then(|| self.new_data_key(stream.id))
            .transpose()?;
        if let Some(key) = &new_key {
            use base64::Engine as _;
            meta.data_key = Some(base64::engine::general_purpose::STANDARD.encode(&key.wrapped));
        }
        // Saved before it takes effect: no record is sealed with a key the disk does not hold.
        self.save_metadata(Pending::Encryption(stream.id, &meta))?;
        let mut state = stream.state.lock();
        let encryption = &mut state.encryption;
        encryption.was_on = encryption.encrypts_at(now);
        encryption.key_id = meta.key_id;
        encryption.effective_ms = now + self.config.create_delay_ms;
        if let Some(key) = new_key {
            // Sealed batches are read back with it once their records leave the cache.
            self.registry
                .backing
                .remember_key(stream.id, key.key.clone());
            encryption.data_key = Some(key);
        }
        match start {
            true => encryption.starts_ms.push(now),
            false => encryption.stops_ms.push(now),
        }
        tracing::info!(stream = %name, start, key_id = %key_id, "changed stream encryption");
        Ok(())
    }

    /// A fresh data key for `stream`, wrapped by the master key (made first if needed).
    fn new_data_key(&self, stream: crate::storage::StreamId) -> Result<StreamKey, ApiError> {
        let master = self.config.master_key.get_or_create()?.ok_or_else(|| {
            ApiError::InternalFailure("a durable engine has no master key".into())
        })?;
        let (key, raw) = DataKey::generate();
        Ok(StreamKey {
            wrapped: master.wrap(stream, &raw),
            key: std::sync::Arc::new(key),
        })
    }
}

/// Whether `id` has the form of a KMS key id, key ARN, alias name or alias ARN.
fn is_key_id(id: &str) -> bool {
    if let Some(rest) = id.strip_prefix("arn:") {
        // arn:<partition>:kms:<region>:<account>:key/<id> or :alias/<name>
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else {
            return false;
        };
        let resource_ok = match resource.split_once('/') {
            Some(("key", key)) => is_bare_key_id(key),
            Some(("alias", name)) => is_alias_name(name),
            _ => false,
        };
        return partition.starts_with("aws")
            && service == "kms"
            && !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource_ok;
    }
    match id.strip_prefix("alias/") {
        Some(name) => is_alias_name(name),
        None => is_bare_key_id(id),
    }
}

/// A key id: a UUID, or a multi-Region key id (`mrk-` and 32 hex digits).
fn is_bare_key_id(id: &str) -> bool {
    if let Some(hex) = id.strip_prefix("mrk-") {
        return hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    uuid::Uuid::try_parse(id).is_ok() && id.len() == 36
}

/// An alias name after `alias/`: KMS allows letters, digits, `/`, `_` and `-`, up to 256.
fn is_alias_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 250
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::is_key_id;

    #[test]
    fn key_ids_of_every_documented_form_are_accepted() {
        for id in [
            "12345678-1234-1234-1234-123456789012",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012",
            "arn:aws:kms:us-east-1:123456789012:alias/MyAliasName",
            "alias/MyAliasName",
            "alias/aws/kinesis",
        ] {
            assert!(is_key_id(id), "{id}");
        }
        for id in [
            "",
            "alias/",
            "not-a-key",
            "12345678-1234-1234-1234-12345678901",
            "arn:aws:kinesis:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012",
            "arn:aws:kms:us-east-1:1234:alias/x",
            "alias/with space",
        ] {
            assert!(!is_key_id(id), "{id}");
        }
    }
}

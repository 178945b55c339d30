//! The keys a verifying engine accepts: built in code, or read from a TOML credentials file.
//!
//! ```toml
//! # One [[keys]] table per access key.
//! [[keys]]
//! access_key_id = "AKIDADMIN"
//! secret_access_key = "admin-secret"
//! admin = true                      # may call the /_shardline/ endpoints; default false
//!
//! [[keys]]
//! access_key_id = "AKIDPRODUCER"
//! secret_access_key = "producer-secret"
//! session_token = "FwoGZXIvYXdzE..." # optional: requests must then carry exactly this token
//! user = "producer"                  # the IAM user named in AccessDenied messages
//!
//! [[keys.rules]]                     # no rules: full access; some rules: only what they allow
//! effect = "allow"
//! actions = ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:Describe*", "kinesis:List*"]
//! resources = ["arn:aws:kinesis:*:*:stream/orders*"]
//! ```

use std::path::Path;

use serde::Deserialize;

use super::rules::Rule;

/// An access key the engine accepts: its id, secret, optional session token, access rules and
/// whether it may call the admin endpoints.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// The access key id, such as `AKIDEXAMPLE`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// If set, every request signed with this key must carry this session token.
    #[serde(default)]
    pub session_token: Option<String>,
    /// The IAM user name in ARNs and AccessDenied messages; default the access key id.
    #[serde(default)]
    pub user: Option<String>,
    /// Whether the key may call the engine's `/_shardline/` endpoints.
    #[serde(default)]
    pub admin: bool,
    /// Access rules; none means full access.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<set>"),
            )
            .field("user", &self.user)
            .field("admin", &self.admin)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl AccessKey {
    /// A key with full access to Kinesis and DynamoDB, not admin, without a session token.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            user: None,
            admin: false,
            rules: Vec::new(),
        }
    }

    /// Requires this session token on every request signed with the key.
    #[must_use]
    pub fn session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// The IAM user name shown in AccessDenied messages.
    #[must_use]
    pub fn user(mut self, name: impl Into<String>) -> Self {
        self.user = Some(name.into());
        self
    }

    /// Lets the key call the admin endpoints.
    #[must_use]
    pub fn admin(mut self, admin: bool) -> Self {
        self.admin = admin;
        self
    }

    /// Adds an access rule (see [`Rule`]); once a key has rules, it may do only what they allow.
    #[must_use]
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The user name in ARNs.
    pub(crate) fn user_name(&self) -> &str {
        self.user.as_deref().unwrap_or(&self.access_key_id)
    }
}

/// The set of access keys a verifying engine accepts.
///
/// ```
/// use core_engine::auth::{AccessKey, Credentials, Rule};
/// let credentials = Credentials::new()
///     .key(AccessKey::new("AKIDADMIN", "admin-secret").admin(true))
///     .key(
///         AccessKey::new("AKIDCONSUMER", "consumer-secret")
///             .rule(Rule::allow(["kinesis:*", "dynamodb:*"], ["*"]))
///             .rule(Rule::deny(["kinesis:PutRecord*"], ["*"])),
///     );
/// # let _ = core_engine::Engine::builder().credentials(credentials);
/// ```
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The keys, in file order.
    #[serde(default)]
    pub keys: Vec<AccessKey>,
}

impl Credentials {
    /// No keys yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One key with full access, admin included: what `serve --access-key --secret-key` uses.
    pub fn single(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self::new().key(AccessKey::new(access_key_id, secret_access_key).admin(true))
    }

    /// Adds a key.
    #[must_use]
    pub fn key(mut self, key: AccessKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Parses the TOML credentials format (see the module documentation) and validates it.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let credentials: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        credentials.validate()?;
        Ok(credentials)
    }

    /// Reads and parses a TOML credentials file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read credentials file {}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| format!("credentials file {}: {e}", path.display()))
    }

    /// Why the keys are not usable, if they are not: none at all, an empty id or secret, an
    /// id used twice, or a malformed rule.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.keys.is_empty() {
            return Err("credentials need at least one key".into());
        }
        let mut seen = std::collections::HashSet::new();
        for key in &self.keys {
            let id = &key.access_key_id;
            if id.is_empty() || key.secret_access_key.is_empty() {
                return Err("an access key id and its secret must not be empty".into());
            }
            // The id travels inside `Credential=id/date/...`, so it cannot hold these.
            if id.contains(['/', ',', ' ', '=']) {
                return Err(format!(
                    "access key id {id:?} must not contain / , = or spaces"
                ));
            }
            if !seen.insert(id.as_str()) {
                return Err(format!("access key id {id:?} is listed twice"));
            }
            for rule in &key.rules {
                rule.validate()
                    .map_err(|e| format!("access key {id:?}: {e}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rules::Effect;

    #[test]
    fn the_documented_file_parses() {
        let text = r#"
            [[keys]]
            access_key_id = "AKIDADMIN"
            secret_access_key = "admin-secret"
            admin = true

            [[keys]]
            access_key_id = "AKIDPRODUCER"
            secret_access_key = "producer-secret"
            session_token = "token"
            user = "producer"

            [[keys.rules]]
            effect = "allow"
            actions = ["kinesis:PutRecord", "kinesis:PutRecords"]
            resources = ["arn:aws:kinesis:*:*:stream/orders*"]

            [[keys.rules]]
            effect = "deny"
            actions = ["kinesis:DeleteStream"]
        "#;
        let credentials = Credentials::from_toml(text).unwrap();
        assert_eq!(credentials.keys.len(), 2);
        assert!(credentials.keys[0].admin);
        let producer = &credentials.keys[1];
        assert_eq!(producer.session_token.as_deref(), Some("token"));
        assert_eq!(producer.user_name(), "producer");
        assert_eq!(producer.rules.len(), 2);
        assert_eq!(producer.rules[1].effect, Effect::Deny);
        assert_eq!(producer.rules[1].resources, ["*"]);
        assert!(!format!("{producer:?}").contains("producer-secret"));
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let err = |text: &str| Credentials::from_toml(text).unwrap_err();
        assert!(err("").contains("at least one key"));
        assert!(err("[[keys]]\naccess_key_id = \"A\"\n").contains("secret_access_key"));
        assert!(
            err("[[keys]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\nadmn = true\n")
                .contains("admn")
        );
        let twice = "[[keys]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\n".repeat(2);
        assert!(err(&twice).contains("twice"));
        let bad_effect = "[[keys]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\n[[keys.rules]]\neffect = \"maybe\"\nactions = [\"*\"]\n";
        assert!(err(bad_effect).contains("maybe"));
        let bad_action = "[[keys]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\n[[keys.rules]]\neffect = \"allow\"\nactions = [\"PutRecord\"]\n";
        assert!(err(bad_action).contains("service:Action"));
    }
}

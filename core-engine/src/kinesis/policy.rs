//! PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy for streams and consumers.
//!
//! The policy document is kept exactly as given and returned by GetResourcePolicy; deleting the
//! stream or deregistering the consumer deletes it. The engine does not enforce resource
//! policies: who may call what is decided by the engine's access rules alone.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

use super::Kinesis;
use super::resource::Resource;
use super::validate::Violations;

/// Largest policy document accepted, in bytes (the IAM limit for resource-based policies).
const MAX_POLICY_BYTES: usize = 20_480;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutPolicyInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    policy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PolicyRef {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetPolicyOutput {
    policy: String,
}

/// Checks that `policy` is a JSON object with a `Statement`, as IAM requires of a policy.
fn check_document(policy: &str) -> Result<(), ApiError> {
    let invalid = |why: &str| ApiError::InvalidArgument(format!("Invalid policy document: {why}"));
    if policy.len() > MAX_POLICY_BYTES {
        return Err(ApiError::LimitExceeded(format!(
            "The policy document is {} bytes long; at most {MAX_POLICY_BYTES} bytes are allowed.",
            policy.len()
        )));
    }
    let document: serde_json::Value =
        serde_json::from_str(policy).map_err(|e| invalid(&format!("not valid JSON ({e}).")))?;
    let Some(object) = document.as_object() else {
        return Err(invalid("it must be a JSON object."));
    };
    match object.get("Statement") {
        Some(serde_json::Value::Array(statements)) if !statements.is_empty() => Ok(()),
        Some(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(invalid("it must contain a Statement.")),
    }
}

impl Kinesis {
    pub(crate) fn put_resource_policy(&self, input: PutPolicyInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.policy, "policy");
        let resource = self.resolve_resource(input.resource_arn.as_deref(), v)?;
        let policy = input.policy.unwrap_or_default();
        check_document(&policy)?;
        self.set_policy(&resource, Some(policy))?;
        tracing::info!(resource = ?input.resource_arn, "put resource policy");
        Ok(())
    }

    pub(crate) fn get_resource_policy(
        &self,
        input: PolicyRef,
    ) -> Result<GetPolicyOutput, ApiError> {
        let resource =
            self.resolve_resource(input.resource_arn.as_deref(), Violations::default())?;
        let state = resource.stream().state.lock();
        let policy = match &resource {
            Resource::Stream(_) => state.settings.policy.clone(),
            Resource::Consumer(_, name) => state.consumers.get(name).and_then(|c| c.policy.clone()),
        };
        // A resource without a policy answers with an empty document, as AWS does.
        Ok(GetPolicyOutput {
            policy: policy.unwrap_or_else(|| "{}".to_owned()),
        })
    }

    /// Deletes the policy; deleting a policy the resource does not have succeeds.
    pub(crate) fn delete_resource_policy(&self, input: PolicyRef) -> Result<(), ApiError> {
        let resource =
            self.resolve_resource(input.resource_arn.as_deref(), Violations::default())?;
        self.set_policy(&resource, None)?;
        tracing::info!(resource = ?input.resource_arn, "deleted resource policy");
        Ok(())
    }

    fn set_policy(&self, resource: &Resource, policy: Option<String>) -> Result<(), ApiError> {
        self.keep(resource.stream(), |meta| {
            match resource {
                Resource::Stream(_) => meta.settings.policy = policy,
                Resource::Consumer(_, name) => {
                    let consumer = meta
                        .consumers
                        .iter_mut()
                        .find(|c| c.name == *name)
                        .ok_or_else(|| {
                            ApiError::ResourceNotFound(format!("Consumer {name} not found."))
                        })?;
                    consumer.policy = policy;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_must_be_a_json_object_with_a_statement() {
        assert!(
            check_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}"#).is_ok()
        );
        assert!(check_document(r#"{"Statement":{"Effect":"Allow"}}"#).is_ok());
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Statement":[]}"#,
        ] {
            let err = check_document(bad).unwrap_err();
            assert_eq!(err.code(), "InvalidArgumentException", "{bad}");
        }
        let huge = format!(
            r#"{{"Statement":[],"Pad":"{}"}}"#,
            "x".repeat(MAX_POLICY_BYTES)
        );
        assert_eq!(
            check_document(&huge).unwrap_err().code(),
            "LimitExceededException"
        );
    }
}

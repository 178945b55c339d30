//! DescribeAccountSettings and UpdateAccountSettings: the account's minimum throughput billing
//! commitment (On-demand Advantage), which UpdateStreamWarmThroughput requires.
//!
//! As AWS documents it: a commitment lasts at least 24 hours; disabling it sooner schedules its
//! end at the earliest allowed end (status `ENABLED_UNTIL_EARLIEST_ALLOWED_END`), and enabling
//! it again before then cancels the scheduled end. Times follow the engine clock.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::settings::{AccountSettings, CommitmentStatus};
use crate::protocol::json::Timestamp;

use super::Kinesis;
use super::validate::Violations;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeAccountSettingsInput {}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateAccountSettingsInput {
    minimum_throughput_billing_commitment: Option<CommitmentInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommitmentInput {
    status: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AccountSettingsOutput {
    minimum_throughput_billing_commitment: CommitmentOutput,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CommitmentOutput {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    earliest_allowed_end_at: Option<Timestamp>,
}

fn output(account: &AccountSettings, now_ms: i64) -> AccountSettingsOutput {
    let status = account.commitment_status(now_ms);
    let started = account.commitment_started_ms;
    AccountSettingsOutput {
        minimum_throughput_billing_commitment: CommitmentOutput {
            status: status.as_str(),
            started_at: started.map(Timestamp),
            ended_at: account.commitment_ends_ms.map(Timestamp),
            earliest_allowed_end_at: (status != CommitmentStatus::Disabled)
                .then(|| account.earliest_allowed_end_ms().map(Timestamp))
                .flatten(),
        },
    }
}

impl Kinesis {
    pub(crate) fn describe_account_settings(
        &self,
        _input: DescribeAccountSettingsInput,
    ) -> Result<AccountSettingsOutput, ApiError> {
        Ok(output(&self.registry.account.lock(), self.now_ms()))
    }

    pub(crate) fn update_account_settings(
        &self,
        input: UpdateAccountSettingsInput,
    ) -> Result<AccountSettingsOutput, ApiError> {
        let mut v = Violations::default();
        let path = "minimumThroughputBillingCommitment";
        v.require(&input.minimum_throughput_billing_commitment, path);
        let status = input
            .minimum_throughput_billing_commitment
            .and_then(|c| {
                if c.status.is_none() {
                    v.missing(&format!("{path}.status"));
                }
                c.status
            })
            .unwrap_or_default();
        let enable = match status.as_str() {
            "ENABLED" => true,
            "DISABLED" => false,
            other => {
                if v.is_empty() {
                    v.check(
                        false,
                        other,
                        &format!("{path}.status"),
                        "satisfy enum value set: [ENABLED, DISABLED]",
                    );
                }
                false
            }
        };
        v.finish()?;
        let now = self.now_ms();
        let out = self.keep_account(|account| {
            if enable {
                account.enable_commitment(now);
            } else {
                account.disable_commitment(now);
            }
            Ok(output(account, now))
        })?;
        tracing::info!(
            status = out.minimum_throughput_billing_commitment.status,
            "updated the minimum throughput billing commitment"
        );
        Ok(out)
    }
}

//! Settings that AWS keeps for a stream or the account but that do not change where records are
//! stored: enhanced monitoring, the resource policy, warm throughput, the record distribution
//! strategy, and the account's minimum throughput billing commitment. They are saved in the
//! metadata snapshot with the rest of the stream.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A shard-level metric of enhanced monitoring, in the order AWS documents them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Metric {
    IncomingBytes,
    IncomingRecords,
    OutgoingBytes,
    OutgoingRecords,
    WriteProvisionedThroughputExceeded,
    ReadProvisionedThroughputExceeded,
    IteratorAgeMilliseconds,
}

impl Metric {
    /// Every metric: what `ALL` stands for.
    pub(crate) const ALL: [Metric; 7] = [
        Self::IncomingBytes,
        Self::IncomingRecords,
        Self::OutgoingBytes,
        Self::OutgoingRecords,
        Self::WriteProvisionedThroughputExceeded,
        Self::ReadProvisionedThroughputExceeded,
        Self::IteratorAgeMilliseconds,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::IncomingBytes => "IncomingBytes",
            Self::IncomingRecords => "IncomingRecords",
            Self::OutgoingBytes => "OutgoingBytes",
            Self::OutgoingRecords => "OutgoingRecords",
            Self::WriteProvisionedThroughputExceeded => "WriteProvisionedThroughputExceeded",
            Self::ReadProvisionedThroughputExceeded => "ReadProvisionedThroughputExceeded",
            Self::IteratorAgeMilliseconds => "IteratorAgeMilliseconds",
        }
    }

    /// The metric a request names; `ALL` is handled by the caller.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// How puts to a stream choose their shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Distribution {
    /// By the MD5 hash of the partition key, or the explicit hash key (the default).
    #[default]
    UserPartitionKey,
    /// Evenly over the open shards, ignoring keys (on-demand streams only).
    Auto,
}

impl Distribution {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::UserPartitionKey => "USER_PARTITION_KEY",
            Self::Auto => "AUTO",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "USER_PARTITION_KEY" => Some(Self::UserPartitionKey),
            "AUTO" => Some(Self::Auto),
            _ => None,
        }
    }
}

/// A stream's kept settings. Every field has a default so that metadata written before they
/// existed still loads.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct StreamSettings {
    /// Shard-level metrics enabled by EnableEnhancedMonitoring.
    pub(crate) metrics: BTreeSet<Metric>,
    /// The resource policy document, exactly as PutResourcePolicy received it.
    pub(crate) policy: Option<String>,
    /// Warm throughput asked for with UpdateStreamWarmThroughput, in MiB/s.
    pub(crate) warm_throughput_mibps: Option<u32>,
    /// The record distribution strategy.
    pub(crate) distribution: Distribution,
    /// Where AUTO distribution goes next, as a position among the open shards.
    #[serde(skip)]
    pub(crate) auto_cursor: usize,
}

impl super::stream::StreamState {
    /// Whether puts ignore partition and hash keys and spread over the open shards: AUTO
    /// distribution on an on-demand stream (a stream made provisioned again keeps the setting,
    /// which applies once it is on-demand again).
    pub(crate) fn distributes_automatically(&self) -> bool {
        self.mode == super::stream::StreamMode::OnDemand
            && self.settings.distribution == Distribution::Auto
    }
}

/// How long a minimum throughput billing commitment lasts at least, once enabled.
pub(crate) const COMMITMENT_MINIMUM_MS: i64 = 24 * 3_600_000;

/// The account's settings (DescribeAccountSettings).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct AccountSettings {
    /// When the current (or last) minimum throughput billing commitment started.
    pub(crate) commitment_started_ms: Option<i64>,
    /// When it ends or ended: set by disabling it, to the earliest allowed end at the soonest.
    pub(crate) commitment_ends_ms: Option<i64>,
}

/// The status of the minimum throughput billing commitment at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitmentStatus {
    Enabled,
    Disabled,
    /// Disabled before its minimum duration was over: it ends at the earliest allowed end.
    EnabledUntilEarliestAllowedEnd,
}

impl CommitmentStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
            Self::EnabledUntilEarliestAllowedEnd => "ENABLED_UNTIL_EARLIEST_ALLOWED_END",
        }
    }
}

impl AccountSettings {
    /// The earliest instant the current commitment may end.
    pub(crate) fn earliest_allowed_end_ms(&self) -> Option<i64> {
        self.commitment_started_ms
            .map(|start| start + COMMITMENT_MINIMUM_MS)
    }

    pub(crate) fn commitment_status(&self, now_ms: i64) -> CommitmentStatus {
        match (self.commitment_started_ms, self.commitment_ends_ms) {
            (None, _) => CommitmentStatus::Disabled,
            (Some(_), None) => CommitmentStatus::Enabled,
            (Some(_), Some(end)) if now_ms < end => {
                CommitmentStatus::EnabledUntilEarliestAllowedEnd
            }
            (Some(_), Some(_)) => CommitmentStatus::Disabled,
        }
    }

    /// Whether the commitment is in force at `now_ms` (warm throughput needs it).
    pub(crate) fn commitment_in_force(&self, now_ms: i64) -> bool {
        self.commitment_status(now_ms) != CommitmentStatus::Disabled
    }

    /// Enables the commitment: a new one starts unless one is in force, and a scheduled end
    /// is cancelled.
    pub(crate) fn enable_commitment(&mut self, now_ms: i64) {
        match self.commitment_status(now_ms) {
            CommitmentStatus::Enabled => {}
            CommitmentStatus::EnabledUntilEarliestAllowedEnd => self.commitment_ends_ms = None,
            CommitmentStatus::Disabled => {
                self.commitment_started_ms = Some(now_ms);
                self.commitment_ends_ms = None;
            }
        }
    }

    /// Disables the commitment: at once if its minimum duration is over, otherwise at the
    /// earliest allowed end.
    pub(crate) fn disable_commitment(&mut self, now_ms: i64) {
        if self.commitment_status(now_ms) != CommitmentStatus::Enabled {
            return;
        }
        let earliest = self.earliest_allowed_end_ms().unwrap_or(now_ms);
        self.commitment_ends_ms = Some(earliest.max(now_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commitment_lasts_at_least_its_minimum_duration() {
        let mut account = AccountSettings::default();
        assert_eq!(account.commitment_status(0), CommitmentStatus::Disabled);
        account.enable_commitment(1_000);
        assert_eq!(account.commitment_status(2_000), CommitmentStatus::Enabled);
        account.disable_commitment(2_000);
        assert_eq!(
            account.commitment_status(2_000),
            CommitmentStatus::EnabledUntilEarliestAllowedEnd
        );
        assert_eq!(
            account.commitment_ends_ms,
            Some(1_000 + COMMITMENT_MINIMUM_MS)
        );
        assert_eq!(
            account.commitment_status(1_000 + COMMITMENT_MINIMUM_MS),
            CommitmentStatus::Disabled
        );
        // Enabling again before the end cancels the scheduled end.
        account.enable_commitment(3_000);
        assert_eq!(
            account.commitment_status(COMMITMENT_MINIMUM_MS * 2),
            CommitmentStatus::Enabled
        );
        assert_eq!(account.commitment_started_ms, Some(1_000));
        // Disabling after the minimum duration ends it at once; enabling starts a new one.
        let later = COMMITMENT_MINIMUM_MS * 3;
        account.disable_commitment(later);
        assert_eq!(account.commitment_status(later), CommitmentStatus::Disabled);
        account.enable_commitment(later + 5);
        assert_eq!(account.commitment_started_ms, Some(later + 5));
        assert_eq!(account.commitment_ends_ms, None);
    }

    #[test]
    fn settings_missing_from_old_metadata_take_their_defaults() {
        let settings: StreamSettings = serde_json::from_str("{}").unwrap();
        assert!(settings.metrics.is_empty() && settings.policy.is_none());
        assert_eq!(settings.distribution, Distribution::UserPartitionKey);
        let settings: StreamSettings =
            serde_json::from_str(r#"{"metrics":["IncomingBytes"],"distribution":"AUTO"}"#).unwrap();
        assert_eq!(settings.distribution, Distribution::Auto);
        assert!(settings.metrics.contains(&Metric::IncomingBytes));
    }
}

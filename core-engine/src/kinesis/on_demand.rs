//! Settings of on-demand streams: UpdateStreamWarmThroughput and
//! UpdateStreamRecordDistributionStrategy, both shown by DescribeStreamSummary.
//!
//! Warm throughput is kept and reported; the engine's on-demand streams already scale by their
//! own rule (see [`super::capacity`]), so a warm stream is not given shards in advance. The
//! update takes effect at once: the answer shows the previous value as `CurrentMiBps` and the
//! new one as `TargetMiBps`, and DescribeStreamSummary shows both at the target afterwards.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::settings::Distribution;
use crate::model::stream::{Stream, StreamMode};

use super::Kinesis;
use super::validate::Violations;

/// Most warm throughput an on-demand stream may ask for (10 GiB/s), in MiB/s.
pub(crate) const MAX_WARM_THROUGHPUT_MIBPS: i64 = 10_240;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WarmThroughputInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    #[serde(rename = "WarmThroughputMiBps")]
    warm_throughput_mibps: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WarmThroughputOutput {
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_name: String,
    warm_throughput: WarmThroughputOut,
}

/// A `WarmThroughputObject`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WarmThroughputOut {
    #[serde(rename = "TargetMiBps")]
    target_mibps: u32,
    #[serde(rename = "CurrentMiBps", skip_serializing_if = "Option::is_none")]
    current_mibps: Option<u32>,
}

impl WarmThroughputOut {
    /// The warm throughput of a stream whose update is complete.
    pub(crate) fn settled(mibps: u32) -> Self {
        Self {
            target_mibps: mibps,
            current_mibps: Some(mibps),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DistributionInput {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    record_distribution_strategy: Option<String>,
}

/// Checks a RecordDistributionStrategy member.
pub(crate) fn parse_distribution(value: Option<&str>, v: &mut Violations) -> Distribution {
    let Some(text) = value else {
        return Distribution::default();
    };
    let parsed = Distribution::parse(text);
    v.check(
        parsed.is_some(),
        text,
        "recordDistributionStrategy",
        "satisfy enum value set: [AUTO, USER_PARTITION_KEY]",
    );
    parsed.unwrap_or_default()
}

/// Checks a WarmThroughputMiBps member.
pub(crate) fn check_warm_throughput(value: Option<i64>, v: &mut Violations) {
    if let Some(mibps) = value {
        v.check(
            mibps >= 0,
            mibps,
            "warmThroughputMiBps",
            "have value greater than or equal to 0",
        );
    }
}

impl Kinesis {
    /// Fails unless the stream is on-demand and `warm` MiB/s may be asked for in this account.
    pub(crate) fn check_warm_throughput_allowed(
        &self,
        stream: &str,
        mode: StreamMode,
        mibps: i64,
    ) -> Result<(), ApiError> {
        if mode != StreamMode::OnDemand {
            return Err(ApiError::InvalidArgument(format!(
                "Stream {stream} under account {} is in PROVISIONED mode: warm throughput is \
                 only supported for ON_DEMAND streams.",
                self.config.account_id
            )));
        }
        if !self
            .registry
            .account
            .lock()
            .commitment_in_force(self.now_ms())
        {
            return Err(ApiError::InvalidArgument(format!(
                "Warm throughput requires the minimum throughput billing commitment of account \
                 {} to be enabled (UpdateAccountSettings).",
                self.config.account_id
            )));
        }
        if mibps > MAX_WARM_THROUGHPUT_MIBPS {
            return Err(ApiError::LimitExceeded(format!(
                "Requested warm throughput of {mibps} MiBps for stream {stream} exceeds the limit \
                 of {MAX_WARM_THROUGHPUT_MIBPS} MiBps."
            )));
        }
        Ok(())
    }

    /// Fails with ResourceInUseException unless the stream is ACTIVE (not CREATING, nor
    /// UPDATING for an encryption change).
    pub(crate) fn check_active(&self, stream: &Stream) -> Result<(), ApiError> {
        let status = self.status(stream);
        if status != "ACTIVE" {
            return Err(ApiError::ResourceInUse(format!(
                "Stream {} under account {} is not ACTIVE ({status}).",
                stream.name, self.config.account_id
            )));
        }
        Ok(())
    }

    pub(crate) fn update_warm_throughput(
        &self,
        input: WarmThroughputInput,
    ) -> Result<WarmThroughputOutput, ApiError> {
        let mut v = Violations::default();
        v.require(&input.warm_throughput_mibps, "warmThroughputMiBps");
        check_warm_throughput(input.warm_throughput_mibps, &mut v);
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let mibps = input.warm_throughput_mibps.unwrap_or_default();
        let stream = self.stream(&name)?;
        self.check_active(&stream)?;
        let previous = self.keep(&stream, |meta| {
            self.check_warm_throughput_allowed(&name, meta.mode, mibps)?;
            let previous = meta.settings.warm_throughput_mibps;
            meta.settings.warm_throughput_mibps = Some(mibps as u32);
            Ok(previous)
        })?;
        tracing::info!(stream = %name, mibps, "updated warm throughput");
        Ok(WarmThroughputOutput {
            stream_arn: stream.arn.clone(),
            stream_name: stream.name.clone(),
            warm_throughput: WarmThroughputOut {
                target_mibps: mibps as u32,
                current_mibps: previous,
            },
        })
    }

    pub(crate) fn update_distribution_strategy(
        &self,
        input: DistributionInput,
    ) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.stream_arn, "streamARN");
        v.require(
            &input.record_distribution_strategy,
            "recordDistributionStrategy",
        );
        let strategy = parse_distribution(input.record_distribution_strategy.as_deref(), &mut v);
        let name = self.stream_target(None, input.stream_arn.as_deref(), &mut v)?;
        let stream = self.stream(&name)?;
        self.check_active(&stream)?;
        self.keep(&stream, |meta| {
            if meta.mode != StreamMode::OnDemand {
                return Err(ApiError::InvalidArgument(format!(
                    "Stream {name} under account {} is in PROVISIONED mode: the record \
                     distribution strategy is only supported for ON_DEMAND streams.",
                    self.config.account_id
                )));
            }
            meta.settings.distribution = strategy;
            Ok(())
        })?;
        tracing::info!(stream = %name, strategy = strategy.as_str(), "updated record distribution");
        Ok(())
    }
}

impl Kinesis {
    /// Checks CreateStream's WarmThroughputMiBps and RecordDistributionStrategy against the
    /// stream's capacity mode.
    pub(crate) fn check_create_on_demand_settings(
        &self,
        warm_throughput_mibps: Option<i64>,
        distribution: Distribution,
        mode: StreamMode,
        name: &str,
    ) -> Result<(), ApiError> {
        if let Some(mibps) = warm_throughput_mibps {
            self.check_warm_throughput_allowed(name, mode, mibps)?;
        }
        if mode != StreamMode::OnDemand && distribution == Distribution::Auto {
            return Err(ApiError::InvalidArgument(format!(
                "The AUTO record distribution strategy is only supported for ON_DEMAND streams; \
                 stream {name} would be PROVISIONED."
            )));
        }
        Ok(())
    }
}

//! Capacity: UpdateStreamMode, UpdateMaxRecordSize, and how on-demand streams scale out.
//!
//! On-demand scaling rule: when a shard of an ON_DEMAND stream has kept rejecting writes over
//! its limit for [`ON_DEMAND_SCALE_AFTER_MS`] (rejections with no quiet second between them),
//! the engine splits it at the middle of its hash range, doubling that key range's capacity.
//! Kinesis scales on-demand streams with its own undisclosed rules; this one is simple,
//! deterministic on the engine clock, and lets producers see throttling turn into capacity.

use serde::Deserialize;

use crate::error::ApiError;
use crate::model::stream::{DEFAULT_MAX_RECORD_KIB, LARGEST_MAX_RECORD_KIB, Stream, StreamMode};

use super::Kinesis;
use super::streams::StreamModeDetails;
use super::validate::Violations;

/// How long a shard of an on-demand stream must stay over its write limit before it is split.
pub(crate) const ON_DEMAND_SCALE_AFTER_MS: i64 = 5_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateStreamModeInput {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    stream_mode_details: Option<StreamModeDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateMaxRecordSizeInput {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    #[serde(rename = "MaxRecordSizeInKiB")]
    max_record_size_in_kib: Option<i64>,
}

/// Checks a MaxRecordSizeInKiB member.
pub(crate) fn check_max_record_size(value: Option<i64>, v: &mut Violations) {
    if let Some(kib) = value {
        v.range(
            kib,
            "maxRecordSizeInKiB",
            i64::from(DEFAULT_MAX_RECORD_KIB),
            i64::from(LARGEST_MAX_RECORD_KIB),
        );
    }
}

impl Kinesis {
    pub(crate) fn update_stream_mode(&self, input: UpdateStreamModeInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.stream_arn, "streamARN");
        v.require(&input.stream_mode_details, "streamModeDetails");
        let mode = super::streams::parse_mode(input.stream_mode_details.as_ref(), &mut v);
        let name = self.stream_target(None, input.stream_arn.as_deref(), &mut v)?;
        let stream = self.stream(&name)?;
        self.change(|| {
            let current = stream.state.lock().mode;
            if current != mode && mode == StreamMode::OnDemand {
                self.check_on_demand_limit()?;
            }
            if mode == StreamMode::Provisioned && self.stream_has_queues(&name) {
                return Err(ApiError::ResourceInUse(format!(
                    "Stream {name} has queues, which need on-demand mode; delete them first."
                )));
            }
            stream.state.lock().mode = mode;
            Ok(())
        })?;
        tracing::info!(stream = %name, mode = mode.as_str(), "changed capacity mode");
        Ok(())
    }

    pub(crate) fn update_max_record_size(
        &self,
        input: UpdateMaxRecordSizeInput,
    ) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.stream_arn, "streamARN");
        v.require(&input.max_record_size_in_kib, "maxRecordSizeInKiB");
        check_max_record_size(input.max_record_size_in_kib, &mut v);
        let name = self.stream_target(None, input.stream_arn.as_deref(), &mut v)?;
        let stream = self.stream(&name)?;
        let kib = input.max_record_size_in_kib.unwrap_or_default() as u32;
        self.change(|| {
            stream.state.lock().max_record_size_kib = kib;
            Ok(())
        })
    }

    /// Splits the shards of an on-demand stream that stayed over their write limit too long.
    pub(crate) fn scale_on_demand(&self, stream: &Stream, now: i64) -> Result<(), ApiError> {
        let overloaded = |state: &crate::model::stream::StreamState| -> Vec<u32> {
            if state.mode != StreamMode::OnDemand {
                return Vec::new();
            }
            state
                .shards
                .iter()
                .filter(|s| s.is_open())
                .filter(|s| {
                    s.throttle
                        .write_overload_since_ms
                        .is_some_and(|t| now - t >= ON_DEMAND_SCALE_AFTER_MS)
                })
                .map(|s| s.index)
                .collect()
        };
        let hot = overloaded(&stream.state.lock());
        if hot.is_empty() {
            return Ok(());
        }
        // The draft has no throughput history, so the hot shards are picked on the live state.
        self.reshape(stream, |draft| {
            for index in hot {
                let range = draft.shards[index as usize].hash_range;
                let middle = range.start + (range.end - range.start) / 2 + 1;
                if draft.split(index, middle, now).is_ok() {
                    tracing::info!(stream = %stream.name, shard = index, "on-demand scale-out split a hot shard");
                }
            }
            Ok(())
        })
    }
}

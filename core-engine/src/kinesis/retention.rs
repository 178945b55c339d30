//! IncreaseStreamRetentionPeriod and DecreaseStreamRetentionPeriod.

use serde::Deserialize;

use crate::error::ApiError;
use crate::model::stream::{MAX_RETENTION_HOURS, MIN_RETENTION_HOURS};

use super::Kinesis;
use super::validate::Violations;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RetentionInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    retention_period_hours: Option<i64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Increase,
    Decrease,
}

impl Kinesis {
    pub(crate) fn increase_retention(&self, input: RetentionInput) -> Result<(), ApiError> {
        self.set_retention(input, Direction::Increase)
    }

    pub(crate) fn decrease_retention(&self, input: RetentionInput) -> Result<(), ApiError> {
        self.set_retention(input, Direction::Decrease)
    }

    fn set_retention(&self, input: RetentionInput, direction: Direction) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.retention_period_hours, "retentionPeriodHours");
        if let Some(hours) = input.retention_period_hours {
            v.range(hours, "retentionPeriodHours", 1, 100_000);
        }
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let hours = input.retention_period_hours.unwrap_or_default();
        if hours < i64::from(MIN_RETENTION_HOURS) {
            return Err(ApiError::InvalidArgument(format!(
                "Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Requested \
                 retention period ({hours} hours) is too short."
            )));
        }
        if hours > i64::from(MAX_RETENTION_HOURS) {
            return Err(ApiError::InvalidArgument(format!(
                "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested \
                 retention period ({hours} hours) is too long."
            )));
        }
        let hours = hours as u32;
        let stream = self.stream(&name)?;
        self.keep(&stream, |meta| {
            let current = meta.retention_hours;
            match direction {
                Direction::Increase if hours < current => Err(ApiError::InvalidArgument(format!(
                    "Requested retention period ({hours} hours) for stream {name} can not be \
                     shorter than existing retention period ({current} hours). Use \
                     DecreaseRetentionPeriod API."
                ))),
                Direction::Decrease if hours > current => Err(ApiError::InvalidArgument(format!(
                    "Requested retention period ({hours} hours) for stream {name} can not be \
                     longer than existing retention period ({current} hours). Use \
                     IncreaseRetentionPeriod API."
                ))),
                _ => {
                    meta.retention_hours = hours;
                    Ok(())
                }
            }
        })?;
        // Saved first: a shorter retention trims only once a restart cannot bring it back.
        stream.state.lock().trim(self.now_ms());
        tracing::info!(stream = %name, hours, "changed retention period");
        Ok(())
    }
}

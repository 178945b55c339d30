//! DescribeLimits.

use serde::Serialize;

use crate::error::ApiError;

use super::Kinesis;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeLimitsOutput {
    shard_limit: u32,
    open_shard_count: usize,
    on_demand_stream_count: usize,
    on_demand_stream_count_limit: u32,
}

impl Kinesis {
    pub(crate) fn describe_limits(&self) -> Result<DescribeLimitsOutput, ApiError> {
        Ok(DescribeLimitsOutput {
            shard_limit: self.config.shard_limit,
            open_shard_count: self.open_shard_count(),
            on_demand_stream_count: self.on_demand_stream_count(),
            on_demand_stream_count_limit: self.config.on_demand_stream_limit,
        })
    }
}

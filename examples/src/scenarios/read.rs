//! Reading a whole stream once, as an auditor would: every shard from TRIM_HORIZON to its tip.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;

/// One user record read back (KPL aggregates are split into their user records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The shard it was read from.
    pub shard_id: String,
    /// Its partition key.
    pub partition_key: String,
    /// Its data.
    pub data: Bytes,
}

/// Every user record in `stream` now, shard by shard, in shard order.
pub async fn read_all(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> Result<Vec<UserRecord>> {
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .with_context(|| format!("listing the shards of {stream}"))?
        .shards
        .unwrap_or_default();
    let mut out = Vec::new();
    for shard in shards {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(&shard.shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .with_context(|| format!("reading {}", shard.shard_id))?
            .shard_iterator;
        while let Some(current) = iterator {
            let page = kinesis
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .with_context(|| format!("reading {}", shard.shard_id))?;
            for record in page.records() {
                let data = Bytes::from(record.data().clone().into_inner());
                for user in kpl::aggregation::deaggregate(
                    record.partition_key().unwrap_or_default(),
                    None,
                    &data,
                ) {
                    out.push(UserRecord {
                        shard_id: shard.shard_id.clone(),
                        partition_key: user.partition_key,
                        data: user.data,
                    });
                }
            }
            let at_tip = page.millis_behind_latest() == Some(0);
            if page.records().is_empty() && at_tip {
                break;
            }
            iterator = page.next_shard_iterator;
            // Stays under Kinesis' 5 reads per second per shard.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(out)
}

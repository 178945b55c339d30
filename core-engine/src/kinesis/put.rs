//! PutRecord and PutRecords.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::MutexGuard;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::faults::Fault;
use crate::model::hash::{parse_hash_key, partition_key_hash};
use crate::model::shard::shard_id;
use crate::model::stream::{Sealing, Stream, StreamState};
use crate::protocol::json::Blob;

use super::Kinesis;
use super::validate::Violations;

/// Largest data blob the API model allows (streams may raise their record size up to this).
const MODEL_MAX_DATA_BYTES: usize = 10 << 20;
/// Most records in one PutRecords call.
const MAX_PUT_RECORDS: usize = 500;
/// Largest PutRecords payload (data plus partition keys): 10 MiB.
const MAX_PUT_RECORDS_BYTES: usize = 10 << 20;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    data: Option<Blob>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
    sequence_number_for_ordering: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordOutput {
    shard_id: String,
    sequence_number: String,
    encryption_type: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordsInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    records: Option<Vec<PutRecordsEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsEntry {
    data: Option<Blob>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordsOutput {
    failed_record_count: u32,
    records: Vec<PutRecordsResultEntry>,
    encryption_type: &'static str,
}

/// One record's outcome: its sequence number and shard, or why it failed.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsResultEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

/// Where an appended record went, or the shard that refused it for lack of throughput.
type Placement = Result<(u32, u128), Refusal>;

/// Why a record of a put was not written.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// Over the write throughput of this shard.
    Throttled(u32),
    /// An injected throttle.
    InjectedThrottle,
    /// An injected internal failure.
    InjectedFailure,
}

/// A record that passed validation: its hash key, partition key and data.
type Accepted = (u128, String, Bytes);

/// Checks one record's members against the model; `prefix` is its path in the request.
fn check_record(
    data: Option<&Blob>,
    partition_key: Option<&str>,
    explicit_hash_key: Option<&str>,
    prefix: &str,
    v: &mut Violations,
) {
    let path = |member: &str| format!("{prefix}{member}");
    match data {
        None => v.missing(&path("data")),
        Some(blob) => v.check(
            blob.0.len() <= MODEL_MAX_DATA_BYTES,
            format_args!(
                "java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]",
                blob.0.len()
            ),
            &path("data"),
            &format!("have length less than or equal to {MODEL_MAX_DATA_BYTES}"),
        ),
    }
    // A missing key is checked once the stream is known: AUTO streams do without one.
    if let Some(key) = partition_key {
        v.length(key, &path("partitionKey"), 1, 256);
    }
    v.hash_key(explicit_hash_key, &path("explicitHashKey"));
}

/// Fails with AWS's missing-member error for each record without a partition key (at
/// `path(i)`), unless the stream distributes records automatically.
fn require_partition_keys<'a>(
    keys: impl IntoIterator<Item = Option<&'a str>>,
    path: impl Fn(usize) -> String,
    auto: bool,
) -> Result<(), ApiError> {
    let mut v = Violations::default();
    for (i, key) in keys.into_iter().enumerate() {
        if key.is_none() && !auto {
            v.missing(&path(i));
        }
    }
    v.finish()
}

/// Applies the checks that need the validated values: the record size limit and the hash key's
/// range. Gives the record's hash key (unused when `auto`; a missing key is stored empty).
fn accept(
    data: Bytes,
    partition_key: Option<String>,
    explicit_hash_key: Option<&str>,
    max_record_bytes: usize,
    auto: bool,
) -> Result<Accepted, ApiError> {
    let partition_key = partition_key.unwrap_or_default();
    if data.len() > max_record_bytes {
        return Err(ApiError::invalid_member(
            format_args!("java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]", data.len()),
            "data",
            &format!("have length less than or equal to {max_record_bytes}"),
        ));
    }
    let size = data.len() + partition_key.len();
    if size > max_record_bytes {
        return Err(ApiError::InvalidArgument(format!(
            "The record (data plus partition key) is {size} bytes, over the stream's maximum \
             record size of {max_record_bytes} bytes."
        )));
    }
    let hash = match explicit_hash_key {
        // AUTO distribution ignores the keys, so their range does not matter.
        _ if auto => 0,
        Some(text) => parse_hash_key(text).ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
                 Specified value was {text}"
            ))
        })?,
        None => partition_key_hash(&partition_key),
    };
    Ok((hash, partition_key, data))
}

impl Kinesis {
    pub(crate) async fn put_record(
        &self,
        input: PutRecordInput,
    ) -> Result<PutRecordOutput, ApiError> {
        let mut v = Violations::default();
        check_record(
            input.data.as_ref(),
            input.partition_key.as_deref(),
            input.explicit_hash_key.as_deref(),
            "",
            &mut v,
        );
        v.sequence_number(
            input.sequence_number_for_ordering.as_deref(),
            "sequenceNumberForOrdering",
        );
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let stream = self.active_stream(&name)?;
        let (max_record_bytes, auto) = {
            let state = stream.state.lock();
            (state.max_record_bytes(), state.distributes_automatically())
        };
        require_partition_keys(
            [input.partition_key.as_deref()],
            |_| "partitionKey".into(),
            auto,
        )?;
        let record = accept(
            input.data.unwrap_or_default().0,
            input.partition_key,
            input.explicit_hash_key.as_deref(),
            max_record_bytes,
            auto,
        )?;
        let (placed, encrypted) = self.append(&stream, vec![record], false).await?;
        let (shard_index, seq) = match placed.first() {
            Some(Ok(placement)) => *placement,
            Some(Err(Refusal::Throttled(shard))) => return Err(self.rate_exceeded(*shard, &name)),
            Some(Err(_)) => return Err(ApiError::InternalFailure("unexpected refusal".into())),
            None => {
                return Err(ApiError::InternalFailure(
                    "the record was not placed".into(),
                ));
            }
        };
        Ok(PutRecordOutput {
            shard_id: shard_id(shard_index),
            sequence_number: seq.to_string(),
            encryption_type: encryption_type(encrypted),
        })
    }

    pub(crate) async fn put_records(
        &self,
        input: PutRecordsInput,
    ) -> Result<PutRecordsOutput, ApiError> {
        let mut v = Violations::default();
        v.require(&input.records, "records");
        let entries = input.records.unwrap_or_default();
        if !entries.is_empty() || v.is_empty() {
            let summary = format!("[{} records]", entries.len());
            v.check(
                entries.len() <= MAX_PUT_RECORDS,
                &summary,
                "records",
                "have length less than or equal to 500",
            );
            v.check(
                !entries.is_empty(),
                &summary,
                "records",
                "have length greater than or equal to 1",
            );
        }
        for (i, entry) in entries.iter().enumerate() {
            check_record(
                entry.data.as_ref(),
                entry.partition_key.as_deref(),
                entry.explicit_hash_key.as_deref(),
                &format!("records.{}.member.", i + 1),
                &mut v,
            );
        }
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let total: usize = entries
            .iter()
            .map(|e| {
                e.data.as_ref().map_or(0, |d| d.0.len())
                    + e.partition_key.as_ref().map_or(0, String::len)
            })
            .sum();
        if total > MAX_PUT_RECORDS_BYTES {
            return Err(ApiError::InvalidArgument(format!(
                "Records size exceeds 10 MB limit: the request holds {total} bytes of data and partition keys."
            )));
        }
        let stream = self.active_stream(&name)?;
        let (max_record_bytes, auto) = {
            let state = stream.state.lock();
            (state.max_record_bytes(), state.distributes_automatically())
        };
        require_partition_keys(
            entries.iter().map(|e| e.partition_key.as_deref()),
            |i| format!("records.{}.member.partitionKey", i + 1),
            auto,
        )?;
        let records = entries
            .into_iter()
            .map(|e| {
                accept(
                    e.data.unwrap_or_default().0,
                    e.partition_key,
                    e.explicit_hash_key.as_deref(),
                    max_record_bytes,
                    auto,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (placed, encrypted) = self.append(&stream, records, true).await?;
        let failed_record_count = placed.iter().filter(|p| p.is_err()).count() as u32;
        let records = placed
            .into_iter()
            .map(|placement| match placement {
                Ok((shard, seq)) => PutRecordsResultEntry {
                    sequence_number: Some(seq.to_string()),
                    shard_id: Some(shard_id(shard)),
                    ..Default::default()
                },
                Err(Refusal::Throttled(shard)) => PutRecordsResultEntry {
                    error_code: Some("ProvisionedThroughputExceededException"),
                    error_message: Some(self.rate_exceeded_message(shard, &name)),
                    ..Default::default()
                },
                Err(Refusal::InjectedThrottle) => PutRecordsResultEntry {
                    error_code: Some("ProvisionedThroughputExceededException"),
                    error_message: Some(format!(
                        "Rate exceeded for stream {name} (injected fault)."
                    )),
                    ..Default::default()
                },
                Err(Refusal::InjectedFailure) => PutRecordsResultEntry {
                    error_code: Some("InternalFailure"),
                    error_message: Some("Internal service failure.".into()),
                    ..Default::default()
                },
            })
            .collect();
        Ok(PutRecordsOutput {
            failed_record_count,
            records,
            encryption_type: encryption_type(encrypted),
        })
    }

    /// Locks the stream's state once no topology change is being saved for it, so that no record
    /// is routed by a topology that is not on disk yet (see [`Kinesis::reshape`]).
    async fn lock_unpaused<'a>(
        &self,
        stream: &'a Stream,
    ) -> Result<MutexGuard<'a, StreamState>, ApiError> {
        loop {
            let mut resumed = {
                let state = stream.state.lock();
                if state.deleted {
                    return Err(self.stream_not_found(&stream.name));
                }
                if !*state.paused.borrow() {
                    return Ok(state);
                }
                state.paused.subscribe()
            };
            // A closed channel cannot happen (the state owns the sender); the loop re-checks.
            let _ = resumed.wait_for(|paused| !paused).await;
        }
    }

    /// Appends records to their shards and waits until they are durable. Gives each record's
    /// shard index and sequence number, or why it was refused, in input order, and whether
    /// the records were encrypted. With `per_record_faults`, injected PutRecords faults may
    /// refuse single records.
    async fn append(
        &self,
        stream: &Stream,
        records: Vec<Accepted>,
        per_record_faults: bool,
    ) -> Result<(Vec<Placement>, bool), ApiError> {
        let injected: Vec<Option<Refusal>> = records
            .iter()
            .map(|_| match per_record_faults {
                true => match self.faults.draw_record(&stream.name) {
                    Some(Fault::Throttle) => Some(Refusal::InjectedThrottle),
                    Some(_) => Some(Refusal::InjectedFailure),
                    None => None,
                },
                false => None,
            })
            .collect();
        let kept = records
            .into_iter()
            .zip(&injected)
            .filter(|(_, hit)| hit.is_none())
            .map(|(r, _)| r);
        let (placed, lsn, touched, now, sealing) = {
            let mut state = self.lock_unpaused(stream).await?;
            let now = self.now_ms();
            // Taken with the records' sequence numbers, under the same lock, so that a batch
            // is sealed exactly when its records say they are encrypted.
            let sealing = state.encryption.sealing_at(now);
            let outcomes = state.assign(kept, now, self.config.throughput_limits);
            let placed: Vec<Placement> = {
                let mut written = outcomes.iter().map(|o| match o {
                    Ok(r) => Ok((r.shard_index, r.record.sequence_number)),
                    Err(shard) => Err(Refusal::Throttled(*shard)),
                });
                injected
                    .iter()
                    .map(|hit| match hit {
                        Some(refusal) => Err(*refusal),
                        None => written.next().unwrap_or(Err(Refusal::InjectedFailure)),
                    })
                    .collect()
            };
            let batch: Vec<_> = outcomes.into_iter().flatten().collect();
            stream.counters.wrote(&batch);
            let lsn = match &sealing {
                _ if !self.config.durable || batch.is_empty() => 0,
                Sealing::Key(key) => self.storage.append_sealed(stream.id, &batch, key)?,
                Sealing::Plain | Sealing::Flag => self.storage.append(stream.id, &batch)?,
            };
            let mut touched = Vec::new();
            for item in batch {
                if let Some(shard) = state.shard_mut(item.shard_index) {
                    shard.push(item.record, lsn);
                    if !touched.iter().any(|n| Arc::ptr_eq(n, &shard.appended)) {
                        touched.push(shard.appended.clone());
                    }
                }
            }
            (placed, lsn, touched, now, sealing)
        };
        self.wait_durable(lsn).await?;
        // The records are readable now: wake the shards' fan-out subscribers.
        for signal in touched {
            signal.notify_waiters();
        }
        if placed
            .iter()
            .any(|p| matches!(p, Err(Refusal::Throttled(_))))
        {
            // The records are durable and answered whatever happens to the scaling.
            if let Err(error) = self.scale_on_demand(stream, now) {
                tracing::warn!(stream = %stream.name, %error, "on-demand scale-out failed");
            }
        }
        Ok((placed, !matches!(sealing, Sealing::Plain)))
    }
}

/// The `EncryptionType` of a put's answer.
fn encryption_type(encrypted: bool) -> &'static str {
    if encrypted { "KMS" } else { "NONE" }
}

//! PutRecord and PutRecords.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use parking_lot::MutexGuard;
use serde::Deserialize;

use crate::error::ApiError;
use crate::faults::Fault;
use crate::model::hash::{parse_hash_key, partition_key_hash};
use crate::model::stream::{Sealing, Stream, StreamState};
use crate::protocol::cbor::writer as cbor;
use crate::protocol::json::{Blob, Text, writer};

use super::Kinesis;
use super::validate::Violations;

/// Largest data blob the API model allows (streams may raise their record size up to this).
const MODEL_MAX_DATA_BYTES: usize = 10 << 20;
/// Most records in one PutRecords call.
const MAX_PUT_RECORDS: usize = 500;
/// Largest PutRecords payload (data plus partition keys): 10 MiB.
const MAX_PUT_RECORDS_BYTES: usize = 10 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordInput {
    pub(crate) stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub(crate) stream_arn: Option<String>,
    pub(crate) data: Option<Blob>,
    pub(crate) partition_key: Option<String>,
    pub(crate) explicit_hash_key: Option<String>,
    pub(crate) sequence_number_for_ordering: Option<String>,
}

/// PutRecord's answer: `{"ShardId","SequenceNumber","EncryptionType"}`.
#[derive(Debug)]
pub(crate) struct PutRecordOutput {
    shard: u32,
    sequence_number: u128,
    encrypted: bool,
}

impl PutRecordOutput {
    /// The awsJson1.1 body.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"{\"ShardId\":");
        shard_id_string(&mut out, self.shard);
        out.extend_from_slice(b",\"SequenceNumber\":");
        writer::u128_string(&mut out, self.sequence_number);
        out.extend_from_slice(b",\"EncryptionType\":\"");
        out.extend_from_slice(encryption_type(self.encrypted).as_bytes());
        out.extend_from_slice(b"\"}");
        out
    }

    /// The CBOR body: the members of [`Self::to_json`], in its order.
    pub(crate) fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        cbor::map(&mut out, 3);
        cbor::text(&mut out, "ShardId");
        cbor::short_text_with(&mut out, |out| shard_id_digits(out, self.shard));
        cbor::text(&mut out, "SequenceNumber");
        cbor::u128_text(&mut out, self.sequence_number);
        cbor::text(&mut out, "EncryptionType");
        cbor::text(&mut out, encryption_type(self.encrypted));
        out
    }
}

/// A PutRecords request, borrowing its strings from the body: the data stays base64 text (or
/// CBOR byte strings) until [`decode_data`] puts every record's into one buffer.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordsInput<'a> {
    #[serde(borrow)]
    pub(crate) stream_name: Option<Text<'a>>,
    #[serde(rename = "StreamARN", borrow)]
    pub(crate) stream_arn: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) records: Option<Vec<PutRecordsEntry<'a>>>,
}

/// One record of a PutRecords request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutRecordsEntry<'a> {
    #[serde(borrow)]
    pub(crate) data: Option<DataIn<'a>>,
    #[serde(borrow)]
    pub(crate) partition_key: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) explicit_hash_key: Option<Text<'a>>,
}

/// A record's data as the request carried it.
#[derive(Debug)]
pub(crate) enum DataIn<'a> {
    /// Base64 text: awsJson1.1.
    Base64(Text<'a>),
    /// The bytes themselves: a CBOR byte string (see `protocol::cbor::requests`).
    Bytes(Cow<'a, [u8]>),
}

impl<'de: 'a, 'a> Deserialize<'de> for DataIn<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).map(Self::Base64)
    }
}

/// PutRecords' answer: `{"FailedRecordCount","Records":[...],"EncryptionType"}`.
#[derive(Debug)]
pub(crate) struct PutRecordsOutput {
    failed_record_count: u32,
    records: Vec<PutOutcome>,
    encrypted: bool,
}

/// One record's outcome: its shard and sequence number, or why it failed.
#[derive(Debug)]
enum PutOutcome {
    Placed { shard: u32, sequence_number: u128 },
    Failed { code: &'static str, message: String },
}

impl PutRecordsOutput {
    /// The awsJson1.1 body, as `serde_json` wrote it for the shapes of the model (see the
    /// tests): `{"SequenceNumber","ShardId"}` or `{"ErrorCode","ErrorMessage"}` per record.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        // A placed record's entry takes 94 bytes at most.
        let mut out = Vec::with_capacity(64 + self.records.len() * 96);
        out.extend_from_slice(b"{\"FailedRecordCount\":");
        writer::int(&mut out, i64::from(self.failed_record_count));
        out.extend_from_slice(b",\"Records\":[");
        for (i, outcome) in self.records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match outcome {
                PutOutcome::Placed {
                    shard,
                    sequence_number,
                } => {
                    out.extend_from_slice(b"{\"SequenceNumber\":");
                    writer::u128_string(&mut out, *sequence_number);
                    out.extend_from_slice(b",\"ShardId\":");
                    shard_id_string(&mut out, *shard);
                }
                PutOutcome::Failed { code, message } => {
                    out.extend_from_slice(b"{\"ErrorCode\":");
                    writer::string(&mut out, code);
                    out.extend_from_slice(b",\"ErrorMessage\":");
                    writer::string(&mut out, message);
                }
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"EncryptionType\":\"");
        out.extend_from_slice(encryption_type(self.encrypted).as_bytes());
        out.extend_from_slice(b"\"}");
        out
    }

    /// The CBOR body: the members of [`Self::to_json`], in its order.
    pub(crate) fn to_cbor(&self) -> Vec<u8> {
        // A placed record's entry takes 78 bytes at most.
        let mut out = Vec::with_capacity(64 + self.records.len() * 80);
        cbor::map(&mut out, 3);
        cbor::text(&mut out, "FailedRecordCount");
        cbor::int(&mut out, i64::from(self.failed_record_count));
        cbor::text(&mut out, "Records");
        cbor::array(&mut out, self.records.len());
        for outcome in &self.records {
            cbor::map(&mut out, 2);
            match outcome {
                PutOutcome::Placed {
                    shard,
                    sequence_number,
                } => {
                    cbor::text(&mut out, "SequenceNumber");
                    cbor::u128_text(&mut out, *sequence_number);
                    cbor::text(&mut out, "ShardId");
                    cbor::short_text_with(&mut out, |out| shard_id_digits(out, *shard));
                }
                PutOutcome::Failed { code, message } => {
                    cbor::text(&mut out, "ErrorCode");
                    cbor::text(&mut out, code);
                    cbor::text(&mut out, "ErrorMessage");
                    cbor::text(&mut out, message);
                }
            }
        }
        cbor::text(&mut out, "EncryptionType");
        cbor::text(&mut out, encryption_type(self.encrypted));
        out
    }
}

/// Writes a shard id (`"shardId-000000000007"`) as a JSON string, without a `String`.
fn shard_id_string(out: &mut Vec<u8>, index: u32) {
    out.push(b'"');
    shard_id_digits(out, index);
    out.push(b'"');
}

/// Writes a shard id's characters (`shardId-000000000007`).
fn shard_id_digits(out: &mut Vec<u8>, index: u32) {
    out.extend_from_slice(b"shardId-");
    let mut digits = [b'0'; 12];
    let mut rest = index;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Decodes every record's base64 data (or copies its CBOR bytes) into one buffer, and gives
/// each record its slice of it (`None` where a record has no data): one allocation per request
/// instead of one per record.
fn decode_data(entries: &[PutRecordsEntry<'_>]) -> Result<Vec<Option<Bytes>>, ApiError> {
    let estimate: usize = entries
        .iter()
        .filter_map(|e| e.data.as_ref())
        .map(|data| match data {
            DataIn::Base64(text) => base64::decoded_len_estimate(text.0.len()),
            DataIn::Bytes(bytes) => bytes.len(),
        })
        .sum();
    let mut buffer = vec![0u8; estimate];
    let mut ranges = Vec::with_capacity(entries.len());
    let mut at = 0;
    for entry in entries {
        let text = match &entry.data {
            None => {
                ranges.push(None);
                continue;
            }
            Some(DataIn::Bytes(bytes)) => {
                buffer[at..at + bytes.len()].copy_from_slice(bytes);
                ranges.push(Some(at..at + bytes.len()));
                at += bytes.len();
                continue;
            }
            Some(DataIn::Base64(text)) => text,
        };
        let written = STANDARD
            .decode_slice(text.0.as_bytes(), &mut buffer[at..])
            .map_err(|_| {
                ApiError::Serialization("Invalid request: Base64 encoded data is not valid".into())
            })?;
        ranges.push(Some(at..at + written));
        at += written;
    }
    buffer.truncate(at);
    let buffer = Bytes::from(buffer);
    Ok(ranges
        .into_iter()
        .map(|range| range.map(|r| buffer.slice(r)))
        .collect())
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

/// Checks one record's members against the model; `record` is its 0-based index in a
/// PutRecords request (`None` for PutRecord), which names it in the violations. Paths and
/// messages are only formatted for violations: this runs for every record.
fn check_record(
    data_len: Option<usize>,
    partition_key: Option<&str>,
    explicit_hash_key: Option<&str>,
    record: Option<usize>,
    v: &mut Violations,
) {
    let path = |member: &str| match record {
        Some(i) => format!("records.{}.member.{member}", i + 1),
        None => member.to_owned(),
    };
    match data_len {
        None => v.missing(&path("data")),
        Some(len) if len > MODEL_MAX_DATA_BYTES => v.check(
            false,
            format_args!("java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]"),
            &path("data"),
            &format!("have length less than or equal to {MODEL_MAX_DATA_BYTES}"),
        ),
        Some(_) => {}
    }
    // A missing key is checked once the stream is known: AUTO streams do without one.
    if let Some(key) = partition_key
        && !(1..=256).contains(&key.chars().count())
    {
        v.length(key, &path("partitionKey"), 1, 256);
    }
    if let Some(key) = explicit_hash_key
        && !(crate::model::is_plain_decimal(key) && key.len() <= 39)
    {
        v.hash_key(Some(key), &path("explicitHashKey"));
    }
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
            input.data.as_ref().map(|d| d.0.len()),
            input.partition_key.as_deref(),
            input.explicit_hash_key.as_deref(),
            None,
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
            shard: shard_index,
            sequence_number: seq,
            encrypted,
        })
    }

    pub(crate) async fn put_records(
        &self,
        input: PutRecordsInput<'_>,
    ) -> Result<PutRecordsOutput, ApiError> {
        let mut v = Violations::default();
        v.require(&input.records, "records");
        let entries = input.records.unwrap_or_default();
        // Bad base64 is a serialization error, found before any constraint, as when parsing.
        let data = decode_data(&entries)?;
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
        for (i, (entry, data)) in entries.iter().zip(&data).enumerate() {
            check_record(
                data.as_ref().map(Bytes::len),
                entry.partition_key.as_deref(),
                entry.explicit_hash_key.as_deref(),
                Some(i),
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
            .zip(&data)
            .map(|(e, d)| {
                d.as_ref().map_or(0, Bytes::len) + e.partition_key.as_deref().map_or(0, str::len)
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
            .iter()
            .zip(data)
            .map(|(e, data)| {
                accept(
                    data.unwrap_or_default(),
                    e.partition_key.as_deref().map(str::to_owned),
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
                Ok((shard, sequence_number)) => PutOutcome::Placed {
                    shard,
                    sequence_number,
                },
                Err(Refusal::Throttled(shard)) => PutOutcome::Failed {
                    code: "ProvisionedThroughputExceededException",
                    message: self.rate_exceeded_message(shard, &name),
                },
                Err(Refusal::InjectedThrottle) => PutOutcome::Failed {
                    code: "ProvisionedThroughputExceededException",
                    message: format!("Rate exceeded for stream {name} (injected fault)."),
                },
                Err(Refusal::InjectedFailure) => PutOutcome::Failed {
                    code: "InternalFailure",
                    message: "Internal service failure.".into(),
                },
            })
            .collect();
        Ok(PutRecordsOutput {
            failed_record_count,
            records,
            encrypted,
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

#[cfg(test)]
mod tests;

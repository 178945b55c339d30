//! A [`FailureSink`] that puts given-up records to another Kinesis stream through `kpl`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::{FailureSink, GivenUp, SinkFuture};
use crate::processor::Record;

/// Largest envelope that still fits a Kinesis record (1 MiB, data plus partition key) with room
/// to spare; a record whose envelope would be larger is sent without its data.
const MAX_ENVELOPE_BYTES: usize = 1_000_000;

/// Puts every given-up record to a Kinesis stream (a dead-letter stream), one Kinesis user
/// record per given-up record, through a [`kpl::Producer`] (so aggregated and batched), with
/// the original partition key (so the dead-letter stream keeps the order of each key).
///
/// Each record's data is a JSON envelope (UTF-8, one object):
///
/// | field | type | meaning |
/// |---|---|---|
/// | `version` | number | `1` |
/// | `shardId` | string | the shard the record was read from |
/// | `sequenceNumber` | string | its sequence number |
/// | `subSequenceNumber` | number | its index inside a KPL aggregate (0 for a plain record) |
/// | `partitionKey` | string | its partition key |
/// | `explicitHashKey` | string or null | its explicit hash key, if it had one |
/// | `approximateArrivalTimestamp` | number or null | when Kinesis accepted it, epoch ms |
/// | `aggregated` | bool | whether it came out of a KPL aggregate |
/// | `reason` | string | `RetriesExhausted` or `RecordTooOld` |
/// | `attempts` | number | how many times it was delivered and failed |
/// | `error` | string | the last error `process_records` returned |
/// | `givenUpAt` | number | when it was given up, epoch ms |
/// | `dataSize` | number | length of the original data in bytes |
/// | `data` | string | the original data, base64 (standard alphabet, padded); absent when the envelope would not fit a Kinesis record (then re-read it by shard and sequence number within the retention period) |
///
/// A give-up succeeds once every envelope is acknowledged by Kinesis; if any put fails, the
/// whole set is put again later, so the dead-letter stream may hold an envelope twice (compare
/// `shardId`, `sequenceNumber` and `subSequenceNumber`).
#[derive(Debug, Clone)]
pub struct KinesisFailureSink {
    producer: kpl::Producer,
    timeout: Duration,
}

impl KinesisFailureSink {
    /// A sink putting through `producer` (made with [`kpl::Producer::new`] for the dead-letter
    /// stream); each give-up waits at most 60 s for its puts.
    pub fn new(producer: kpl::Producer) -> Self {
        Self {
            producer,
            timeout: Duration::from_secs(60),
        }
    }

    /// Starts a producer for `stream` with the `kpl` defaults and makes a sink of it.
    pub async fn for_stream(
        client: aws_sdk_kinesis::Client,
        stream: &str,
    ) -> Result<Self, kpl::StartError> {
        Ok(Self::new(
            kpl::Producer::new(client, stream, kpl::Config::default()).await?,
        ))
    }

    /// How long one give-up waits for its puts before it counts as failed (default 60 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn put_all(&self, given_up: &GivenUp) -> Result<(), crate::ProcessorError> {
        let now = millis(SystemTime::now());
        let mut deliveries = Vec::with_capacity(given_up.records.len());
        for record in &given_up.records {
            let data = envelope(given_up, record, now);
            let put = self
                .producer
                .put(kpl::Record::new(record.partition_key.clone(), data))
                .await
                .map_err(|f| f.error)?;
            deliveries.push(put);
        }
        self.producer.flush();
        for delivery in deliveries {
            delivery.await.map_err(|f| f.error)?;
        }
        Ok(())
    }
}

impl FailureSink for KinesisFailureSink {
    fn give_up<'a>(&'a self, given_up: &'a GivenUp) -> SinkFuture<'a> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.put_all(given_up))
                .await
                .map_err(|_| {
                    format!(
                        "dead-letter puts not acknowledged within {:?}",
                        self.timeout
                    )
                })?
        })
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The JSON envelope of one given-up record (see [`KinesisFailureSink`]).
pub(crate) fn envelope(given_up: &GivenUp, record: &Record, now_ms: u64) -> Vec<u8> {
    let mut value = serde_json::json!({
        "version": 1,
        "shardId": given_up.shard_id,
        "sequenceNumber": record.sequence_number,
        "subSequenceNumber": record.sub_sequence_number,
        "partitionKey": record.partition_key,
        "explicitHashKey": record.explicit_hash_key,
        "approximateArrivalTimestamp": record.approximate_arrival_timestamp.map(millis),
        "aggregated": record.aggregated,
        "reason": given_up.reason.as_str(),
        "attempts": given_up.attempts,
        "error": given_up.error,
        "givenUpAt": now_ms,
        "dataSize": record.data.len(),
    });
    let without_data = serde_json::to_vec(&value).unwrap_or_default();
    let encoded_len = record.data.len().div_ceil(3) * 4;
    if without_data.len() + encoded_len + 10 + record.partition_key.len() <= MAX_ENVELOPE_BYTES {
        value["data"] = base64::engine::general_purpose::STANDARD
            .encode(&record.data)
            .into();
        serde_json::to_vec(&value).unwrap_or(without_data)
    } else {
        without_data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::GiveUpReason;

    fn given_up(data: Vec<u8>) -> (GivenUp, Record) {
        let record = Record {
            partition_key: "k\"1".into(),
            explicit_hash_key: None,
            data: data.into(),
            sequence_number: "4960".into(),
            sub_sequence_number: 2,
            approximate_arrival_timestamp: Some(UNIX_EPOCH + Duration::from_millis(1_700)),
            aggregated: true,
        };
        let g = GivenUp {
            shard_id: "shardId-000000000001".into(),
            records: vec![record.clone()],
            error: "bad \"json\"\n".into(),
            attempts: 3,
            reason: GiveUpReason::RetriesExhausted,
        };
        (g, record)
    }

    #[test]
    fn the_envelope_names_the_record_and_carries_its_data() {
        let (g, r) = given_up(b"hello".to_vec());
        let v: serde_json::Value = serde_json::from_slice(&envelope(&g, &r, 42)).unwrap();
        assert_eq!(v["shardId"], "shardId-000000000001");
        assert_eq!(v["sequenceNumber"], "4960");
        assert_eq!(v["subSequenceNumber"], 2);
        assert_eq!(v["partitionKey"], "k\"1");
        assert_eq!(v["approximateArrivalTimestamp"], 1_700);
        assert_eq!(v["reason"], "RetriesExhausted");
        assert_eq!(v["attempts"], 3);
        assert_eq!(v["error"], "bad \"json\"\n");
        assert_eq!(v["givenUpAt"], 42);
        assert_eq!(v["data"], "aGVsbG8=");
        assert_eq!(v["dataSize"], 5);
    }

    #[test]
    fn a_record_too_big_for_an_envelope_goes_without_its_data() {
        let (g, r) = given_up(vec![7u8; 900_000]);
        let bytes = envelope(&g, &r, 0);
        assert!(bytes.len() < 2_000);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v.get("data").is_none());
        assert_eq!(v["dataSize"], 900_000);
    }
}

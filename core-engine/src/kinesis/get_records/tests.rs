//! The hand-written GetRecords and fan-out event bodies against what `serde_json` wrote for
//! the same values before (the reference shapes below are the former serde definitions).

use bytes::Bytes;
use serde::Serialize;

use super::super::subscribe::EventOut;
use super::*;
use crate::protocol::json::writer::tests::Rng;
use crate::protocol::json::{Base64Out, Timestamp};
use crate::protocol::{cbor, event_stream};

/// The former serde shape of a record.
struct RecordRef<'a>(&'a StoredRecord);

impl Serialize for RecordRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Wire<'a> {
            sequence_number: String,
            approximate_arrival_timestamp: Timestamp,
            data: Base64Out<'a>,
            #[serde(skip_serializing_if = "str::is_empty")]
            partition_key: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            encryption_type: Option<&'static str>,
        }
        Wire {
            sequence_number: self.0.sequence_number.to_string(),
            approximate_arrival_timestamp: Timestamp(self.0.arrival_ms),
            data: Base64Out(&self.0.data),
            partition_key: &self.0.partition_key,
            encryption_type: self.0.encrypted.then_some("KMS"),
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetRecordsRef<'a> {
    records: Vec<RecordRef<'a>>,
    next_shard_iterator: Option<&'a str>,
    millis_behind_latest: i64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    child_shards: &'a [ChildShardOut],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventRef<'a> {
    records: Vec<RecordRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation_sequence_number: Option<String>,
    millis_behind_latest: i64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    child_shards: &'a [ChildShardOut],
}

fn stored(
    sequence_number: u128,
    arrival_ms: i64,
    key: &str,
    data: Vec<u8>,
    encrypted: bool,
) -> StoredRecord {
    StoredRecord {
        sequence_number,
        arrival_ms,
        partition_key: key.to_owned(),
        data: Bytes::from(data),
        encrypted,
    }
}

fn children() -> Vec<ChildShardOut> {
    vec![ChildShardOut {
        shard_id: shard_id(3),
        parent_shards: vec![shard_id(1), shard_id(2)],
        hash_key_range: HashKeyRangeOut {
            starting_hash_key: "0".into(),
            ending_hash_key: u128::MAX.to_string(),
        },
    }]
}

/// Both bodies of these records, hand-written and by serde, must be the same bytes.
fn assert_same(records: Vec<StoredRecord>, child_shards: Vec<ChildShardOut>) {
    let at_end = !child_shards.is_empty();
    let iterator = (!at_end).then(|| "AAAA/+token==".to_owned());
    let expected = serde_json::to_vec(&GetRecordsRef {
        records: records.iter().map(RecordRef).collect(),
        next_shard_iterator: iterator.as_deref(),
        millis_behind_latest: 1234,
        child_shards: &child_shards,
    })
    .unwrap();
    let continuation = records.last().map_or(7, |r| r.sequence_number);
    let expected_event = serde_json::to_vec(&EventRef {
        records: records.iter().map(RecordRef).collect(),
        continuation_sequence_number: (!at_end).then(|| continuation.to_string()),
        millis_behind_latest: 0,
        child_shards: &child_shards,
    })
    .unwrap();
    let event = EventOut {
        records,
        continuation_sequence_number: (!at_end).then_some(continuation),
        millis_behind_latest: 0,
        child_shards,
    };
    let mut event_json = Vec::new();
    event.write_json(&mut event_json);
    assert_eq!(
        String::from_utf8(event_json).unwrap(),
        String::from_utf8(expected_event).unwrap()
    );
    assert_same_cbor_event(&event);
    let output = GetRecordsOutput {
        records: event.records,
        next_shard_iterator: iterator,
        millis_behind_latest: 1234,
        child_shards: event.child_shards,
    };
    assert_eq!(
        String::from_utf8(output.to_json()).unwrap(),
        String::from_utf8(expected).unwrap()
    );
    let translated =
        cbor::json_response_to_cbor(&output.to_json(), cbor::output_shape("GetRecords"));
    if let Some(expected) = translatable(&output.records, translated) {
        assert_eq!(output.to_cbor(), expected);
    }
}

/// The translation's CBOR, unless a record's timestamp is beyond what it carries exactly
/// (10^15 ms, year 33658: it goes through f64 seconds; the direct writer has the exact
/// milliseconds, see `protocol::cbor::writer`'s byte vectors).
fn translatable(
    records: &[StoredRecord],
    translated: Result<Vec<u8>, ApiError>,
) -> Option<Vec<u8>> {
    let extreme = records
        .iter()
        .any(|r| r.arrival_ms.unsigned_abs() >= 1_000_000_000_000_000);
    match translated {
        Ok(cbor) if !extreme => Some(cbor),
        Ok(_) => None,
        Err(error) => {
            assert!(extreme, "{error}");
            None
        }
    }
}

/// A CBOR subscriber's event message, written directly, is the translated JSON message.
fn assert_same_cbor_event(event: &EventOut) {
    let json = event_stream::event_with("SubscribeToShardEvent", 0, |out| event.write_json(out));
    let direct =
        event_stream::encode_with(&cbor::event_headers("SubscribeToShardEvent"), 0, |out| {
            event.write_cbor(out)
        });
    let translated =
        cbor::event_message_to_cbor(&json).ok_or(ApiError::InternalFailure(String::new()));
    if let Some(expected) = translatable(&event.records, translated) {
        assert_eq!(direct, expected);
    }
}

#[test]
fn tricky_records_are_written_as_serde_json_wrote_them() {
    let records = vec![
        stored(0, 0, "k", vec![], false),
        stored(
            u128::MAX,
            1_459_799_926_480,
            "quote\"back\\slash",
            vec![0xff; 1],
            true,
        ),
        stored(
            49_000_000_000_000_000_000_000_000_000,
            1_459_799_926_000,
            "ключ-🔑\u{0}\u{1f}\n",
            vec![1, 2],
            false,
        ),
        stored(1, -1, "", b"no key: AUTO stream".to_vec(), false),
        stored(2, i64::MAX, &"x".repeat(256), vec![7; 3], true),
        stored(
            3,
            1_700_000_000_001,
            "</script>\u{2028}",
            vec![0; 1 << 20],
            false,
        ),
    ];
    assert_same(records.clone(), Vec::new());
    assert_same(records, children());
    assert_same(Vec::new(), Vec::new());
    assert_same(Vec::new(), children());
}

#[test]
fn random_records_are_written_as_serde_json_wrote_them() {
    let alphabet: Vec<char> = "aZ09-_\"\\/\u{0}\u{8}\u{1b}\u{7f}é漢🔑\n "
        .chars()
        .collect();
    let mut rng = Rng(0x1234_5678);
    for _ in 0..200 {
        let count = rng.below(20) as usize;
        let records = (0..count)
            .map(|_| {
                let key: String = (0..rng.below(12))
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect();
                let data = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
                let seq = u128::from(rng.next()) << 64 | u128::from(rng.next());
                let ms = 1_600_000_000_000 + rng.below(400_000_000_000) as i64;
                stored(seq, ms, &key, data, rng.below(2) == 1)
            })
            .collect();
        assert_same(records, Vec::new());
    }
}

/// Records for the CBOR writer: long Unicode keys (1- and 2-byte length heads), data from
/// empty to larger than 255 and 65,535 bytes, sequence numbers and timestamps from end to end
/// of what the translation carries.
#[test]
fn random_records_are_written_as_the_cbor_translation_wrote_them() {
    let alphabet: Vec<char> = "aZ09-_\"\\/\u{0}é漢🔑\n ".chars().collect();
    let mut rng = Rng(0x0cb0_4cb0_4cb0_4cb0);
    for _ in 0..150 {
        let count = rng.below(8) as usize;
        let records = (0..count)
            .map(|_| {
                let key: String = (0..rng.below(300))
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect();
                let len = [0, 1, 23, 24, 255, 256, 65_535, 65_536][rng.below(8) as usize];
                let data = (0..len).map(|_| rng.next() as u8).collect();
                let seq = match rng.below(3) {
                    0 => u128::from(rng.below(24)),
                    1 => u128::from(rng.next()),
                    _ => u128::MAX - u128::from(rng.next()),
                };
                let ms = match rng.below(3) {
                    0 => 1_600_000_000_000 + rng.below(400_000_000_000) as i64,
                    1 => rng.below(999_999_999_999_999) as i64,
                    _ => -(rng.below(999_999_999_999_999) as i64),
                };
                stored(seq, ms, &key, data, rng.below(2) == 1)
            })
            .collect();
        assert_same(records, Vec::new());
    }
}

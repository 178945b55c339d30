//! PutRecord(s) bodies: the hand-written answers against the former serde shapes, and the
//! borrowed request parse with its one data buffer.

use serde::Serialize;

use super::*;
use crate::protocol::{cbor, json};

/// The former serde shape of one PutRecords result.
#[derive(Default, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EntryRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OutputRef {
    failed_record_count: u32,
    records: Vec<EntryRef>,
    encryption_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SingleRef {
    shard_id: String,
    sequence_number: String,
    encryption_type: &'static str,
}

#[test]
fn put_records_answers_are_written_as_serde_json_wrote_them() {
    let outcomes = vec![
        PutOutcome::Placed {
            shard: 0,
            sequence_number: 49_000_000_000_000_000_000_000_000_001,
        },
        PutOutcome::Failed {
            code: "ProvisionedThroughputExceededException",
            message:
                "Rate exceeded for shard shardId-000000000004 in stream \"s\\\" under account 1.\n"
                    .into(),
        },
        PutOutcome::Placed {
            shard: u32::MAX,
            sequence_number: u128::MAX,
        },
        PutOutcome::Failed {
            code: "InternalFailure",
            message: "Internal service failure. ключ".into(),
        },
    ];
    for (outcomes, encrypted) in [(outcomes, true), (Vec::new(), false)] {
        let expected = OutputRef {
            failed_record_count: 2,
            records: outcomes
                .iter()
                .map(|o| match o {
                    PutOutcome::Placed {
                        shard,
                        sequence_number,
                    } => EntryRef {
                        sequence_number: Some(sequence_number.to_string()),
                        shard_id: Some(crate::model::shard::shard_id(*shard)),
                        ..Default::default()
                    },
                    PutOutcome::Failed { code, message } => EntryRef {
                        error_code: Some(code),
                        error_message: Some(message.clone()),
                        ..Default::default()
                    },
                })
                .collect(),
            encryption_type: encryption_type(encrypted),
        };
        let output = PutRecordsOutput {
            failed_record_count: 2,
            records: outcomes,
            encrypted,
        };
        assert_eq!(
            String::from_utf8(output.to_json()).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        assert_same_cbor(&output);
    }
    for (shard, sequence_number, encrypted) in [(0, 0, false), (17, u128::MAX, true)] {
        let single = PutRecordOutput {
            shard,
            sequence_number,
            encrypted,
        };
        let expected = SingleRef {
            shard_id: crate::model::shard::shard_id(shard),
            sequence_number: sequence_number.to_string(),
            encryption_type: encryption_type(encrypted),
        };
        assert_eq!(
            String::from_utf8(single.to_json()).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        let translated =
            cbor::json_response_to_cbor(&single.to_json(), cbor::output_shape("PutRecord"));
        assert_eq!(single.to_cbor(), translated.unwrap());
    }
}

/// The direct CBOR answer is the translation of the JSON one, byte for byte.
fn assert_same_cbor(output: &PutRecordsOutput) {
    let translated =
        cbor::json_response_to_cbor(&output.to_json(), cbor::output_shape("PutRecords"));
    assert_eq!(output.to_cbor(), translated.unwrap());
}

#[test]
fn random_put_records_answers_are_the_cbor_translation() {
    let mut rng = crate::protocol::json::writer::tests::Rng(99);
    for _ in 0..300 {
        let records: Vec<PutOutcome> = (0..rng.below(40))
            .map(|_| match rng.below(4) {
                0 => PutOutcome::Failed {
                    code: "ProvisionedThroughputExceededException",
                    message: "é🔑\"\n".repeat(rng.below(100) as usize),
                },
                _ => PutOutcome::Placed {
                    shard: rng.next() as u32,
                    sequence_number: u128::from(rng.next()) << rng.below(64),
                },
            })
            .collect();
        let output = PutRecordsOutput {
            failed_record_count: records
                .iter()
                .filter(|r| matches!(r, PutOutcome::Failed { .. }))
                .count() as u32,
            records,
            encrypted: rng.below(2) == 0,
        };
        assert_same_cbor(&output);
    }
}

#[test]
fn requests_borrow_their_strings_and_share_one_data_buffer() {
    let body = br#"{"StreamName":"s","Records":[
        {"Data":"aGVsbG8=","PartitionKey":"k1"},
        {"Data":"","PartitionKey":"k\u00e9\"2"},
        {"PartitionKey":"no data"},
        {"Data":"\/w==","PartitionKey":"k4","ExplicitHashKey":"5"}]}"#;
    let input: PutRecordsInput<'_> = json::decode_borrowed(body).unwrap();
    let entries = input.records.unwrap();
    assert!(matches!(
        input.stream_name.unwrap().0,
        std::borrow::Cow::Borrowed("s")
    ));
    assert!(matches!(
        entries[0].partition_key.as_ref().unwrap().0,
        std::borrow::Cow::Borrowed("k1")
    ));
    // Escapes are unescaped into an owned string.
    assert_eq!(entries[1].partition_key.as_deref(), Some("ké\"2"));
    assert_eq!(entries[3].explicit_hash_key.as_deref(), Some("5"));
    let data = decode_data(&entries).unwrap();
    assert_eq!(data[0].as_deref(), Some(&b"hello"[..]));
    assert_eq!(data[1].as_deref(), Some(&b""[..]));
    assert_eq!(data[2], None);
    assert_eq!(data[3].as_deref(), Some(&[0xffu8][..]));
    // One allocation: the slices are views of the same buffer.
    let first = data[0].as_ref().unwrap().as_ptr();
    assert_eq!(data[3].as_ref().unwrap().as_ptr(), first.wrapping_add(5));
}

#[test]
fn bad_base64_is_a_serialization_error() {
    for data in [r#""***""#, r#""aGVsbG8""#, r#""a""#] {
        let body = format!(
            r#"{{"StreamName":"s","Records":[{{"Data":"AAAA","PartitionKey":"k"}},{{"Data":{data},"PartitionKey":"k"}}]}}"#
        );
        let input: PutRecordsInput<'_> = json::decode_borrowed(body.as_bytes()).unwrap();
        let error = decode_data(&input.records.unwrap()).unwrap_err();
        assert_eq!(error.code(), "SerializationException", "{data}");
    }
    let wrong_type = json::decode_borrowed::<PutRecordsInput<'_>>(br#"{"Records":[{"Data":5}]}"#);
    assert_eq!(wrong_type.unwrap_err().code(), "SerializationException");
}

//! Byte-level test vectors for the CBOR translation, checked independently against Python's
//! `cbor2`, plus malformed-input tests: truncations, mutations and hostile lengths.

use bytes::Bytes;
use serde::Deserialize;

use super::*;
use crate::protocol::event_stream;
use crate::protocol::json::{self, Blob, Timestamp};

/// Concatenates byte pieces, so vectors can spell text as text and heads as bytes.
fn cat(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}

fn to_json(cbor: &[u8], shape: Shape) -> String {
    let json = cbor_request_to_json(cbor, shape).unwrap();
    String::from_utf8(json).unwrap()
}

fn to_cbor(json: &str, shape: Shape) -> Vec<u8> {
    json_response_to_cbor(json.as_bytes(), shape).unwrap()
}

fn code(cbor: &[u8], shape: Shape) -> &'static str {
    cbor_request_to_json(cbor, shape)
        .expect_err("the input should be rejected")
        .code()
}

/// A PutRecord request as the Java SDK writes it: Data is a byte string.
fn put_record() -> Vec<u8> {
    cat(&[
        &[0xa3],
        &[0x6a],
        b"StreamName",
        &[0x62],
        b"s1",
        &[0x6c],
        b"PartitionKey",
        &[0x62],
        b"pk",
        &[0x64],
        b"Data",
        &[0x43, 0x00, 0xff, 0x10],
    ])
}

/// A GetRecords response with one record, arrival time 2016-04-04T20:25:26.480Z.
fn get_records() -> Vec<u8> {
    cat(&[
        &[0xa3],
        &[0x67],
        b"Records",
        &[0x81, 0xa4],
        &[0x6e],
        b"SequenceNumber",
        &[0x61],
        b"1",
        &[0x78, 0x1b],
        b"ApproximateArrivalTimestamp",
        // Tag 1, then 1459799926480 as an 8-byte unsigned integer.
        &[0xc1, 0x1b, 0x00, 0x00, 0x01, 0x53, 0xe2, 0xdb, 0x26, 0xd0],
        &[0x64],
        b"Data",
        &[0x42],
        b"hi",
        &[0x6c],
        b"PartitionKey",
        &[0x62],
        b"pk",
        &[0x71],
        b"NextShardIterator",
        &[0x62],
        b"it",
        &[0x72],
        b"MillisBehindLatest",
        &[0x00],
    ])
}

/// The JSON the engine writes for the same GetRecords response.
const GET_RECORDS_JSON: &str = r#"{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1459799926.48,"Data":"aGk=","PartitionKey":"pk"}],"NextShardIterator":"it","MillisBehindLatest":0}"#;

#[test]
fn put_record_request_becomes_exact_json() {
    assert_eq!(
        to_json(&put_record(), input_shape("PutRecord")),
        r#"{"StreamName":"s1","PartitionKey":"pk","Data":"AP8Q"}"#
    );
    // And the engine's own JSON decoder reads the bytes back.
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Input {
        data: Blob,
    }
    let json = cbor_request_to_json(&put_record(), input_shape("PutRecord")).unwrap();
    let input: Input = json::decode(&json).unwrap();
    assert_eq!(input.data, Blob(Bytes::from_static(&[0x00, 0xff, 0x10])));
}

#[test]
fn get_records_response_becomes_exact_cbor() {
    assert_eq!(
        to_cbor(GET_RECORDS_JSON, output_shape("GetRecords")),
        get_records()
    );
}

#[test]
fn errors_are_cbor_maps_with_type_and_message() {
    let error = ApiError::ResourceNotFound("Stream s under account 000000000000 not found.".into());
    let expected = cat(&[
        &[0xa2, 0x66],
        b"__type",
        &[0x78, 0x19],
        b"ResourceNotFoundException",
        &[0x67],
        b"message",
        &[0x78, 0x2e],
        b"Stream s under account 000000000000 not found.",
    ]);
    assert_eq!(encode_error(&error), expected);
}

#[test]
fn round_trips_keep_every_byte_and_value() {
    // CBOR -> JSON -> CBOR reproduces canonical input exactly.
    let shape = output_shape("GetRecords");
    let json = cbor_request_to_json(&get_records(), shape).unwrap();
    assert_eq!(json_response_to_cbor(&json, shape).unwrap(), get_records());
    let shape = input_shape("PutRecord");
    let json = cbor_request_to_json(&put_record(), shape).unwrap();
    assert_eq!(json_response_to_cbor(&json, shape).unwrap(), put_record());
    // JSON -> CBOR -> JSON keeps every value (timestamps gain a trailing zero digit).
    let cbor = to_cbor(GET_RECORDS_JSON, shape_of_get_records());
    let back: serde_json::Value =
        serde_json::from_slice(&cbor_request_to_json(&cbor, shape_of_get_records()).unwrap())
            .unwrap();
    let original: serde_json::Value = serde_json::from_str(GET_RECORDS_JSON).unwrap();
    assert_eq!(back, original);
    // Every kind of plain value survives.
    let plain = r#"{"s":"é\"\\\u0001","n":-1000,"u":18446744073709551615,"f":0.5,"t":true,"x":false,"z":null,"a":[[],{}]}"#;
    let cbor = to_cbor(plain, Shape::PLAIN);
    let back = cbor_request_to_json(&cbor, Shape::PLAIN).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&back).unwrap(),
        serde_json::from_str::<serde_json::Value>(plain).unwrap()
    );
}

fn shape_of_get_records() -> Shape {
    output_shape("GetRecords")
}

#[test]
fn tag_1_is_milliseconds_not_the_rfc_seconds() {
    // 2024-01-10T09:46:40Z in milliseconds. Read as RFC 8949 seconds it is in the year 55995,
    // which is how LocalStack's AT_TIMESTAMP broke (issue 10037).
    let millis: i64 = 1_704_880_000_000;
    assert_eq!(year_of(millis / 86_400), 55_995);
    let body = cat(&[
        &[0xa1, 0x69],
        b"Timestamp",
        &[0xc1, 0x1b],
        &millis.to_be_bytes(),
    ]);
    let json = cbor_request_to_json(&body, input_shape("GetShardIterator")).unwrap();
    assert_eq!(json, br#"{"Timestamp":1704880000.000}"#);
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Input {
        timestamp: Timestamp,
    }
    let input: Input = json::decode(&json).unwrap();
    assert_eq!(input.timestamp, Timestamp(millis));
    assert_eq!(year_of(input.timestamp.0 / 86_400_000), 2024);
}

/// The proleptic Gregorian year of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn year_of(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_based_month = (5 * day_of_year + 2) / 153;
    year_of_era + era * 400 + i64::from(march_based_month >= 10)
}

#[test]
fn other_timestamp_forms_are_understood() {
    let body = |value: &[u8]| cat(&[&[0xa1, 0x69], b"Timestamp", value]);
    let shape = input_shape("GetShardIterator");
    // Tag 1 with a double of RFC seconds.
    let seconds = cat(&[&[0xc1, 0xfb], &1_459_799_926.48_f64.to_be_bytes()]);
    assert_eq!(
        to_json(&body(&seconds), shape),
        r#"{"Timestamp":1459799926.48}"#
    );
    // Tag 1 with a double of milliseconds: too large to be seconds.
    let millis = cat(&[&[0xc1, 0xfb], &1_459_799_926_480.0_f64.to_be_bytes()]);
    assert_eq!(
        to_json(&body(&millis), shape),
        r#"{"Timestamp":1459799926.48}"#
    );
    // Tag 1 with a half float (1.5 seconds) and a small integer (7 ms).
    assert_eq!(
        to_json(&body(&[0xc1, 0xf9, 0x3e, 0x00]), shape),
        r#"{"Timestamp":1.5}"#
    );
    assert_eq!(
        to_json(&body(&[0xc1, 0x07]), shape),
        r#"{"Timestamp":0.007}"#
    );
    // A bare integer in a timestamp member is milliseconds too (kinesis-mock writes these).
    assert_eq!(
        to_json(
            &body(&[0x1b, 0x00, 0x00, 0x01, 0x53, 0xe2, 0xdb, 0x26, 0xd0]),
            shape
        ),
        r#"{"Timestamp":1459799926.480}"#
    );
    // ... but a bare integer elsewhere is just an integer.
    let limit = cat(&[&[0xa1, 0x65], b"Limit", &[0x19, 0x03, 0xe8]]);
    assert_eq!(
        to_json(&limit, input_shape("GetRecords")),
        r#"{"Limit":1000}"#
    );
    // The nested timestamp of ListShards' filter.
    let filter = cat(&[
        &[0xa1, 0x6b],
        b"ShardFilter",
        &[0xa2, 0x64],
        b"Type",
        &[0x6c],
        b"AT_TIMESTAMP",
        &[0x69],
        b"Timestamp",
        &[0xc1, 0x19, 0x03, 0xe8],
    ]);
    assert_eq!(
        to_json(&filter, input_shape("ListShards")),
        r#"{"ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":1.000}}"#
    );
}

#[test]
fn indefinite_lengths_and_chunks_are_accepted() {
    // {_ "Records": [_ {_ "Data": (_ h'0001', h'02'), "PartitionKey": (_ "p", "k")}]}
    let body = cat(&[
        &[0xbf, 0x67],
        b"Records",
        &[0x9f, 0xbf, 0x64],
        b"Data",
        &[0x5f, 0x42, 0x00, 0x01, 0x41, 0x02, 0xff],
        &[0x7f, 0x66],
        b"Partit",
        &[0x66],
        b"ionKey",
        &[0xff],
        &[0x7f, 0x61, b'p', 0x61, b'k', 0xff],
        &[0xff, 0xff, 0xff],
    ]);
    assert_eq!(
        to_json(&body, input_shape("PutRecords")),
        r#"{"Records":[{"Data":"AAEC","PartitionKey":"pk"}]}"#
    );
}

#[test]
fn self_described_cbor_and_undefined_are_accepted() {
    let body = cat(&[&[0xd9, 0xd9, 0xf7, 0xa1, 0x61], b"a", &[0xf7]]);
    assert_eq!(to_json(&body, Shape::PLAIN), r#"{"a":null}"#);
    assert_eq!(to_json(&[], Shape::PLAIN), "");
    assert_eq!(to_json(&[0xa0], Shape::PLAIN), "{}");
}

#[test]
fn responses_encode_every_modelled_timestamp_and_plain_values() {
    let summary = to_cbor(
        r#"{"StreamDescriptionSummary":{"StreamName":"s","StreamCreationTimestamp":1.5,"OpenShardCount":-2}}"#,
        output_shape("DescribeStreamSummary"),
    );
    let expected = cat(&[
        &[0xa1, 0x78, 0x18],
        b"StreamDescriptionSummary",
        &[0xa3, 0x6a],
        b"StreamName",
        &[0x61],
        b"s",
        &[0x77],
        b"StreamCreationTimestamp",
        &[0xc1, 0x19, 0x05, 0xdc],
        &[0x6e],
        b"OpenShardCount",
        &[0x21],
    ]);
    assert_eq!(summary, expected);
    // Integer seconds, null, booleans and doubles outside the table keep their types.
    let listed = to_cbor(
        r#"{"StreamSummaries":[{"StreamCreationTimestamp":2}],"HasMoreStreams":false,"NextToken":null,"X":0.25}"#,
        output_shape("ListStreams"),
    );
    let expected = cat(&[
        &[0xa4, 0x6f],
        b"StreamSummaries",
        &[0x81, 0xa1, 0x77],
        b"StreamCreationTimestamp",
        &[0xc1, 0x19, 0x07, 0xd0],
        &[0x6e],
        b"HasMoreStreams",
        &[0xf4, 0x69],
        b"NextToken",
        &[0xf6, 0x61],
        b"X",
        &[0xfb, 0x3f, 0xd0, 0, 0, 0, 0, 0, 0],
    ]);
    assert_eq!(listed, expected);
    // Blobs outside the table stay text; escaped base64 inside it still decodes.
    assert_eq!(
        to_cbor(r#"{"Data":"aGk="}"#, Shape::PLAIN),
        cat(&[&[0xa1, 0x64], b"Data", &[0x64], b"aGk="])
    );
    assert_eq!(
        to_cbor(
            r#"{"Records":[{"Data":"\/w=="}]}"#,
            output_shape("GetRecords")
        ),
        cat(&[
            &[0xa1, 0x67],
            b"Records",
            &[0x81, 0xa1, 0x64],
            b"Data",
            &[0x41, 0xff]
        ])
    );
    // Operations without output stay empty.
    assert_eq!(to_cbor("", output_shape("CreateStream")), Vec::<u8>::new());
}

#[test]
fn broken_json_from_the_engine_is_an_internal_failure_not_a_panic() {
    for json in [&b"{"[..], b"{\"a\":1}x", b"\xff"] {
        let err = json_response_to_cbor(json, Shape::PLAIN).unwrap_err();
        assert_eq!(err.code(), "InternalFailure");
    }
    let err = json_response_to_cbor(br#"{"Records":[{"Data":"***"}]}"#, shape_of_get_records())
        .unwrap_err();
    assert_eq!(err.code(), "InternalFailure");
}

#[test]
fn malformed_bodies_are_serialization_exceptions() {
    let shape = Shape::PLAIN;
    let cases: &[(&str, Vec<u8>)] = &[
        ("top-level array", vec![0x80]),
        ("top-level text", vec![0x61, b'a']),
        ("integer key", vec![0xa1, 0x01, 0x02]),
        ("byte-string key", vec![0xa1, 0x41, b'a', 0x02]),
        ("trailing bytes", vec![0xa0, 0x00]),
        ("two maps", vec![0xa0, 0xa0]),
        (
            "unknown tag",
            cat(&[&[0xa1, 0x61], b"a", &[0xc2, 0x41, 0x01]]),
        ),
        (
            "tag 1 on text",
            cat(&[&[0xa1, 0x61], b"a", &[0xc1, 0x61, b'x']]),
        ),
        ("NaN", cat(&[&[0xa1, 0x61], b"a", &[0xf9, 0x7e, 0x00]])),
        (
            "infinite timestamp",
            cat(&[&[0xa1, 0x61], b"a", &[0xc1, 0xf9, 0x7c, 0x00]]),
        ),
        ("simple value", cat(&[&[0xa1, 0x61], b"a", &[0xe0]])),
        ("lone break", cat(&[&[0xa1, 0x61], b"a", &[0xff]])),
        ("reserved info", cat(&[&[0xa1, 0x61], b"a", &[0x1c]])),
        ("invalid UTF-8", vec![0xa1, 0x61, 0xff, 0x00]),
        (
            "nested chunk",
            vec![0xa1, 0x61, b'a', 0x5f, 0x5f, 0xff, 0xff],
        ),
        (
            "text chunk in bytes",
            vec![0xa1, 0x61, b'a', 0x5f, 0x61, b'x', 0xff],
        ),
        (
            "huge byte string",
            vec![
                0xa1, 0x61, b'a', 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ),
        (
            "huge text",
            vec![0xa1, 0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "huge array",
            vec![
                0xa1, 0x61, b'a', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ),
        (
            "huge map",
            vec![0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        ("unterminated map", vec![0xbf, 0x61, b'a', 0x01]),
    ];
    for (what, body) in cases {
        let result = cbor_request_to_json(body, shape);
        assert_eq!(
            result.as_ref().map_err(ApiError::code),
            Err("SerializationException"),
            "{what}: {result:?}"
        );
    }
}

#[test]
fn deep_nesting_is_refused_before_the_stack_is() {
    for opener in [0x81, 0x9f] {
        let mut body = vec![0xa1, 0x61, b'a'];
        body.extend(std::iter::repeat_n(opener, 100_000));
        assert_eq!(code(&body, Shape::PLAIN), "SerializationException");
    }
    let mut tags = vec![0xa1, 0x61, b'a'];
    for _ in 0..100_000 {
        tags.extend_from_slice(&[0xd9, 0xd9, 0xf7]);
    }
    assert_eq!(code(&tags, Shape::PLAIN), "SerializationException");
    // 32 levels are fine.
    let mut ok = vec![0xa1, 0x61, b'a'];
    ok.extend(std::iter::repeat_n(0x81, 31));
    ok.push(0x80);
    assert!(cbor_request_to_json(&ok, Shape::PLAIN).is_ok());
}

#[test]
fn every_truncation_is_an_error() {
    for (body, shape) in [
        (put_record(), input_shape("PutRecord")),
        (get_records(), output_shape("GetRecords")),
        (
            encode_error(&ApiError::Validation(vec!["x".into()])),
            Shape::PLAIN,
        ),
    ] {
        assert!(cbor_request_to_json(&body, shape).is_ok());
        for end in 1..body.len() {
            assert_eq!(
                code(&body[..end], shape),
                "SerializationException",
                "truncated to {end} bytes"
            );
        }
    }
}

#[test]
fn random_mutations_never_panic_and_whatever_passes_is_json() {
    // A fixed-seed xorshift, so failures repeat.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds = [put_record(), get_records()];
    let shapes = [input_shape("PutRecord"), output_shape("GetRecords")];
    for round in 0..20_000 {
        let which = round % 2;
        let mut body = seeds[which].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % body.len() as u64) as usize;
            match next() % 3 {
                0 => body[at] = next() as u8,
                1 => body[at] ^= 1 << (next() % 8),
                _ => body.insert(at, next() as u8),
            }
        }
        if let Ok(json) = cbor_request_to_json(&body, shapes[which]) {
            let parsed = serde_json::from_slice::<serde_json::Value>(&json);
            assert!(parsed.is_ok(), "{body:02x?} gave {json:?}");
        }
    }
    // Pure noise too.
    for _ in 0..5_000 {
        let len = (next() % 64) as usize;
        let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Ok(json) = cbor_request_to_json(&body, Shape::PLAIN) {
            assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok() || json.is_empty());
        }
    }
}

#[test]
fn subscription_events_are_re_encoded_for_cbor_subscribers() {
    let json = br#"{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1459799926.48,"Data":"aGk=","PartitionKey":"pk"}],"ContinuationSequenceNumber":"1","MillisBehindLatest":0}"#;
    let message = event_stream::event("SubscribeToShardEvent", json);
    let cbor = event_message_to_cbor(&message).unwrap();
    let (decoded, used) = event_stream::decode(&cbor).unwrap();
    assert_eq!(used, cbor.len());
    let header = |name: &str| {
        decoded
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(":message-type").as_deref(), Some("event"));
    assert_eq!(
        header(":event-type").as_deref(),
        Some("SubscribeToShardEvent")
    );
    assert_eq!(header(":content-type").as_deref(), Some(CONTENT_TYPE));
    // The record map of the GetRecords vector: after its head and "Records", before
    // NextShardIterator and MillisBehindLatest.
    let records = get_records();
    let record = &records[10..records.len() - 41];
    let expected = cat(&[
        &[0xa3, 0x67],
        b"Records",
        &[0x81],
        record,
        &[0x78, 0x1a],
        b"ContinuationSequenceNumber",
        &[0x61],
        b"1",
        &[0x72],
        b"MillisBehindLatest",
        &[0x00],
    ]);
    assert_eq!(decoded.payload, expected);

    let initial = event_message_to_cbor(&event_stream::event("initial-response", b"{}")).unwrap();
    assert_eq!(event_stream::decode(&initial).unwrap().0.payload, [0xa0]);
    let failed = event_message_to_cbor(&event_stream::exception(
        "ResourceInUseException",
        "taken over",
    ))
    .unwrap();
    let (failed, _) = event_stream::decode(&failed).unwrap();
    assert_eq!(
        failed.payload,
        cat(&[&[0xa1, 0x67], b"message", &[0x6a], b"taken over"])
    );
    // Anything but exactly one valid message is refused.
    assert_eq!(event_message_to_cbor(&message[..message.len() - 1]), None);
    assert_eq!(
        event_message_to_cbor(&[message.clone(), message].concat()),
        None
    );
}

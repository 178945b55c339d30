//! The CBOR hot paths (PutRecord, PutRecords, GetRecords), which skip the JSON translation:
//! malformed bodies are `SerializationException`s, and large, empty and Unicode values come back
//! exactly.

use core_engine::Engine;

use crate::cbor::{Item, bytes, call, iterator, map, post_cbor, records, text};
use crate::common::TestEngine;

#[tokio::test]
async fn malformed_cbor_puts_are_serialization_exceptions_and_the_engine_carries_on() {
    let engine = TestEngine::start().await;
    engine.create_stream("s", 1).await;
    let good = map(&[
        ("StreamName", text("s")),
        (
            "Records",
            [
                vec![0x81],
                map(&[("Data", bytes(b"ok")), ("PartitionKey", text("k"))]),
            ]
            .concat(),
        ),
    ]);
    let mut trailing = good.clone();
    trailing.push(0x00);
    let duplicate = map(&[("StreamName", text("s")), ("StreamName", text("s"))]);
    let wrong_type = map(&[("StreamName", text("s")), ("Records", vec![0xa0])]);
    let data_as_number = map(&[
        ("StreamName", text("s")),
        (
            "Records",
            [
                vec![0x81],
                map(&[("Data", vec![0x01]), ("PartitionKey", text("k"))]),
            ]
            .concat(),
        ),
    ]);
    let huge_length = map(&[("Records", vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])]);
    let single_data_as_number = map(&[("StreamName", text("s")), ("Data", vec![0x01])]);
    let both = [
        good[..good.len() - 3].to_vec(),
        trailing,
        duplicate,
        huge_length,
        vec![0x80],
        vec![0xff, 0xff],
    ];
    let cases = [
        (
            "PutRecords",
            [&both[..], &[wrong_type, data_as_number]].concat(),
        ),
        ("PutRecord", [&both[..], &[single_data_as_number]].concat()),
    ];
    for (operation, bodies) in cases {
        for body in &bodies {
            let (status, error_type, answer) = post_cbor(&engine, operation, body).await;
            assert_eq!(status, 400, "{operation} {body:02x?}");
            // The reply's head is read lower-cased.
            assert_eq!(error_type, "serializationexception", "{operation}");
            assert_eq!(answer.get("__type").text(), "SerializationException");
        }
    }
    let put = call(&engine, "PutRecords", &good).await.unwrap();
    assert!(matches!(put.get("FailedRecordCount"), Item::Int(0)));
    let it = iterator(&engine, "s", &[("ShardIteratorType", text("TRIM_HORIZON"))]).await;
    let read = records(&engine, &it).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].get("Data"), &Item::Bytes(b"ok".to_vec()));
}

#[tokio::test]
async fn large_empty_and_unicode_records_round_trip_through_cbor() {
    // Without the per-shard write limit: a 1 MiB record takes a shard's whole second, and the
    // next put would be throttled (or not) depending on when the second turns.
    let engine = TestEngine::with(Engine::builder().throughput_limits(false)).await;
    engine.create_stream("s", 1).await;
    let long_key = "ключ🔑".repeat(25); // 250 bytes, 100 characters
    // The largest record: data plus key make 1 MiB.
    let big: Vec<u8> = (0..(1 << 20) - 1).map(|i| (i * 7) as u8).collect();
    let put = call(
        &engine,
        "PutRecord",
        &map(&[
            ("StreamName", text("s")),
            ("PartitionKey", text("k")),
            ("Data", bytes(&big)),
        ]),
    )
    .await
    .unwrap();
    let first = put.get("SequenceNumber").text().to_owned();
    let entries = [
        map(&[("Data", bytes(&[])), ("PartitionKey", text(&long_key))]),
        map(&[("PartitionKey", text("é")), ("Data", bytes(&[0xff; 300]))]),
    ]
    .concat();
    let put = call(
        &engine,
        "PutRecords",
        &map(&[
            ("StreamName", text("s")),
            ("Records", [vec![0x82], entries].concat()),
        ]),
    )
    .await
    .unwrap();
    let placed = put.get("Records").array();
    assert_eq!(placed.len(), 2);
    assert_eq!(placed[0].get("ShardId").text(), "shardId-000000000000");
    let it = iterator(&engine, "s", &[("ShardIteratorType", text("TRIM_HORIZON"))]).await;
    let read = records(&engine, &it).await;
    assert_eq!(read.len(), 3);
    assert_eq!(read[0].get("SequenceNumber").text(), first);
    assert_eq!(read[0].get("Data"), &Item::Bytes(big));
    assert_eq!(read[1].get("Data"), &Item::Bytes(Vec::new()));
    assert_eq!(read[1].get("PartitionKey").text(), long_key);
    assert_eq!(
        read[1].get("SequenceNumber").text(),
        placed[0].get("SequenceNumber").text()
    );
    assert_eq!(read[2].get("Data"), &Item::Bytes(vec![0xff; 300]));
    assert_eq!(read[2].get("PartitionKey").text(), "é");
}

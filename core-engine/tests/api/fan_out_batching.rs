//! Fan-out events carry batches: records put faster than one event can be sent share events,
//! each record arriving exactly once and in order.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;

use crate::common::TestEngine;
use crate::fan_out::{consumer, next_event, subscribe};

const WRITERS: usize = 8;
const PUTS_PER_WRITER: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_put_faster_than_events_go_share_events_exactly_once_in_order() {
    let engine = TestEngine::start().await;
    engine.create_stream("fan", 1).await;
    let arn = consumer(&engine, "batched").await;
    let mut events = subscribe(
        &engine,
        &arn,
        "shardId-000000000000",
        ShardIteratorType::Latest,
    )
    .await;
    let first = next_event(&mut events, Duration::from_secs(5)).await;
    assert!(first.records.is_empty());
    // Eight writers each put their records one PutRecord at a time, as fast as they can.
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let client = engine.client.clone();
        writers.push(tokio::spawn(async move {
            let mut sequence_numbers = Vec::new();
            for i in 0..PUTS_PER_WRITER {
                let out = client
                    .put_record()
                    .stream_name("fan")
                    .partition_key(format!("writer-{writer}"))
                    .data(Blob::new(format!("{writer}/{i}")))
                    .send()
                    .await
                    .unwrap();
                sequence_numbers.push(out.sequence_number);
            }
            sequence_numbers
        }));
    }
    let total = WRITERS * PUTS_PER_WRITER;
    let mut received: Vec<(String, String)> = Vec::new();
    let mut events_with_records = 0;
    let mut largest = 0;
    while received.len() < total {
        let event = next_event(&mut events, Duration::from_secs(30)).await;
        if event.records.is_empty() {
            continue;
        }
        events_with_records += 1;
        largest = largest.max(event.records.len());
        // Each event's continuation point is its last record, so a resubscription there
        // neither repeats nor skips a record.
        assert_eq!(
            Some(&event.continuation_sequence_number),
            event.records.last().map(|r| &r.sequence_number)
        );
        assert!(event.millis_behind_latest >= 0);
        received.extend(event.records.into_iter().map(|r| {
            let data = String::from_utf8(r.data.into_inner()).unwrap();
            (r.sequence_number, data)
        }));
    }
    let mut put: HashMap<String, String> = HashMap::new();
    for (writer, task) in writers.into_iter().enumerate() {
        for (i, seq) in task.await.unwrap().into_iter().enumerate() {
            put.insert(seq, format!("{writer}/{i}"));
        }
    }
    // Exactly once: as many as put, each sequence number with its own data.
    assert_eq!(received.len(), total);
    for (seq, data) in &received {
        assert_eq!(put.get(seq), Some(data), "record {seq}");
    }
    // In order: sequence numbers increase along the stream of events.
    let numbers: Vec<u128> = received.iter().map(|(s, _)| s.parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "out of order");
    // Batched: the puts came faster than one event per record (at least two per event on
    // average; one event per record would be {total} events).
    assert!(
        largest > 1 && events_with_records * 2 <= total,
        "{events_with_records} events for {total} records, at most {largest} per event"
    );
}

//! Fan-out events carry batches: records put faster than one event can be sent share events,
//! each record arriving exactly once and in order.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;

use core_engine::Engine;

use crate::common::TestEngine;
use crate::fan_out::{consumer, next_event, subscribe};

const WRITERS: usize = 8;
const PUTS_PER_WRITER: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_puts_share_events_each_record_once_in_order() {
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

/// Puts `per_writer` records from each of `writers` concurrent writers, one PutRecord at a
/// time; gives the sequence number of each record, by data (`"{writer}/{i}"`).
async fn put_concurrently(
    engine: &TestEngine,
    writers: usize,
    per_writer: usize,
) -> Vec<tokio::task::JoinHandle<Vec<(String, String)>>> {
    (0..writers)
        .map(|writer| {
            let client = engine.client.clone();
            tokio::spawn(async move {
                let mut put = Vec::new();
                for i in 0..per_writer {
                    let data = format!("{writer}/{i}");
                    let out = client
                        .put_record()
                        .stream_name("fan")
                        .partition_key(format!("writer-{writer}"))
                        .data(Blob::new(data.clone()))
                        .send()
                        .await
                        .unwrap();
                    put.push((out.sequence_number, data));
                }
                put
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_within_the_batch_window_share_the_next_event() {
    // A wide window, so that the batching shows however slowly this machine puts.
    let engine =
        TestEngine::with(Engine::builder().fan_out_batch_window(Duration::from_millis(400))).await;
    engine.create_stream("fan", 1).await;
    let arn = consumer(&engine, "windowed").await;
    let mut events = subscribe(
        &engine,
        &arn,
        "shardId-000000000000",
        ShardIteratorType::Latest,
    )
    .await;
    assert!(
        next_event(&mut events, Duration::from_secs(5))
            .await
            .records
            .is_empty()
    );
    const TOTAL: usize = 4 * 25;
    let writers = put_concurrently(&engine, 4, 25).await;
    let (mut received, mut events_with_records) = (Vec::new(), 0);
    while received.len() < TOTAL {
        let event = next_event(&mut events, Duration::from_secs(30)).await;
        if !event.records.is_empty() {
            events_with_records += 1;
            received.extend(event.records.into_iter().map(|r| {
                let data = String::from_utf8(r.data.into_inner()).unwrap();
                (r.sequence_number, data)
            }));
        }
    }
    let mut put = Vec::new();
    for writer in writers {
        put.extend(writer.await.unwrap());
    }
    put.sort_by_key(|(seq, _)| seq.parse::<u128>().unwrap());
    assert_eq!(received, put, "every record once, in order");
    // Without the window about one event per put.
    assert!(
        events_with_records * 4 <= TOTAL,
        "{events_with_records} events for {TOTAL} records"
    );
    // A record put while the subscription is caught up goes out alone, without waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, seq) = engine.put("fan", "k", b"late").await;
    let mut event = next_event(&mut events, Duration::from_secs(10)).await;
    while event.records.is_empty() {
        event = next_event(&mut events, Duration::from_secs(10)).await;
    }
    assert_eq!(event.records.len(), 1);
    assert_eq!(event.records[0].sequence_number, seq);
}

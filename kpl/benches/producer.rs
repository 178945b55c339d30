//! Producer throughput against the in-process engine (throughput limits off), through the
//! real AWS SDK over loopback HTTP: user records/s, Kinesis records/s, bytes/s and the time a
//! record spends buffered, for 100-byte records with aggregation on and off.
//!
//! ```text
//! cargo bench -p kpl --bench producer -- [--records 1000000] [--shards 64] [--mode aggregated|plain|all]
//! ```

#![allow(missing_docs)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use core_engine::Engine;
use kpl::{Config, Producer, Record};

const RECORD_BYTES: usize = 100;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

async fn run(label: &str, aggregation: bool, records: usize, shards: i32) {
    let engine = Engine::builder()
        .throughput_limits(false)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(engine.endpoint_url())
        .credentials_provider(Credentials::new("AKIDBENCH", "secret", None, None, "bench"))
        .build();
    let client = Client::from_conf(config);
    client
        .create_stream()
        .stream_name("bench")
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    let producer = Producer::new(
        client,
        "bench",
        Config {
            aggregation_enabled: aggregation,
            ..Config::default()
        },
    )
    .await
    .unwrap();
    let payload = Bytes::from(vec![b'x'; RECORD_BYTES]);
    let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let started = Instant::now();
    let mut waiting = VecDeque::new();
    let mut buffered = Vec::with_capacity(records);
    // A Kinesis record is counted once, through its first (or only) user record.
    let mut kinesis_records = 0usize;
    let mut settle = |outcome: Result<kpl::Delivery, kpl::PutFailure>,
                      buffered: &mut Vec<Duration>| {
        let delivery = outcome.expect("delivered");
        buffered.push(delivery.attempts[0].delay);
        if matches!(delivery.sub_sequence_number, None | Some(0)) {
            kinesis_records += 1;
        }
    };
    for i in 0..records {
        let record = Record::new(keys[i % keys.len()].clone(), payload.clone());
        waiting.push_back(producer.put(record).await.expect("accepted"));
        if waiting.len() > 200_000 {
            let oldest = waiting.pop_front().expect("non-empty");
            settle(oldest.await, &mut buffered);
        }
    }
    producer.flush();
    for future in waiting {
        settle(future.await, &mut buffered);
    }
    let elapsed = started.elapsed().as_secs_f64();
    buffered.sort();
    let pct = |p: f64| {
        buffered[((buffered.len() as f64 * p) as usize).min(buffered.len() - 1)].as_secs_f64()
            * 1000.0
    };
    println!(
        "{label:<11} {:>9.0} user records/s {:>8.0} Kinesis records/s {:>6.1} MB/s   buffered p50 {:>6.1} ms p99 {:>6.1} ms   ({records} records in {elapsed:.2} s)",
        records as f64 / elapsed,
        kinesis_records as f64 / elapsed,
        (records * RECORD_BYTES) as f64 / elapsed / 1e6,
        pct(0.50),
        pct(0.99),
    );
    assert!(producer.shutdown(Duration::from_secs(10)).await.is_empty());
    engine.shutdown().await;
}

fn main() {
    let records =
        arg("--records").map_or(1_000_000, |v| v.parse().expect("--records takes a number"));
    let shards = arg("--shards").map_or(64, |v| v.parse().expect("--shards takes a number"));
    let modes: Vec<(&str, bool)> = match arg("--mode").as_deref() {
        Some("aggregated") => vec![("aggregated", true)],
        Some("plain") => vec![("plain", false)],
        _ => vec![("aggregated", true), ("plain", false)],
    };
    println!(
        "kpl producer: {RECORD_BYTES}-byte records, {shards} shards, engine in process with limits off, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (label, aggregation) in modes {
        let count = if aggregation { records } else { records / 5 };
        runtime.block_on(run(label, aggregation, count, shards));
    }
}

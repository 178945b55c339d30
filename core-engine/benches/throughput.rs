//! End-to-end throughput of the engine through `aws-sdk-kinesis` over loopback HTTP.
//!
//! Several writer tasks, each with its own client (so its own connections), send PutRecords of
//! 500 records of 100 bytes for a fixed time; then readers drain every shard with GetRecords.
//! Printed per mode (in memory, durable with fsync): records/s, MB/s and request latency p50/p99.
//!
//! ```text
//! cargo bench -p core-engine --bench throughput -- [--seconds 10] [--writers 4] [--shards 4] [--mode memory|durable|all] [--encrypted] [--record-bytes 100] [--write-only]
//! ```
//!
//! `--encrypted` starts server-side encryption on the stream first, so that a durable engine
//! seals every batch in its log.
//!
//! With `--endpoint URL` it drives an engine that is already running (for example
//! `core-engine serve` in another process, to see how the CPU splits between engine and clients).

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use core_engine::Engine;

const RECORDS_PER_CALL: usize = 500;
/// Default record size; `--record-bytes` changes it.
const RECORD_BYTES: usize = 100;

struct Options {
    seconds: u64,
    writers: usize,
    shards: i32,
    modes: Vec<&'static str>,
    endpoint: Option<String>,
    encrypted: bool,
    record_bytes: usize,
    /// Skip the read and fan-out phases (to measure a retained volume, say).
    write_only: bool,
}

fn options() -> Options {
    let mut options = Options {
        seconds: 10,
        writers: 4,
        shards: 4,
        modes: vec!["memory", "durable"],
        endpoint: None,
        encrypted: false,
        record_bytes: RECORD_BYTES,
        write_only: false,
    };
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(v) = value("--seconds") {
        options.seconds = v.parse().expect("--seconds takes a number");
    }
    if let Some(v) = value("--writers") {
        options.writers = v.parse().expect("--writers takes a number");
    }
    if let Some(v) = value("--shards") {
        options.shards = v.parse().expect("--shards takes a number");
    }
    options.endpoint = value("--endpoint");
    options.encrypted = args.iter().any(|a| a == "--encrypted");
    options.write_only = args.iter().any(|a| a == "--write-only");
    if let Some(v) = value("--record-bytes") {
        options.record_bytes = v.parse().expect("--record-bytes takes a number");
    }
    match value("--mode").as_deref() {
        Some("memory") => options.modes = vec!["memory"],
        Some("durable") => options.modes = vec!["durable"],
        Some("all") | None => {}
        Some(other) => panic!("unknown --mode {other}: memory, durable or all"),
    }
    options
}

fn client(endpoint: &str) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDBENCH", "secret", None, None, "bench"))
        .build();
    Client::from_conf(config)
}

/// Throughput and latency of one phase.
struct Report {
    records: usize,
    bytes: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Report {
    fn print(&mut self, label: &str) {
        self.latencies.sort();
        let pct = |p: f64| {
            let index =
                ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
            self.latencies[index - 1].as_secs_f64() * 1000.0
        };
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{label:<22} {:>10.0} records/s {:>8.1} MB/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} records, {} calls, {:.1} s)",
            self.records as f64 / secs,
            self.bytes as f64 / secs / 1e6,
            pct(0.50),
            pct(0.99),
            self.records,
            self.latencies.len(),
            secs
        );
    }
}

async fn write_phase(endpoint: &str, stream: &str, options: &Options) -> Report {
    let payload = Blob::new(vec![b'x'; options.record_bytes]);
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..options.writers {
        let client = client(endpoint);
        let stream = stream.to_owned();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut batch = 0usize;
            while Instant::now() < deadline {
                let entries: Vec<_> = (0..RECORDS_PER_CALL)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!(
                                "user-{writer}-{}",
                                (batch * RECORDS_PER_CALL + i) % 10_007
                            ))
                            .data(payload.clone())
                            .build()
                            .unwrap()
                    })
                    .collect();
                let sent = Instant::now();
                let out = client
                    .put_records()
                    .stream_name(&stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .unwrap();
                latencies.push(sent.elapsed());
                assert_eq!(out.failed_record_count, Some(0));
                batch += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let records = latencies.len() * RECORDS_PER_CALL;
    Report {
        records,
        bytes: records * options.record_bytes,
        elapsed: started.elapsed(),
        latencies,
    }
}

async fn read_phase(endpoint: &str, stream: &str) -> Report {
    let listing = client(endpoint)
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for shard in listing.shards.unwrap_or_default() {
        let client = client(endpoint);
        let stream = stream.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut iterator = client
                .get_shard_iterator()
                .stream_name(&stream)
                .shard_id(shard.shard_id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator
                .unwrap();
            let (mut records, mut bytes, mut latencies) = (0, 0, Vec::new());
            loop {
                let sent = Instant::now();
                let out = client
                    .get_records()
                    .shard_iterator(&iterator)
                    .limit(10_000)
                    .send()
                    .await
                    .unwrap();
                latencies.push(sent.elapsed());
                records += out.records.len();
                bytes += out
                    .records
                    .iter()
                    .map(|r| r.data.as_ref().len())
                    .sum::<usize>();
                if out.millis_behind_latest == Some(0) || out.next_shard_iterator.is_none() {
                    return (records, bytes, latencies);
                }
                iterator = out.next_shard_iterator.unwrap();
            }
        }));
    }
    let mut report = Report {
        records: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (records, bytes, latencies) = task.await.unwrap();
        report.records += records;
        report.bytes += bytes;
        report.latencies.extend(latencies);
    }
    report.elapsed = started.elapsed();
    report
}

/// Put-to-event latency of enhanced fan-out: one subscriber, records put one at a time, each
/// timed from just before PutRecord until its event arrives.
async fn fan_out_phase(endpoint: &str, stream: &str, count: usize) -> Report {
    use aws_sdk_kinesis::types::{StartingPosition, SubscribeToShardEventStream};
    let client = client(endpoint);
    let stream_arn = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn;
    let consumer = client
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("bench")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    let shard = client
        .put_record()
        .stream_name(stream)
        .partition_key("fan-out")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap()
        .shard_id;
    let mut events = client
        .subscribe_to_shard()
        .consumer_arn(&consumer)
        .shard_id(&shard)
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::Latest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .event_stream;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        let sent = Instant::now();
        let data = Blob::new(format!("{i:0>100}"));
        client
            .put_record()
            .stream_name(stream)
            .partition_key("fan-out")
            .data(data)
            .send()
            .await
            .unwrap();
        loop {
            match events.recv().await.unwrap() {
                Some(SubscribeToShardEventStream::SubscribeToShardEvent(e))
                    if !e.records.is_empty() =>
                {
                    break;
                }
                Some(_) => continue,
                None => panic!("the subscription ended early"),
            }
        }
        latencies.push(sent.elapsed());
    }
    Report {
        records: count,
        bytes: count * RECORD_BYTES,
        elapsed: started.elapsed(),
        latencies,
    }
}

async fn run_phases(endpoint: &str, stream: &str, label: &str, options: &Options) {
    client(endpoint)
        .create_stream()
        .stream_name(stream)
        .shard_count(options.shards)
        .send()
        .await
        .unwrap();
    if options.encrypted {
        client(endpoint)
            .start_stream_encryption()
            .stream_name(stream)
            .encryption_type(aws_sdk_kinesis::types::EncryptionType::Kms)
            .key_id("alias/aws/kinesis")
            .send()
            .await
            .unwrap();
    }
    let mut writes = write_phase(endpoint, stream, options).await;
    writes.print(&format!("{label} PutRecords"));
    if options.write_only {
        return;
    }
    let mut reads = read_phase(endpoint, stream).await;
    assert_eq!(
        reads.records, writes.records,
        "every written record is read back"
    );
    reads.print(&format!("{label} GetRecords"));
    let mut fan_out = fan_out_phase(endpoint, stream, 1_000).await;
    fan_out.print(&format!("{label} fan-out put->event"));
}

async fn run_mode(mode: &str, options: &Options) {
    let dir = tempfile::tempdir().unwrap();
    // Measures the engine itself, not the per-shard limits it would apply.
    let builder = match mode {
        "durable" => Engine::builder().data_dir(dir.path()),
        _ => Engine::builder(),
    }
    .throughput_limits(false);
    let engine = builder.build().unwrap().start().await.unwrap();
    run_phases(
        &engine.endpoint_url(),
        &format!("bench-{mode}"),
        mode,
        options,
    )
    .await;
    engine.shutdown().await;
}

fn main() {
    let options = Arc::new(options());
    println!(
        "core-engine throughput: {} writers x PutRecords({RECORDS_PER_CALL} x {} B), {} shards, {} s per mode, {} cores",
        options.writers,
        options.record_bytes,
        options.shards,
        options.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if let Some(endpoint) = &options.endpoint {
            let stream = format!("bench-{}", std::process::id());
            return run_phases(endpoint, &stream, "external", &options).await;
        }
        for mode in options.modes.clone() {
            run_mode(mode, &options).await;
        }
    });
}

//! End-to-end throughput of the engine through `aws-sdk-kinesis` over loopback HTTP.
//!
//! Several writer tasks, each with its own client (so its own connections), send PutRecords of
//! 500 records of 100 bytes for a fixed time; then readers drain every shard with GetRecords.
//! Printed per mode (in memory, durable with fsync): records/s, MB/s, request latency p50/p99
//! and the engine's CPU time per record. Then a fan-out phase: writers put small batches (10
//! records) to a one-shard stream while one subscription reads it; printed are the records/s
//! the subscription received, records per event and the engine's CPU per record.
//!
//! ```text
//! cargo bench -p core-engine --bench throughput -- [--seconds 10] [--writers 4] [--shards 4] [--mode memory|durable|all] [--encrypted] [--record-bytes 100] [--write-only] [--engine-pid PID]
//! ```
//!
//! The in-process engine runs on its own runtime, whose threads (and the log writer's) are
//! the "engine CPU": summed from `/proc/self/task/*/schedstat` before and after each phase, so
//! the clients' CPU is not counted. With `--endpoint`, `--engine-pid` names the engine process
//! whose CPU to count.
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
    engine_pid: Option<u32>,
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
        engine_pid: None,
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
    options.engine_pid =
        value("--engine-pid").map(|v| v.parse().expect("--engine-pid takes a pid"));
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

/// Name prefix of the in-process engine's runtime threads.
const ENGINE_THREADS: &str = "engine-rt";

/// Whose CPU time counts as the engine's.
#[derive(Clone, Copy)]
enum EngineCpu {
    /// This process's engine runtime and log writer threads.
    InProcess,
    /// Every thread of another process.
    Process(u32),
    /// Unknown (an external engine without `--engine-pid`).
    Unknown,
}

impl EngineCpu {
    /// CPU time used so far, from the scheduler's per-thread counters (nanoseconds).
    fn used(self) -> Option<Duration> {
        let (dir, filter): (String, bool) = match self {
            Self::InProcess => ("/proc/self/task".into(), true),
            Self::Process(pid) => (format!("/proc/{pid}/task"), false),
            Self::Unknown => return None,
        };
        let mut total = 0u64;
        for task in std::fs::read_dir(dir).ok()?.flatten() {
            let path = task.path();
            if filter {
                let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                let comm = comm.trim();
                if !comm.starts_with(ENGINE_THREADS) && comm != "wal-writer" {
                    continue;
                }
            }
            let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
        Some(Duration::from_nanos(total))
    }
}

/// Throughput and latency of one phase.
struct Report {
    records: usize,
    bytes: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// The engine's CPU time during the phase, when known.
    engine_cpu: Option<Duration>,
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
        let cpu = match self.engine_cpu {
            Some(cpu) => format!(
                "{:>6.2} us/record engine CPU ({:.2} cores)",
                cpu.as_secs_f64() * 1e6 / self.records.max(1) as f64,
                cpu.as_secs_f64() / secs
            ),
            None => "engine CPU unknown".into(),
        };
        println!(
            "{label:<22} {:>10.0} records/s {:>8.1} MB/s   p50 {:>7.2} ms   p99 {:>7.2} ms   {cpu}   ({} records, {} calls, {:.1} s)",
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
        engine_cpu: None,
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
        engine_cpu: None,
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
        engine_cpu: None,
    }
}

/// Records per PutRecords call of the fan-out phase: small, so that records arrive in many
/// puts and the engine decides how to group them into events.
const FAN_OUT_RECORDS_PER_CALL: usize = 10;

/// Fan-out throughput of one subscription: writers put small batches to a one-shard stream for
/// the phase's time while one subscriber counts what it receives, until it has every record.
/// Gives the report and the number of events that carried records.
async fn fan_out_throughput_phase(
    endpoint: &str,
    stream: &str,
    options: &Options,
    cpu: EngineCpu,
) -> (Report, usize) {
    use aws_sdk_kinesis::types::{StartingPosition, SubscribeToShardEventStream};
    let admin = client(endpoint);
    admin
        .create_stream()
        .stream_name(stream)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let stream_arn = admin
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn;
    let consumer = admin
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("bench-throughput")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    let mut events = admin
        .subscribe_to_shard()
        .consumer_arn(&consumer)
        .shard_id("shardId-000000000000")
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
    let cpu_before = cpu.used();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let mut writers = Vec::new();
    for writer in 0..options.writers {
        let client = client(endpoint);
        let stream = stream.to_owned();
        writers.push(tokio::spawn(async move {
            let payload = Blob::new(vec![b'x'; RECORD_BYTES]);
            let mut put = 0usize;
            while Instant::now() < deadline {
                let entries: Vec<_> = (0..FAN_OUT_RECORDS_PER_CALL)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("user-{writer}-{i}"))
                            .data(payload.clone())
                            .build()
                            .unwrap()
                    })
                    .collect();
                client
                    .put_records()
                    .stream_name(&stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .unwrap();
                put += FAN_OUT_RECORDS_PER_CALL;
            }
            put
        }));
    }
    let reader = tokio::spawn(async move {
        let (mut received, mut with_records) = (0usize, 0usize);
        let mut last = Instant::now();
        // Reads until the writers are done and the subscription has been quiet for a second.
        loop {
            let next = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
            match next {
                Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)))) => {
                    if !e.records.is_empty() {
                        received += e.records.len();
                        with_records += 1;
                        last = Instant::now();
                    }
                }
                Ok(Ok(Some(_))) => {}
                Ok(other) => panic!("the subscription ended early: {other:?}"),
                Err(_) if Instant::now() > deadline => return (received, with_records, last),
                Err(_) => {}
            }
        }
    });
    let mut written = 0;
    for writer in writers {
        written += writer.await.unwrap();
    }
    let (received, with_records, last) = reader.await.unwrap();
    let cpu_after = cpu.used();
    assert_eq!(received, written, "the subscription got every record");
    let report = Report {
        records: received,
        bytes: received * RECORD_BYTES,
        elapsed: last.duration_since(started),
        latencies: vec![Duration::ZERO],
        engine_cpu: cpu_before.zip(cpu_after).map(|(b, a)| a.saturating_sub(b)),
    };
    (report, with_records)
}

/// Runs `phase`, adding the engine's CPU time during it to its report.
async fn measured(cpu: EngineCpu, phase: impl std::future::Future<Output = Report>) -> Report {
    let before = cpu.used();
    let mut report = phase.await;
    report.engine_cpu = before.zip(cpu.used()).map(|(b, a)| a.saturating_sub(b));
    report
}

async fn run_phases(endpoint: &str, stream: &str, label: &str, options: &Options, cpu: EngineCpu) {
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
    let mut writes = measured(cpu, write_phase(endpoint, stream, options)).await;
    writes.print(&format!("{label} PutRecords"));
    if options.write_only {
        return;
    }
    let mut reads = measured(cpu, read_phase(endpoint, stream)).await;
    assert_eq!(
        reads.records, writes.records,
        "every written record is read back"
    );
    reads.print(&format!("{label} GetRecords"));
    let mut fan_out = fan_out_phase(endpoint, stream, 1_000).await;
    fan_out.print(&format!("{label} fan-out put->event"));
    let (mut fan_out, events) =
        fan_out_throughput_phase(endpoint, &format!("{stream}-fan-out"), options, cpu).await;
    fan_out.print(&format!("{label} fan-out 1 sub"));
    println!(
        "{:<22} {events} events with records, {:.1} records/event",
        "",
        fan_out.records as f64 / events.max(1) as f64
    );
}

/// Runs the phases against an in-process engine on its own runtime (`engine`), so that its
/// threads' CPU time can be told from the clients'.
fn run_mode(
    mode: &str,
    options: &Options,
    engine: &tokio::runtime::Runtime,
    clients: &tokio::runtime::Runtime,
) {
    let dir = tempfile::tempdir().unwrap();
    // Measures the engine itself, not the per-shard limits it would apply.
    let builder = match mode {
        "durable" => Engine::builder().data_dir(dir.path()),
        _ => Engine::builder(),
    }
    .throughput_limits(false);
    let handle = engine.block_on(async { builder.build().unwrap().start().await.unwrap() });
    clients.block_on(run_phases(
        &handle.endpoint_url(),
        &format!("bench-{mode}"),
        mode,
        options,
        EngineCpu::InProcess,
    ));
    engine.block_on(handle.shutdown());
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
    let clients = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(endpoint) = &options.endpoint {
        let stream = format!("bench-{}", std::process::id());
        let cpu = options
            .engine_pid
            .map_or(EngineCpu::Unknown, EngineCpu::Process);
        clients.block_on(run_phases(endpoint, &stream, "external", &options, cpu));
        return;
    }
    let engine = tokio::runtime::Builder::new_multi_thread()
        .thread_name(ENGINE_THREADS)
        .enable_all()
        .build()
        .unwrap();
    for mode in options.modes.clone() {
        run_mode(mode, &options, &engine, &clients);
    }
}

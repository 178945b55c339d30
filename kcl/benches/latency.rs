//! Put-to-process latency of a `kcl` worker, polling against enhanced fan-out.
//!
//! A producer task puts single records at a steady rate (PutRecord, spread over the shards by
//! partition key); each record carries the wall-clock time just before its put was sent. One
//! worker reads the stream and measures, for every record its processor gets, how long ago it was
//! put; it checkpoints about once a second. The first seconds (leases being taken, the first reads) are discarded. Printed per
//! retrieval mode: records measured and the latency p50, p99, p99.9 and maximum.
//!
//! Then, per retrieval mode, the throughput of one worker on one shard: a backlog of records
//! (`--backlog`, of `--record-bytes` each) is written with the engine's throughput limits off,
//! and the worker reads it from TRIM_HORIZON; printed are records/s and MiB/s from its first
//! batch to its last record. With limits on, Kinesis (and the engine) caps a fan-out subscription
//! at 2 MiB/s and polling at 2 MiB/s shared by every polling reader of the shard; this measures
//! what the consumer itself can take.
//!
//! ```text
//! cargo bench -p kcl --bench latency -- [--rate 1000] [--shards 4] [--seconds 20] [--warmup 5]
//!     [--retrieval polling|fan-out|all] [--idle-ms 1500] [--backlog 200000] [--record-bytes 1024]
//!     [--only latency|throughput]
//! ```
//!
//! `--idle-ms` is the polling worker's `idle_time_between_reads` (the Java KCL's default 1,500 ms
//! is this crate's default too). The engine runs in the same process with AWS's throughput
//! limits on, so both modes read under the limits they would meet on AWS.

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use core_engine::Engine;
use kcl::{Checkpointer, Config, ProcessRecordsInput, ProcessorError, RecordProcessor, Scheduler};
use parking_lot::Mutex;

struct Options {
    rate: u64,
    shards: i32,
    seconds: u64,
    warmup: u64,
    idle_ms: u64,
    modes: Vec<Mode>,
    backlog: u64,
    record_bytes: usize,
    latency: bool,
    throughput: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Polling,
    FanOut,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Polling => "polling",
            Mode::FanOut => "fan-out",
        }
    }
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: u64| {
        value(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
    };
    let modes = match value("--retrieval").as_deref() {
        None | Some("all") => vec![Mode::Polling, Mode::FanOut],
        Some("polling") => vec![Mode::Polling],
        Some("fan-out") => vec![Mode::FanOut],
        Some(other) => panic!("--retrieval takes polling, fan-out or all, not {other}"),
    };
    Options {
        rate: number("--rate", 1_000).max(1),
        shards: number("--shards", 4).max(1) as i32,
        seconds: number("--seconds", 20).max(1),
        warmup: number("--warmup", 5),
        idle_ms: number("--idle-ms", 1_500),
        modes,
        backlog: number("--backlog", 200_000).max(1),
        record_bytes: number("--record-bytes", 1_024).clamp(8, 1 << 20) as usize,
        latency: value("--only").is_none_or(|o| o == "latency"),
        throughput: value("--only").is_none_or(|o| o == "throughput"),
    }
}

fn micros_since_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Latencies in microseconds of the records processed after the warm-up.
#[derive(Clone, Default)]
struct Samples {
    measure_after: Arc<Mutex<Option<u64>>>,
    latencies: Arc<Mutex<Vec<u64>>>,
}

struct Measure {
    samples: Samples,
    /// When the processor last checkpointed: like most applications, it checkpoints about once
    /// a second rather than after every batch.
    last_checkpoint: tokio::time::Instant,
}

impl RecordProcessor for Measure {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let now = micros_since_epoch();
        let after = *self.samples.measure_after.lock();
        let mut measured = Vec::with_capacity(input.records.len());
        for record in &input.records {
            let Some(stamp) = record.data.get(..8) else {
                continue;
            };
            let put_at = u64::from_be_bytes(stamp.try_into().expect("8 bytes"));
            if after.is_some_and(|a| put_at >= a) {
                measured.push(now.saturating_sub(put_at));
            }
        }
        self.samples.latencies.lock().extend(measured);
        if !input.records.is_empty() && self.last_checkpoint.elapsed() >= Duration::from_secs(1) {
            checkpointer.checkpoint().await?;
            self.last_checkpoint = tokio::time::Instant::now();
        }
        Ok(())
    }

    async fn shard_ended(&mut self, checkpointer: &mut Checkpointer) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// An in-process engine with one stream, and clients for it.
struct Bench {
    engine: core_engine::EngineHandle,
    kinesis: aws_sdk_kinesis::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl Bench {
    /// Starts an in-memory engine (AWS's throughput limits on or off) and creates `stream`.
    async fn start(limits: bool, stream: &str, shards: i32) -> Self {
        let engine = Engine::builder()
            .in_memory()
            .throughput_limits(limits)
            .build()
            .expect("engine configuration")
            .start()
            .await
            .expect("engine starts");
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
            .endpoint_url(engine.endpoint_url())
            .load()
            .await;
        let kinesis = aws_sdk_kinesis::Client::new(&sdk);
        kinesis
            .create_stream()
            .stream_name(stream)
            .shard_count(shards)
            .send()
            .await
            .expect("CreateStream");
        Self {
            engine,
            kinesis,
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        }
    }
}

async fn run_mode(options: &Options, mode: Mode) -> Vec<u64> {
    let stream = "latency";
    let Bench {
        engine,
        kinesis,
        dynamodb,
    } = Bench::start(true, stream, options.shards).await;

    let samples = Samples::default();
    let config = config_for(mode, options);
    let scheduler = Arc::new(
        Scheduler::new(
            kinesis.clone(),
            dynamodb,
            &format!("latency-{}", mode.name()),
            stream,
            "worker-1",
            {
                let samples = samples.clone();
                move |_shard: &str| Measure {
                    samples: samples.clone(),
                    last_checkpoint: tokio::time::Instant::now(),
                }
            },
            config,
        )
        .expect("scheduler"),
    );
    let worker = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.run().await }
    });

    // Records put from now on after the warm-up are measured.
    let started = micros_since_epoch();
    *samples.measure_after.lock() = Some(started + options.warmup * 1_000_000);
    let total = options.rate * (options.warmup + options.seconds);
    let period = Duration::from_secs_f64(1.0 / options.rate as f64);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..total {
        ticks.tick().await;
        let kinesis = kinesis.clone();
        puts.spawn(async move {
            let mut data = micros_since_epoch().to_be_bytes().to_vec();
            data.extend_from_slice(&[0u8; 92]);
            kinesis
                .put_record()
                .stream_name(stream)
                .partition_key(format!("key-{i}"))
                .data(Blob::new(data))
                .send()
                .await
                .expect("PutRecord");
        });
        while puts.try_join_next().is_some() {}
    }
    while puts.join_next().await.is_some() {}
    // Let the last records arrive (polling may be one idle interval behind).
    let expected = (options.rate * options.seconds) as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while samples.latencies.lock().len() < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scheduler.shutdown();
    let _ = worker.await;
    engine.shutdown().await;
    let mut latencies = std::mem::take(&mut *samples.latencies.lock());
    latencies.sort_unstable();
    latencies
}

fn config_for(mode: Mode, options: &Options) -> Config {
    let mut config = Config {
        initial_position: kcl::InitialPosition::TrimHorizon,
        idle_time_between_reads: Duration::from_millis(options.idle_ms),
        ..Config::default()
    };
    match mode {
        Mode::Polling => config.retrieval = kcl::Retrieval::Polling,
        Mode::FanOut => config.retrieval = kcl::Retrieval::fan_out(),
    }
    config
}

/// Counts what a processor got, for the throughput phase.
#[derive(Clone, Default)]
struct Counted {
    records: Arc<std::sync::atomic::AtomicU64>,
}

struct Count {
    counted: Counted,
    last_checkpoint: tokio::time::Instant,
}

impl RecordProcessor for Count {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        use std::sync::atomic::Ordering::Relaxed;
        self.counted
            .records
            .fetch_add(input.records.len() as u64, Relaxed);
        if self.last_checkpoint.elapsed() >= Duration::from_secs(1) {
            checkpointer.checkpoint().await?;
            self.last_checkpoint = tokio::time::Instant::now();
        }
        Ok(())
    }
}

/// One worker reading a one-shard backlog: (records/s, MiB/s).
async fn run_throughput(options: &Options, mode: Mode) -> (f64, f64) {
    let stream = "backlog";
    let Bench {
        engine,
        kinesis,
        dynamodb,
    } = Bench::start(false, stream, 1).await;
    let per_call = (4 << 20) / options.record_bytes.max(1);
    let per_call = per_call.clamp(1, 500) as u64;
    let mut writers = tokio::task::JoinSet::new();
    let mut written = 0;
    while written < options.backlog {
        let n = per_call.min(options.backlog - written);
        written += n;
        let kinesis = kinesis.clone();
        let size = options.record_bytes;
        writers.spawn(async move {
            let entries = (0..n).map(|i| {
                aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                    .partition_key(format!("key-{i}"))
                    .data(Blob::new(vec![7u8; size]))
                    .build()
                    .expect("entry")
            });
            let out = kinesis
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries.collect()))
                .send()
                .await
                .expect("PutRecords");
            assert_eq!(out.failed_record_count, Some(0), "the backlog is complete");
        });
        if writers.len() >= 4 {
            writers.join_next().await;
        }
    }
    while writers.join_next().await.is_some() {}

    let counted = Counted::default();
    let mut config = config_for(mode, options);
    config.max_records = 10_000;
    let scheduler = Arc::new(
        Scheduler::new(
            kinesis.clone(),
            dynamodb,
            &format!("backlog-{}", mode.name()),
            stream,
            "worker-1",
            {
                let counted = counted.clone();
                move |_shard: &str| Count {
                    counted: counted.clone(),
                    last_checkpoint: tokio::time::Instant::now(),
                }
            },
            config,
        )
        .expect("scheduler"),
    );
    let started = std::time::Instant::now();
    let worker = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.run().await }
    });
    let deadline = started + Duration::from_secs(600);
    let mut first = None;
    loop {
        let got = counted.records.load(std::sync::atomic::Ordering::Relaxed);
        if got > 0 && first.is_none() {
            // From the first batch on: lease taking and registration are not reading.
            first = Some((std::time::Instant::now(), got));
        }
        if got >= options.backlog || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (since, first_batch) = first.unwrap_or((started, 0));
    let elapsed = since.elapsed().as_secs_f64();
    scheduler.shutdown();
    let _ = worker.await;
    engine.shutdown().await;
    // What arrived after the first batch, over the time it took: a backlog that fits in one
    // batch measures nothing (NaN).
    let records = counted.records.load(std::sync::atomic::Ordering::Relaxed);
    let after_first = records.saturating_sub(first_batch) as f64;
    let bytes = after_first * options.record_bytes as f64;
    if after_first == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    (after_first / elapsed, bytes / elapsed / (1 << 20) as f64)
}

#[tokio::main]
async fn main() {
    let options = options();
    if options.latency {
        latency_table(&options).await;
    }
    if options.throughput {
        println!(
            "one worker, one shard, reading a backlog of {} records of {} B (engine limits off)",
            options.backlog, options.record_bytes
        );
        println!("{:<24} {:>12} {:>9}", "retrieval", "records/s", "MiB/s");
        for &mode in &options.modes {
            let (records, mib) = run_throughput(&options, mode).await;
            println!("{:<24} {:>12.0} {:>9.1}", mode.name(), records, mib);
        }
    }
}

async fn latency_table(options: &Options) {
    println!(
        "put-to-process latency: {} records/s over {} shards, {} s measured after {} s warm-up",
        options.rate, options.shards, options.seconds, options.warmup
    );
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "retrieval", "records", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for &mode in &options.modes {
        let latencies = run_mode(options, mode).await;
        let label = match mode {
            Mode::Polling => format!("polling (idle {} ms)", options.idle_ms),
            Mode::FanOut => "fan-out".to_owned(),
        };
        println!(
            "{:<24} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            label,
            latencies.len(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            percentile(&latencies, 99.9),
            percentile(&latencies, 100.0),
        );
    }
}

//! `latency`: put-to-process latency of a `kcl` worker, polling and enhanced fan-out, at a fixed
//! offered rate. Formerly the latency half of `kcl/benches/latency.rs`.
//!
//! A producer task puts single records at a steady rate (PutRecord, spread over the shards by
//! partition key); each record carries the wall-clock time just before its put. One worker reads
//! the stream and measures, for every record its processor gets, how long ago it was put; it
//! checkpoints about once a second. The warm-up (leases being taken, the first reads) is not
//! measured. The engine keeps AWS's throughput limits on, so both modes read under the limits
//! they would meet on AWS.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use aws_sdk_kinesis::primitives::Blob;
use kcl::{Checkpointer, ProcessRecordsInput, ProcessorError, RecordProcessor, Scheduler};
use parking_lot::Mutex;

use crate::common::{
    Common, Storage, Table, Target, create_stream, median, num, peak_rss_mib, reset_peak_rss,
    stream_name, text,
};

/// How a kcl worker reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Retrieval {
    /// GetRecords.
    Polling,
    /// SubscribeToShard.
    FanOut,
}

impl Retrieval {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::FanOut => "fan-out",
        }
    }

    /// A kcl configuration reading this way.
    pub fn config(self, idle: Duration) -> kcl::Config {
        kcl::Config {
            initial_position: kcl::InitialPosition::TrimHorizon,
            idle_time_between_reads: idle,
            retrieval: match self {
                Self::Polling => kcl::Retrieval::Polling,
                Self::FanOut => kcl::Retrieval::fan_out(),
            },
            ..kcl::Config::default()
        }
    }
}

/// Options of `latency`.
#[derive(Debug, Clone, clap::Args)]
pub struct LatencyArgs {
    /// Records put per second.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    /// Shards of the stream.
    #[arg(long, default_value_t = 4)]
    pub shards: i32,
    /// Seconds measured.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds before measuring.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// The polling worker's `idle_time_between_reads` in ms (the Java KCL's default 1,500).
    #[arg(long, default_value_t = 1_500)]
    pub idle_ms: u64,
    /// Retrieval modes.
    #[arg(long, value_delimiter = ',', default_values = ["polling", "fan-out"])]
    pub retrieval: Vec<Retrieval>,
}

pub(crate) fn micros_since_epoch() -> u64 {
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
    /// Like most applications, it checkpoints about once a second, not after every batch.
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

/// One run: the sorted latencies (µs) and the peak RSS.
type Run = (Vec<u64>, f64);

async fn run(args: &LatencyArgs, common: &Common, mode: Retrieval) -> Result<Run> {
    reset_peak_rss();
    let target = Target::start(Storage::Memory, true, common.endpoint.as_deref()).await?;
    let kinesis = target.kinesis();
    let stream = stream_name("latency");
    create_stream(&kinesis, &stream, args.shards).await?;
    let samples = Samples::default();
    let scheduler = Arc::new(
        Scheduler::new(
            kinesis.clone(),
            target.dynamodb(),
            &format!("{stream}-{}", mode.name()),
            &stream,
            "worker-1",
            {
                let samples = samples.clone();
                move |_shard: &str| Measure {
                    samples: samples.clone(),
                    last_checkpoint: tokio::time::Instant::now(),
                }
            },
            mode.config(Duration::from_millis(args.idle_ms)),
        )
        .context("scheduler")?,
    );
    let worker = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.run().await }
    });
    let started = micros_since_epoch();
    *samples.measure_after.lock() = Some(started + args.warmup * 1_000_000);
    let total = args.rate * (args.warmup + args.seconds);
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..total {
        ticks.tick().await;
        let (kinesis, stream) = (kinesis.clone(), stream.clone());
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
                .map(|_| ())
        });
        while let Some(done) = puts.try_join_next() {
            done?.context("PutRecord")?;
        }
    }
    while let Some(done) = puts.join_next().await {
        done?.context("PutRecord")?;
    }
    // Let the last records arrive (polling may be one idle interval behind).
    let expected = (args.rate * args.seconds) as usize;
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(10)
        + 2 * Duration::from_millis(args.idle_ms);
    while samples.latencies.lock().len() < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scheduler.shutdown();
    let _ = worker.await;
    let rss = peak_rss_mib();
    target.stop().await;
    let mut latencies = std::mem::take(&mut *samples.latencies.lock());
    anyhow::ensure!(
        latencies.len() >= expected,
        "{} of {expected} records were processed",
        latencies.len()
    );
    latencies.sort_unstable();
    Ok((latencies, rss))
}

/// `latency`: one row per retrieval mode.
pub async fn latency(args: &LatencyArgs, common: &Common) -> Result<()> {
    let mut args = args.clone();
    if common.smoke {
        args.rate = 200;
        args.seconds = 1;
        args.warmup = 1;
        args.idle_ms = 200;
        args.shards = 2;
    }
    let mut table = Table::new(
        format!(
            "latency: put-to-process with one kcl worker, {} records/s over {} shards, {} s measured after {} s warm-up, AWS limits on; medians of {}",
            args.rate,
            args.shards,
            args.seconds,
            args.warmup,
            common.repeats()
        ),
        &[
            "retrieval",
            "records",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "peak RSS MiB",
        ],
    );
    table.note(crate::common::machine());
    for mode in args.retrieval.clone() {
        let mut runs = Vec::new();
        for _ in 0..common.repeats() {
            runs.push(run(&args, common, mode).await?);
        }
        let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let label = match mode {
            Retrieval::Polling => format!("polling (idle {} ms)", args.idle_ms),
            Retrieval::FanOut => "fan-out".to_owned(),
        };
        table.row(
            vec![
                text(label),
                num(m(&|r| r.0.len() as f64), 0),
                num(m(&|r| percentile(&r.0, 50.0)), 2),
                num(m(&|r| percentile(&r.0, 99.0)), 2),
                num(m(&|r| percentile(&r.0, 99.9)), 2),
                num(m(&|r| percentile(&r.0, 100.0)), 2),
                num(m(&|r| r.1), 0),
            ],
            common.json,
        );
    }
    table.finish(common.json);
    Ok(())
}

//! `kpl`: producer throughput, aggregation on and off: user records/s, Kinesis records/s, MB/s
//! and the time a record spends buffered, for 100-byte records (kpl's defaults otherwise).
//! Formerly `kpl/benches/producer.rs`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use kpl::{Config, Producer, Record};

use crate::common::{
    Cell, Common, Storage, Table, Target, create_stream, median, num, peak_rss_mib, process_cpu,
    reset_peak_rss, stream_name, text,
};

/// Options of `kpl`.
#[derive(Debug, Clone, clap::Args)]
pub struct KplArgs {
    /// User records per aggregated run (plain runs put a fifth as many).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Shards of the stream.
    #[arg(long, default_value_t = 64)]
    pub shards: i32,
    /// Bytes of data per user record.
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Which modes to run.
    #[arg(long, value_delimiter = ',', default_values = ["aggregated", "plain"])]
    pub mode: Vec<Aggregation>,
}

/// Aggregation on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Aggregation {
    /// KPL aggregation on (the default).
    Aggregated,
    /// One Kinesis record per user record.
    Plain,
}

struct Run {
    records: usize,
    kinesis_records: usize,
    elapsed: f64,
    buffered: Vec<Duration>,
    cpu: Duration,
    engine_cpu: Duration,
    rss: f64,
}

async fn run(common: &Common, args: &KplArgs, aggregation: bool, records: usize) -> Result<Run> {
    reset_peak_rss();
    let target = Target::start(Storage::Memory, false, common.endpoint.as_deref()).await?;
    let client = target.kinesis();
    let stream = stream_name("kpl");
    create_stream(&client, &stream, args.shards).await?;
    let producer = Producer::new(
        client,
        &stream,
        Config {
            aggregation_enabled: aggregation,
            ..Config::default()
        },
    )
    .await
    .context("starting the producer")?;
    let payload = Bytes::from(vec![b'x'; args.record_bytes]);
    let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let (cpu, engine_cpu) = (process_cpu(), crate::common::engine_cpu());
    let started = Instant::now();
    let mut waiting = VecDeque::new();
    let mut buffered = Vec::with_capacity(records);
    // A Kinesis record is counted once, through its first (or only) user record.
    let mut kinesis_records = 0usize;
    let mut settle = |outcome: Result<kpl::Delivery, kpl::PutFailure>,
                      buffered: &mut Vec<Duration>|
     -> Result<()> {
        let delivery = outcome.map_err(|f| anyhow::anyhow!("not delivered: {}", f.error))?;
        buffered.push(delivery.attempts[0].delay);
        if matches!(delivery.sub_sequence_number, None | Some(0)) {
            kinesis_records += 1;
        }
        Ok(())
    };
    for i in 0..records {
        let record = Record::new(keys[i % keys.len()].clone(), payload.clone());
        let future = producer
            .put(record)
            .await
            .map_err(|f| anyhow::anyhow!("put refused: {}", f.error))?;
        waiting.push_back(future);
        if waiting.len() > 200_000 {
            let oldest = waiting.pop_front().expect("non-empty");
            settle(oldest.await, &mut buffered)?;
        }
    }
    producer.flush();
    for future in waiting {
        settle(future.await, &mut buffered)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu().saturating_sub(cpu);
    let engine_cpu = crate::common::engine_cpu().saturating_sub(engine_cpu);
    buffered.sort();
    anyhow::ensure!(
        producer.shutdown(Duration::from_secs(10)).await.is_empty(),
        "records left undelivered at shutdown"
    );
    let rss = peak_rss_mib();
    target.stop().await;
    Ok(Run {
        records,
        kinesis_records,
        elapsed,
        buffered,
        cpu,
        engine_cpu,
        rss,
    })
}

/// `kpl`: one row per mode.
pub async fn kpl(args: &KplArgs, common: &Common) -> Result<()> {
    let mut args = args.clone();
    if common.smoke {
        args.records = 20_000;
        args.shards = 4;
    }
    let mut table = Table::new(
        format!(
            "kpl: {}-byte user records, {} shards, engine limits off, kpl defaults; medians of {}",
            args.record_bytes,
            args.shards,
            common.repeats()
        ),
        &[
            "mode",
            "user records/s",
            "Kinesis recs/s",
            "MB/s",
            "buffered p50 ms",
            "buffered p99 ms",
            "CPU us/user rec",
            "engine CPU us/user rec",
            "peak RSS MiB",
            "records",
        ],
    );
    table.note(format!(
        "{}; CPU and RSS are this process's, engine CPU its engine runtime's threads (producer, engine and SDK when in process)",
        crate::common::machine()
    ));
    for mode in args.mode.clone() {
        let aggregation = mode == Aggregation::Aggregated;
        let records = if aggregation {
            args.records
        } else {
            args.records / 5
        };
        let mut runs = Vec::new();
        for _ in 0..common.repeats() {
            runs.push(run(common, &args, aggregation, records).await?);
        }
        let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let pct = |sorted: &[Duration], p: f64| crate::common::percentile_ms(sorted, p);
        let row: Vec<Cell> = vec![
            text(if aggregation { "aggregated" } else { "plain" }),
            num(m(&|r| r.records as f64 / r.elapsed), 0),
            num(m(&|r| r.kinesis_records as f64 / r.elapsed), 0),
            num(
                m(&|r| (r.records * args.record_bytes) as f64 / r.elapsed / 1e6),
                1,
            ),
            num(m(&|r| pct(&r.buffered, 50.0)), 1),
            num(m(&|r| pct(&r.buffered, 99.0)), 1),
            num(
                m(&|r| r.cpu.as_secs_f64() * 1e6 / r.records.max(1) as f64),
                2,
            ),
            num(
                m(&|r| match r.engine_cpu {
                    Duration::ZERO => f64::NAN,
                    cpu => cpu.as_secs_f64() * 1e6 / r.records.max(1) as f64,
                }),
                2,
            ),
            num(m(&|r| r.rss), 0),
            num(records as f64, 0),
        ];
        table.row(row, common.json);
    }
    table.finish(common.json);
    Ok(())
}

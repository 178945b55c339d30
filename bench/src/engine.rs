//! `engine-ingest` and `engine-read`: PutRecords and GetRecords throughput through the real SDK
//! over loopback HTTP, with 1..N connections (one client each) and records of 100 B to 1 MiB.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};

use crate::cbor::Protocol;
use crate::common::{
    Common, Storage, Table, Target, create_stream, list, median, num, peak_rss_mib, percentile_ms,
    process_cpu, reset_peak_rss, stream_name, text,
};

/// Options of `engine-ingest` and `engine-read`.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Storage modes of the in-process engine.
    #[arg(long, value_delimiter = ',', default_values = ["memory", "durable"])]
    pub storage: Vec<Storage>,
    /// Connections (writers or readers, one client each), comma-separated.
    #[arg(long, default_value = "1,4", value_parser = list::<usize>)]
    pub connections: std::vec::Vec<usize>,
    /// Record sizes in bytes, comma-separated.
    #[arg(long, default_value = "100,10240,1048576", value_parser = list::<usize>)]
    pub sizes: std::vec::Vec<usize>,
    /// Shards of the stream.
    #[arg(long, default_value_t = 4)]
    pub shards: i32,
    /// Seconds of writing per run (`engine-ingest`).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Bytes written before reading (`engine-read`).
    #[arg(long, default_value_t = 200 << 20)]
    pub backlog_bytes: usize,
    /// Wire protocol of PutRecords and GetRecords: `json` (aws-sdk-kinesis) or `cbor` (what
    /// the Java SDKs send, over raw HTTP/1.1).
    #[arg(long, value_enum, default_value = "json")]
    pub protocol: Protocol,
}

/// Kinesis' limit on a record: data plus partition key.
const MAX_RECORD: usize = 1 << 20;

/// Partition keys are `KEY_LEN` characters, so a record of `size` fits the limit.
const KEY_LEN: usize = 13;

/// Data bytes of a record of `size`: all of it, but for a 1 MiB record, whose key must fit too.
fn data_len(size: usize) -> usize {
    size.min(MAX_RECORD - KEY_LEN)
}

/// Records per PutRecords call for records of `size`: 500, or fewer to stay within 4 MiB.
fn per_call(size: usize) -> usize {
    ((4 << 20) / size.max(1)).clamp(1, 500)
}

/// One measured run.
struct Run {
    records: usize,
    bytes: usize,
    elapsed: Duration,
    calls: Vec<Duration>,
    cpu: Duration,
    /// The in-process engine's share of `cpu` (zero for an external endpoint).
    engine_cpu: Duration,
    rss: f64,
}

/// Writes with `writers` clients for `seconds` (or, with `until`, until that many records).
async fn write(
    target: &Target,
    stream: &str,
    writers: usize,
    size: usize,
    seconds: f64,
    until: Option<usize>,
    protocol: Protocol,
) -> Result<Run> {
    let raw = vec![b'x'; data_len(size)];
    let payload = Blob::new(raw.clone());
    let batch = per_call(size);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let quota = until.map(|n| n.div_ceil(writers));
    let (cpu, engine_cpu) = (process_cpu(), crate::common::engine_cpu());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let client = target.kinesis();
        let mut cbor = match protocol {
            Protocol::Json => None,
            Protocol::Cbor => Some(crate::cbor::Client::connect(target.endpoint()).await?),
        };
        let stream = stream.to_owned();
        let payload = payload.clone();
        let raw = raw.clone();
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            let mut written = 0usize;
            loop {
                let n = match quota {
                    Some(quota) if written >= quota => break,
                    Some(quota) => batch.min(quota - written),
                    None if Instant::now() >= deadline => break,
                    None => batch,
                };
                let key = |i: usize| format!("key-{writer:03}-{:05}", (written + i) % 10_007);
                if let Some(cbor) = &mut cbor {
                    let sent = Instant::now();
                    let failed = cbor.put_records(&stream, &raw, n, key).await?;
                    calls.push(sent.elapsed());
                    anyhow::ensure!(failed == 0, "{failed} records failed");
                    written += n;
                    continue;
                }
                let entries = (0..n)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(key(i))
                            .data(payload.clone())
                            .build()
                            .expect("data and key are set")
                    })
                    .collect();
                let sent = Instant::now();
                let out = client
                    .put_records()
                    .stream_name(&stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .context("PutRecords")?;
                calls.push(sent.elapsed());
                anyhow::ensure!(
                    out.failed_record_count.unwrap_or(0) == 0,
                    "{} records failed",
                    out.failed_record_count.unwrap_or(0)
                );
                written += n;
            }
            anyhow::Ok((written, calls))
        }));
    }
    let mut run = Run {
        records: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        calls: Vec::new(),
        cpu: Duration::ZERO,
        engine_cpu: Duration::ZERO,
        rss: 0.0,
    };
    for task in tasks {
        let (written, calls) = task.await??;
        run.records += written;
        run.calls.extend(calls);
    }
    run.elapsed = started.elapsed();
    run.bytes = run.records * data_len(size);
    run.cpu = process_cpu().saturating_sub(cpu);
    run.engine_cpu = crate::common::engine_cpu().saturating_sub(engine_cpu);
    run.calls.sort();
    Ok(run)
}

/// Reads every shard from TRIM_HORIZON to the tip with `readers` clients (shards dealt out).
async fn read(target: &Target, stream: &str, readers: usize, protocol: Protocol) -> Result<Run> {
    let shards = target
        .kinesis()
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .context("ListShards")?
        .shards
        .unwrap_or_default();
    let (cpu, engine_cpu) = (process_cpu(), crate::common::engine_cpu());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for reader in 0..readers {
        let mine: Vec<String> = shards
            .iter()
            .skip(reader)
            .step_by(readers)
            .map(|s| s.shard_id.clone())
            .collect();
        let client = target.kinesis();
        let mut cbor = match protocol {
            Protocol::Json => None,
            Protocol::Cbor => Some(crate::cbor::Client::connect(target.endpoint()).await?),
        };
        let stream = stream.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut records, mut bytes, mut calls) = (0usize, 0usize, Vec::new());
            for shard in mine {
                let mut iterator = client
                    .get_shard_iterator()
                    .stream_name(&stream)
                    .shard_id(shard)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .context("GetShardIterator")?
                    .shard_iterator
                    .context("no iterator")?;
                loop {
                    if let Some(cbor) = &mut cbor {
                        let sent = Instant::now();
                        let out = cbor.get_records(&iterator, 10_000).await?;
                        calls.push(sent.elapsed());
                        records += out.count;
                        bytes += out.data_bytes;
                        match out.next_iterator {
                            Some(next) if out.millis_behind_latest != Some(0) => iterator = next,
                            _ => break,
                        }
                        continue;
                    }
                    let sent = Instant::now();
                    let out = client
                        .get_records()
                        .shard_iterator(&iterator)
                        .limit(10_000)
                        .send()
                        .await
                        .context("GetRecords")?;
                    calls.push(sent.elapsed());
                    records += out.records.len();
                    bytes += out
                        .records
                        .iter()
                        .map(|r| r.data.as_ref().len())
                        .sum::<usize>();
                    match out.next_shard_iterator {
                        Some(next) if out.millis_behind_latest != Some(0) => iterator = next,
                        _ => break,
                    }
                }
            }
            anyhow::Ok((records, bytes, calls))
        }));
    }
    let mut run = Run {
        records: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        calls: Vec::new(),
        cpu: Duration::ZERO,
        engine_cpu: Duration::ZERO,
        rss: 0.0,
    };
    for task in tasks {
        let (records, bytes, calls) = task.await??;
        run.records += records;
        run.bytes += bytes;
        run.calls.extend(calls);
    }
    run.elapsed = started.elapsed();
    run.cpu = process_cpu().saturating_sub(cpu);
    run.engine_cpu = crate::common::engine_cpu().saturating_sub(engine_cpu);
    run.calls.sort();
    Ok(run)
}

const COLUMNS: [&str; 11] = [
    "storage",
    "size B",
    "conns",
    "records/s",
    "MiB/s",
    "call p50 ms",
    "call p99 ms",
    "CPU us/rec",
    "engine CPU us/rec",
    "peak RSS MiB",
    "records",
];

fn row(storage: &str, size: usize, conns: usize, runs: &[Run]) -> Vec<crate::common::Cell> {
    let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    vec![
        text(storage),
        num(size as f64, 0),
        num(conns as f64, 0),
        num(m(&|r| r.records as f64 / r.elapsed.as_secs_f64()), 0),
        num(
            m(&|r| r.bytes as f64 / r.elapsed.as_secs_f64() / (1 << 20) as f64),
            1,
        ),
        num(m(&|r| percentile_ms(&r.calls, 50.0)), 2),
        num(m(&|r| percentile_ms(&r.calls, 99.0)), 2),
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
        num(m(&|r| r.records as f64), 0),
    ]
}

/// The smoke version of the options: one small size, few records, short runs.
fn smoke(args: &EngineArgs, common: &Common) -> EngineArgs {
    let mut args = args.clone();
    if common.smoke {
        args.sizes = vec![100, 1 << 20];
        args.connections = vec![1, 2];
        args.seconds = 0.3;
        args.backlog_bytes = 2 << 20;
        args.shards = 2;
    }
    args
}

fn storages(args: &EngineArgs, common: &Common) -> Vec<(Storage, &'static str)> {
    match common.endpoint {
        Some(_) => vec![(Storage::Memory, "external")],
        None => args.storage.iter().map(|s| (*s, s.name())).collect(),
    }
}

/// `engine-ingest`: PutRecords records/s per storage, record size and connections.
pub async fn ingest(args: &EngineArgs, common: &Common) -> Result<()> {
    let args = smoke(args, common);
    let mut table = Table::new(
        format!(
            "engine-ingest: PutRecords ({:?}) for {} s per run, {} shards, AWS limits off; medians of {}",
            args.protocol,
            args.seconds,
            args.shards,
            common.repeats()
        ),
        &COLUMNS,
    );
    table.note(format!(
        "{}; CPU and RSS are this process's, engine CPU its engine runtime's threads (engine and clients when in process); a 1 MiB record's data is 1 MiB less its {KEY_LEN}-byte key",
        crate::common::machine()
    ));
    for (storage, label) in storages(&args, common) {
        for &size in &args.sizes {
            for &conns in &args.connections {
                let mut runs = Vec::new();
                for _ in 0..common.repeats() {
                    reset_peak_rss();
                    let target = Target::start(storage, false, common.endpoint.as_deref()).await?;
                    let stream = stream_name("ingest");
                    create_stream(&target.kinesis(), &stream, args.shards).await?;
                    let mut run = write(
                        &target,
                        &stream,
                        conns,
                        size,
                        args.seconds,
                        None,
                        args.protocol,
                    )
                    .await?;
                    run.rss = peak_rss_mib();
                    runs.push(run);
                    target.stop().await;
                }
                table.row(row(label, size, conns, &runs), common.json);
            }
        }
    }
    table.finish(common.json);
    Ok(())
}

/// `engine-read`: GetRecords records/s draining a backlog, per storage, size and readers.
pub async fn read_backlog(args: &EngineArgs, common: &Common) -> Result<()> {
    let args = smoke(args, common);
    let mut table = Table::new(
        format!(
            "engine-read: GetRecords ({:?}, limit 10,000) draining a backlog of {} MiB over {} shards from TRIM_HORIZON, AWS limits off; medians of {}",
            args.protocol,
            args.backlog_bytes >> 20,
            args.shards,
            common.repeats()
        ),
        &COLUMNS,
    );
    table.note(format!(
        "{}; CPU and RSS are this process's, engine CPU its engine runtime's threads while reading",
        crate::common::machine()
    ));
    for (storage, label) in storages(&args, common) {
        for &size in &args.sizes {
            let records = (args.backlog_bytes / size.max(1)).max(1);
            for &conns in &args.connections {
                let mut runs = Vec::new();
                for _ in 0..common.repeats() {
                    let target = Target::start(storage, false, common.endpoint.as_deref()).await?;
                    let stream = stream_name("read");
                    create_stream(&target.kinesis(), &stream, args.shards).await?;
                    write(&target, &stream, 4, size, 0.0, Some(records), args.protocol).await?;
                    reset_peak_rss();
                    let mut run = read(&target, &stream, conns, args.protocol).await?;
                    anyhow::ensure!(
                        run.records >= records,
                        "read {} of {records} records",
                        run.records
                    );
                    run.rss = peak_rss_mib();
                    runs.push(run);
                    target.stop().await;
                }
                table.row(row(label, size, conns, &runs), common.json);
            }
        }
    }
    table.finish(common.json);
    Ok(())
}

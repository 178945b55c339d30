//! `chaos_soak`: a durable engine, a `kpl` producer and a fleet of `kcl` worker processes run
//! for `--duration` while shards are split and merged, Kinesis and DynamoDB faults are injected
//! and the engine and workers are SIGKILLed at moments drawn from `--seed`; then the fleet
//! drains and the soak checks that nothing acknowledged was lost and no key was reordered.
//!
//! It needs the `core-engine` and `fleet_worker` binaries next to it (or `--engine-bin`,
//! `--worker-bin`):
//!
//! ```text
//! cargo build -p core-engine --bin core-engine -p examples --bin fleet_worker --bin chaos_soak
//! target/debug/chaos_soak --duration 90 --seed 7
//! ```
//!
//! For an hour, build in release (the debug build works too, at the default rate) and add
//! `--pause-workers` to freeze workers as well:
//!
//! ```text
//! cargo build --release -p core-engine --bin core-engine -p examples --bin fleet_worker --bin chaos_soak
//! target/release/chaos_soak --duration 3600 --seed 42 --pause-workers | tee soak.log
//! ```
//!
//! It prints each chaos action as it happens, a progress line every 10 s, and at the end the
//! summary as a table and as one JSON line (the last line of its output). Exit code: 0 when the
//! checks pass, 1 when one fails (lost records, order violations, nothing acknowledged, or
//! overlapping processing unless `--overlap-ok`), 2 when the soak could not run. The work
//! directory (engine data, worker logs, every process's output) is kept when the run fails.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use examples::soak::{self, Options, faults::FaultTargets, process::sibling_binary};

/// Chaos soak: kills, reshards and faults against a durable engine, a producer and a worker
/// fleet, then checks that nothing acknowledged was lost or reordered.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Seconds of chaos (the drain comes after).
    #[arg(long, default_value_t = 90)]
    duration: u64,
    /// Seed of the chaos schedule [default: from the clock, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// The core-engine binary [default: next to this one].
    #[arg(long)]
    engine_bin: Option<PathBuf>,
    /// The fleet_worker binary [default: next to this one].
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Work directory (engine data, worker logs, output) [default: a new one in the temp dir].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the work directory even when the run passes.
    #[arg(long)]
    keep: bool,
    /// The engine's port [default: a free one, kept across restarts].
    #[arg(long)]
    port: Option<u16>,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Shards at creation.
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Fewest open shards (merges stop there).
    #[arg(long, default_value_t = 2)]
    min_shards: usize,
    /// Most open shards (splits stop there).
    #[arg(long, default_value_t = 8)]
    max_shards: usize,
    /// Records per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Distinct partition keys.
    #[arg(long, default_value_t = 50)]
    keys: u64,
    /// kcl failover time of the workers, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    failover_ms: u64,
    /// Mean time between chaos actions, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    chaos_interval_ms: u64,
    /// No Kinesis faults.
    #[arg(long)]
    no_kinesis_faults: bool,
    /// No DynamoDB faults (on the lease table).
    #[arg(long)]
    no_dynamodb_faults: bool,
    /// Longest wait, after the chaos, for the fleet to process every acknowledged record, in
    /// seconds.
    #[arg(long, default_value_t = 120)]
    drain_timeout: u64,
    /// Report overlapping processing of a shard by two workers without failing the run.
    #[arg(long)]
    overlap_ok: bool,
    /// Also pause workers (SIGSTOP for half to twice the failover time, then SIGCONT). A pause
    /// that lands inside a batch shows as an overlap no lease can prevent (the worker finishes
    /// the batch after another took the shard; its checkpoint is refused), so long runs with
    /// pauses may report one without a kcl bug; such an overlap counts as overlapping batches
    /// too (the frozen batch spans the pause), where kcl's own overlaps so far did not.
    #[arg(long)]
    pause_workers: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<ExitCode> {
    if args.workers == 0 || args.shards == 0 || args.rate == 0 || args.keys == 0 {
        bail!("--workers, --shards, --rate and --keys must be at least 1");
    }
    if args.min_shards == 0 || args.min_shards > args.max_shards {
        bail!("--min-shards must be between 1 and --max-shards");
    }
    let build = "cargo build -p core-engine --bin core-engine -p examples --bin fleet_worker";
    let engine_bin = sibling_binary(args.engine_bin, "core-engine", build)?;
    let worker_bin = sibling_binary(args.worker_bin, "fleet_worker", build)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64
            % 1_000_000
    });
    let work_dir = match args.work_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("shardline-soak-{seed}-{}", std::process::id())),
    };
    if work_dir.exists() && std::fs::read_dir(&work_dir)?.next().is_some() {
        bail!(
            "{} is not empty: a soak needs a fresh work directory",
            work_dir.display()
        );
    }
    let port = match args.port {
        Some(port) => port,
        None => free_port()?,
    };
    println!(
        "chaos soak: seed {seed}, {} s, {} workers, {} records/s over {} keys, engine on port \
         {port}, work directory {}",
        args.duration,
        args.workers,
        args.rate,
        args.keys,
        work_dir.display()
    );
    let options = Options {
        duration: Duration::from_secs(args.duration),
        seed,
        engine_bin,
        worker_bin,
        work_dir: work_dir.clone(),
        port,
        workers: args.workers,
        shards: args.shards,
        min_shards: args.min_shards,
        max_shards: args.max_shards,
        rate: args.rate,
        keys: args.keys,
        failover_ms: args.failover_ms,
        chaos_interval: Duration::from_millis(args.chaos_interval_ms.max(100)),
        faults: FaultTargets {
            kinesis: !args.no_kinesis_faults,
            dynamodb: !args.no_dynamodb_faults,
        },
        drain_timeout: Duration::from_secs(args.drain_timeout),
        overlap_fails: !args.overlap_ok,
        pause_workers: args.pause_workers,
    };
    let summary = match soak::run(options).await {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("work directory kept: {}", work_dir.display());
            return Err(e);
        }
    };
    println!();
    print!("{}", summary.table());
    if summary.passed() && !args.keep {
        let _ = std::fs::remove_dir_all(&work_dir);
    } else {
        println!("work directory: {}", work_dir.display());
    }
    println!("{}", summary.json_line());
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A port free now (the engine binds it a moment later, and again after each restart).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

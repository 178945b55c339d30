//! `fleet_worker`: one `kcl` worker as its own OS process, for the worker-fleet walkthrough
//! (`docs/fleet.md`).
//!
//! It runs a [`kcl::Scheduler`] whose record processor counts records per shard and checkpoints
//! every batch. It prints a line (time of day in UTC first) whenever the set of shards it holds changes, and a status line
//! every `--status-ms`:
//!
//! ```text
//! 06:17:18.028 worker=w1 shards=[shardId-000000000000,shardId-000000000003] processed=1234 checkpoints=56
//! ```
//!
//! Start an engine (`core-engine serve --listen 127.0.0.1:4567`), then a few of these in separate
//! terminals; `kill -9` one and watch the others take its shards:
//!
//! ```text
//! cargo run -p examples --bin fleet_worker -- --endpoint http://127.0.0.1:4567 --worker-id w1
//! ```
//!
//! Ctrl-C or SIGTERM stops it gracefully (final checkpoints, leases handed back at once); a
//! second Ctrl-C exits immediately. `RUST_LOG=kcl=info` shows the scheduler's log on stderr.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use examples::fleet::{self, CountingFactory, WorkerStats};
use examples::retrieval::RetrievalArg;
use examples::soak::log::ProcessedLog;
use kcl::{Config, InitialPosition, Scheduler};

/// One kcl worker of a fleet: reads its share of a stream's shards, balancing with the other
/// workers through the lease table in the same engine.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Endpoint of both Kinesis and DynamoDB (an engine, e.g. http://127.0.0.1:4567),
    /// overriding the AWS configuration (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_KINESIS,
    /// AWS_ENDPOINT_URL_DYNAMODB, profiles). With neither, the local engine at
    /// http://127.0.0.1:4567 unless a region is configured, then AWS.
    #[arg(long)]
    endpoint: Option<String>,
    /// Stream to read; the worker waits for it to exist.
    #[arg(long, default_value = fleet::DEFAULT_STREAM)]
    stream: String,
    /// Application name: the fleet's identity, and the name of its lease table.
    #[arg(long, default_value = fleet::DEFAULT_APP)]
    app: String,
    /// Worker id written as lease owner [default: HOSTNAME-PID].
    #[arg(long)]
    worker_id: Option<String>,
    /// A lease not renewed for this long is taken by others (kcl's default is 10 000 ms; the
    /// renewal interval is a third of it).
    #[arg(long, default_value_t = Config::default().failover_time.as_millis() as u64)]
    failover_ms: u64,
    /// Where shards without a checkpoint start.
    #[arg(long, value_enum, default_value_t = Position::TrimHorizon)]
    initial_position: Position,
    /// How this worker reads its shards. Enhanced fan-out registers the stream consumer (named
    /// after the application) if it is missing; every worker of the application shares it.
    #[arg(long, value_enum, default_value_t = RetrievalArg::FanOut)]
    retrieval: RetrievalArg,
    /// When polling: pause after a read that returned nothing (kcl's default is 1 500 ms; 250 ms stays under
    /// Kinesis' 5 reads/s per shard).
    #[arg(long, default_value_t = 250)]
    idle_ms: u64,
    /// Most leases this worker holds [default: no limit].
    #[arg(long)]
    max_leases: Option<usize>,
    /// Period of the status line.
    #[arg(long, default_value_t = 2000)]
    status_ms: u64,
    /// How often the worker looks for new shards (after a split or merge); kcl's default is
    /// 60 000 ms.
    #[arg(long, default_value_t = Config::default().shard_sync_interval.as_millis() as u64)]
    shard_sync_ms: u64,
    /// Append every batch (shard, records, wall-clock start and end) to this file before
    /// checkpointing it, one JSON line per batch: what the chaos soak (`chaos_soak`) checks.
    #[arg(long)]
    processed_log: Option<std::path::PathBuf>,
    /// Serve the process's metrics (Prometheus text format) at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Log format on stderr (level from RUST_LOG, default warn).
    #[arg(long, value_enum, default_value_t)]
    log_format: examples::logging::LogFormat,
}

/// `--initial-position` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Position {
    /// The oldest retained record: nothing written before the first worker started is skipped.
    TrimHorizon,
    /// The tip: only records written after the lease was created (kcl's default).
    Latest,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    examples::logging::init(args.log_format, "warn");
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let worker = args.worker_id.unwrap_or_else(fleet::default_worker_id);
    examples::metrics::serve_if_asked(args.metrics_listen).await?;
    let (kinesis, ddb) = fleet::connect(args.endpoint.as_deref()).await?;
    println!(
        "{} worker={worker} pid={} stream={} app={} failover_ms={} retrieval={} waiting for the stream",
        fleet::clock(),
        std::process::id(),
        args.stream,
        args.app,
        args.failover_ms,
        args.retrieval
    );
    fleet::wait_for_stream(&kinesis, &args.stream, Duration::from_secs(3600), true).await?;

    let config = Config {
        retrieval: args.retrieval.retrieval(),
        failover_time: Duration::from_millis(args.failover_ms),
        initial_position: match args.initial_position {
            Position::TrimHorizon => InitialPosition::TrimHorizon,
            Position::Latest => InitialPosition::Latest,
        },
        idle_time_between_reads: Duration::from_millis(args.idle_ms),
        shard_sync_interval: Duration::from_millis(args.shard_sync_ms.max(100)),
        max_leases_for_worker: args.max_leases.unwrap_or(usize::MAX),
        // A stop should not hang a terminal for the default 30 s.
        shutdown_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let stats = match &args.processed_log {
        Some(path) => WorkerStats::with_log(
            &worker,
            ProcessedLog::open(path).with_context(|| format!("opening {}", path.display()))?,
        ),
        None => WorkerStats::default(),
    };
    let scheduler = Arc::new(
        Scheduler::new(
            kinesis,
            ddb,
            &args.app,
            &args.stream,
            &worker,
            CountingFactory(stats.clone()),
            config,
        )
        .context("configuring the scheduler")?,
    );
    println!(
        "{} worker={worker} running (renewal every {} ms)",
        fleet::clock(),
        scheduler_renewal_ms(args.failover_ms)
    );
    let mut task = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.run().await }
    });

    let mut held = stats.subscribe();
    let mut last = held.borrow_and_update().clone();
    let mut status = tokio::time::interval(Duration::from_millis(args.status_ms.max(100)));
    status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let signal = fleet::shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            result = &mut task => {
                // The scheduler only returns by itself on an error (e.g. no lease table).
                result.context("scheduler task")?.context("scheduler")?;
                return Ok(());
            }
            Ok(()) = held.changed() => {
                let now = held.borrow_and_update().clone();
                let took: Vec<&String> = now.difference(&last).collect();
                let released: Vec<&String> = last.difference(&now).collect();
                println!(
                    "{} {} took=[{}] released=[{}]",
                    fleet::clock(),
                    stats.status(&worker),
                    fleet::join(took),
                    fleet::join(released)
                );
                last = now;
            }
            _ = status.tick() => println!("{} {}", fleet::clock(), stats.status(&worker)),
        }
    }

    println!(
        "{} worker={worker} stopping: final checkpoints, then handing the leases back",
        fleet::clock()
    );
    scheduler.shutdown();
    tokio::select! {
        result = &mut task => {
            result.context("scheduler task")?.context("scheduler")?;
        }
        _ = tokio::signal::ctrl_c() => {
            println!("{} worker={worker} second Ctrl-C: exiting without waiting", fleet::clock());
            return Ok(());
        }
    }
    println!("{} {} stopped", fleet::clock(), stats.status(&worker));
    Ok(())
}

/// The renewal interval kcl derives from the failover time, to print it.
fn scheduler_renewal_ms(failover_ms: u64) -> u128 {
    Config {
        failover_time: Duration::from_millis(failover_ms),
        ..Config::default()
    }
    .renewal_interval()
    .as_millis()
}

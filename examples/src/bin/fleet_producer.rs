//! `fleet_producer`: a steady `kpl` load for the worker-fleet walkthrough (`docs/fleet.md`).
//!
//! Creates the stream if it is missing, then puts `--rate` records per second, spread over
//! `--keys` partition keys (so every shard gets some), until Ctrl-C or SIGTERM; every
//! `--report-ms` it prints what was acknowledged:
//!
//! ```text
//! 06:17:20.113 produced=2500 acked=2498 failed=0 rate=500/s
//! ```
//!
//! ```text
//! cargo run -p examples --bin fleet_producer -- --endpoint http://127.0.0.1:4567 --shards 4
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use examples::fleet::{self, Load};

/// A steady KPL load on one stream, created if missing.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Endpoint of both Kinesis and DynamoDB (an engine, e.g. http://127.0.0.1:4567),
    /// overriding the AWS configuration (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_KINESIS,
    /// AWS_ENDPOINT_URL_DYNAMODB, profiles). With neither, the local engine at
    /// http://127.0.0.1:4567 unless a region is configured, then AWS.
    #[arg(long)]
    endpoint: Option<String>,
    /// Stream to write to.
    #[arg(long, default_value = fleet::DEFAULT_STREAM)]
    stream: String,
    /// Shards of the stream when it has to be created.
    #[arg(long, default_value_t = 4)]
    shards: i32,
    /// Records per second.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Distinct partition keys.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Period of the progress line.
    #[arg(long, default_value_t = 5000)]
    report_ms: u64,
    /// Serve the process's metrics (Prometheus text format) at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    if args.shards < 1 || args.rate == 0 {
        bail!("--shards and --rate must be at least 1");
    }
    examples::metrics::serve_if_asked(args.metrics_listen).await?;
    let (kinesis, _) = fleet::connect(args.endpoint.as_deref()).await?;
    let (created, open) = fleet::ensure_stream(&kinesis, &args.stream, args.shards).await?;
    println!(
        "stream {} {} with {open} open shards; producing {} records/s over {} keys (Ctrl-C stops)",
        args.stream,
        if created { "created" } else { "exists" },
        args.rate,
        args.keys
    );
    let producer = kpl::Producer::new(kinesis, &args.stream, kpl::Config::default())
        .await
        .context("starting the producer")?;
    let producer = Arc::new(producer);
    let load = Arc::new(Load::default());
    let producing = tokio::spawn({
        let (producer, load) = (producer.clone(), load.clone());
        async move { fleet::produce(&producer, args.rate, args.keys, load).await }
    });

    let mut report = tokio::time::interval(Duration::from_millis(args.report_ms.max(100)));
    report.tick().await;
    let (mut last_at, mut last_acked) = (Instant::now(), 0);
    let signal = fleet::shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = report.tick() => {
                let acked = load.acked.load(Ordering::Relaxed);
                let rate = (acked - last_acked) as f64 / last_at.elapsed().as_secs_f64();
                println!(
                    "{} produced={} acked={acked} failed={} rate={rate:.0}/s",
                    fleet::clock(),
                    load.sent.load(Ordering::Relaxed),
                    load.failed.load(Ordering::Relaxed),
                );
                (last_at, last_acked) = (Instant::now(), acked);
            }
        }
    }

    load.stop.store(true, Ordering::SeqCst);
    producing.await.context("producer task")?;
    println!("stopping: delivering what is buffered (10 s at most)");
    let producer = Arc::into_inner(producer).context("the producer is still shared")?;
    producer.flush_all(Duration::from_secs(10)).await;
    let unsent = producer.shutdown(Duration::from_secs(5)).await;
    // Delivery callbacks run on their own tasks: give them a moment to count.
    tokio::time::sleep(Duration::from_millis(100)).await;
    println!(
        "produced={} acked={} failed={} undelivered={}",
        load.sent.load(Ordering::Relaxed),
        load.acked.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
        unsent.len()
    );
    Ok(())
}

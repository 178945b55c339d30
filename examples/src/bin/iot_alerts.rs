//! IoT telemetry anomaly alerts: per-device rolling statistics, alerts to a second stream.
//! See `examples::scenarios::iot_alerts` for the story.
//!
//! ```text
//! cargo run -p examples --bin iot_alerts -- --help
//! AWS_REGION=eu-west-1 cargo run -p examples --bin iot_alerts -- --aws --duration 30
//! ```
//!
//! Where it runs: with nothing configured, on an in-memory engine it starts in its own process
//! (`--embedded` forces that); else on `--endpoint URL` (both services), or where the AWS
//! configuration points (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_KINESIS` /
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_PROFILE`, `~/.aws/config`), or AWS itself with `--aws`
//! (in the configured region, e.g. `AWS_REGION=eu-west-1`, with the SDK's credentials; a
//! region alone is not enough). Its first line says which. Anywhere
//! but on its own engine, names get a suffix (`--suffix`, default `-<unix seconds>`) and what it
//! created is deleted at the end unless `--keep` (see `examples::scenarios::cli`).
//!
//! Against AWS it creates, with the suffix `-S`, the streams `telemetry-S` (`--shards`, 2 by
//! default) and `alerts-S` (1 shard), the lease table `anomaly-detector-S` (on demand) and an
//! enhanced fan-out consumer on `telemetry-S` (`--retrieval polling` registers none): all billed
//! while they exist.

use anyhow::Result;
use clap::Parser;
use examples::scenarios::cli::{self, CommonArgs, Connection};
use examples::scenarios::iot_alerts::{Options, resources, run};

/// Simulated devices send readings with spikes at known points; a kcl application keeps
/// per-device EWMA statistics and publishes alerts with kpl to an `alerts` stream, which is then
/// read back and checked against the injected spikes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Readings per second, over all devices.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Devices.
    #[arg(long, default_value_t = 8)]
    devices: usize,
    /// Shards of the telemetry stream.
    #[arg(long, default_value_t = 2)]
    shards: i32,
    /// Seed of the simulation (same seed, same readings and spikes).
    #[arg(long, default_value_t = 3)]
    seed: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::exit_code(main_inner(Args::parse()).await)
}

async fn main_inner(args: Args) -> Result<bool> {
    let target = Connection::connect(&args.common.target).await?;
    let options = Options {
        retrieval: args.common.retrieval.retrieval(),
        duration: args.common.duration()?,
        rate: args.rate.max(1),
        devices: args.devices.max(1),
        shards: args.shards.max(1),
        seed: args.seed,
        suffix: target.suffix.clone(),
        ..Options::default()
    };
    println!(
        "{}; {} devices sending {} readings/s for {:?}",
        target.describe(),
        options.devices,
        options.rate,
        options.duration
    );
    let report = run(&target.clients, &options).await;
    if let Ok(report) = &report {
        println!("{report}");
    }
    let closed = target.close(&resources(&options)).await;
    let report = report?;
    closed?;
    Ok(report.ok())
}

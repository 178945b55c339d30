//! IoT telemetry anomaly alerts: per-device rolling statistics, alerts to a second stream.
//! See `examples::scenarios::iot_alerts` for the story.
//!
//! ```text
//! cargo run -p examples --bin iot_alerts -- --help
//! ```

use anyhow::Result;
use clap::Parser;
use examples::scenarios::cli::{self, CommonArgs, Target};
use examples::scenarios::iot_alerts::{Options, run};

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
    let target = Target::connect(&args.common).await?;
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
    target.close().await;
    let report = report?;
    println!("{report}");
    Ok(report.ok())
}

//! One log stream fanned out to two independent applications (an archiver and a slower,
//! later-deployed error monitor). See `examples::scenarios::log_fanout` for the story.
//!
//! ```text
//! cargo run -p examples --bin log_fanout -- --help
//! AWS_REGION=eu-west-1 cargo run -p examples --bin log_fanout -- --aws --duration 30
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
//! Against AWS it creates, with the suffix `-S`, the stream `logs-S` (`--shards`, 2 by default),
//! the lease tables `log-archiver-S` and `error-monitor-S` (on demand) and two enhanced fan-out
//! consumers on the stream (`--retrieval polling` registers none): all billed while they exist.

use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use examples::scenarios::cli::{self, CommonArgs, Connection};
use examples::scenarios::log_fanout::{Options, resources, run};

/// Hosts ship log lines to one stream; two kcl applications with their own lease tables read
/// it: an archiver from the start, and an error monitor deployed later that reads the whole
/// backlog from TRIM_HORIZON, slowly. Both must end up with every line.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Lines per second, over all hosts.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Shards of the stream.
    #[arg(long, default_value_t = 2)]
    shards: i32,
    /// Milliseconds the error monitor takes per line (it is the slow one).
    #[arg(long, default_value_t = 2)]
    monitor_ms_per_line: u64,
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
        shards: args.shards.max(1),
        monitor_delay_per_line: Duration::from_millis(args.monitor_ms_per_line),
        suffix: target.suffix.clone(),
        ..Options::default()
    };
    println!(
        "{}; shipping {} lines/s for {:?}",
        target.describe(),
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

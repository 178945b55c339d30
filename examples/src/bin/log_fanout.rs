//! One log stream fanned out to two independent applications (an archiver and a slower,
//! later-deployed error monitor). See `examples::scenarios::log_fanout` for the story.
//!
//! ```text
//! cargo run -p examples --bin log_fanout -- --help
//! ```

use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use examples::scenarios::cli::{self, CommonArgs, Target};
use examples::scenarios::log_fanout::{Options, run};

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
    let target = Target::connect(&args.common).await?;
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
    target.close().await;
    let report = report?;
    println!("{report}");
    Ok(report.ok())
}

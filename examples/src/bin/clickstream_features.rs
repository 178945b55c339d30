//! Real-time per-user features from a clickstream into a DynamoDB table, replay-safe.
//! See `examples::scenarios::clickstream_features` for the story.
//!
//! ```text
//! cargo run -p examples --bin clickstream_features -- --help
//! ```

use anyhow::Result;
use clap::Parser;
use examples::scenarios::cli::{self, CommonArgs, Target};
use examples::scenarios::clickstream_features::{Options, run};

/// A kpl producer writes clicks; a kcl application folds them into per-user features in a
/// DynamoDB table with replay-safe conditional writes; a second application then replays the
/// whole stream to show nothing is counted twice.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Clicks per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Distinct users.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Shards of the stream.
    #[arg(long, default_value_t = 2)]
    shards: i32,
    /// Workers of the feature application.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Skip the replay from TRIM_HORIZON at the end.
    #[arg(long)]
    no_replay: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::exit_code(main_inner(Args::parse()).await)
}

async fn main_inner(args: Args) -> Result<bool> {
    let options = Options {
        retrieval: args.common.retrieval.retrieval(),
        duration: args.common.duration()?,
        rate: args.rate.max(1),
        users: args.users.max(1),
        shards: args.shards.max(1),
        workers: args.workers.max(1),
        replay: !args.no_replay,
        ..Options::default()
    };
    let target = Target::connect(&args.common).await?;
    println!(
        "{}; producing {} clicks/s of {} users for {:?}",
        target.describe(),
        options.rate,
        options.users,
        options.duration
    );
    let options = Options {
        suffix: target.suffix.clone(),
        ..options
    };
    let report = run(&target.clients, &options).await;
    target.close().await;
    let report = report?;
    println!("{report}");
    Ok(report.ok())
}

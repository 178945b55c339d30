//! Real-time per-user features from a clickstream into a DynamoDB table, replay-safe.
//! See `examples::scenarios::clickstream_features` for the story.
//!
//! ```text
//! cargo run -p examples --bin clickstream_features -- --help
//! AWS_REGION=eu-west-1 cargo run -p examples --bin clickstream_features -- --aws --duration 30
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
//! Against AWS it creates, with the suffix `-S`, the stream `clickstream-S` (`--shards`, 2 by
//! default), the DynamoDB table `user-features-S`, the lease tables `feature-writer-S` and
//! `feature-writer-S-replay` (on demand) and enhanced fan-out consumers on the stream
//! (`--retrieval polling` registers none): all billed while they exist.

use anyhow::Result;
use clap::Parser;
use examples::scenarios::cli::{self, CommonArgs, Connection};
use examples::scenarios::clickstream_features::{Options, resources, run};

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
    let target = Connection::connect(&args.common.target).await?;
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
    if let Ok(report) = &report {
        println!("{report}");
    }
    let closed = target.close(&resources(&options)).await;
    let report = report?;
    closed?;
    Ok(report.ok())
}

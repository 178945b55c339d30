//! `bench`: Shardline's benchmarks, one table (or JSON object) per subcommand.
//!
//! ```text
//! cargo run --release -p shardline-bench --bin bench -- <subcommand> [--repeats 3] [--json] [--smoke] [--endpoint URL]
//! ```
//!
//! Subcommands: `engine-ingest`, `engine-read`, `fanout`, `kpl`, `latency`, `failover`,
//! `scaling`. Each starts `core-engine` in this process (in memory unless told otherwise) or,
//! with `--endpoint`, loads any Kinesis-compatible server instead. Rows show medians over
//! `--repeats` runs, with the process's peak RSS. `--smoke` runs a seconds-long version (the
//! test suite runs every one). BENCHMARKS.md at the repository root holds the latest figures.

mod cbor;
mod common;
mod engine;
mod fanout;
mod fleet;
mod latency;
mod producer;

use anyhow::Result;
use clap::{Parser, Subcommand};

use common::Common;

#[derive(Debug, Parser)]
#[command(version, about = "Shardline benchmarks: one table per subcommand")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// PutRecords throughput: storage x record size x connections.
    EngineIngest {
        #[command(flatten)]
        args: engine::EngineArgs,
        #[command(flatten)]
        common: Common,
    },
    /// GetRecords throughput draining a backlog: storage x record size x connections.
    EngineRead {
        #[command(flatten)]
        args: engine::EngineArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Records/s one enhanced fan-out subscription receives.
    Fanout {
        #[command(flatten)]
        args: fanout::FanoutArgs,
        #[command(flatten)]
        common: Common,
    },
    /// kpl producer throughput, aggregation on and off.
    Kpl {
        #[command(flatten)]
        args: producer::KplArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Put-to-process latency of a kcl worker, polling and fan-out, at a fixed rate.
    Latency {
        #[command(flatten)]
        args: latency::LatencyArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Time for a killed kcl worker's shards to resume on another worker.
    Failover {
        #[command(flatten)]
        args: fleet::FailoverArgs,
        #[command(flatten)]
        common: Common,
    },
    /// kcl workers draining a backlog: shards 1..64 x workers 1..8.
    Scaling {
        #[command(flatten)]
        args: fleet::ScalingArgs,
        #[command(flatten)]
        common: Common,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match &cli.command {
            Command::EngineIngest { args, common } => engine::ingest(args, common).await,
            Command::EngineRead { args, common } => engine::read_backlog(args, common).await,
            Command::Fanout { args, common } => fanout::fanout(args, common).await,
            Command::Kpl { args, common } => producer::kpl(args, common).await,
            Command::Latency { args, common } => latency::latency(args, common).await,
            Command::Failover { args, common } => fleet::failover(args, common).await,
            Command::Scaling { args, common } => fleet::scaling(args, common).await,
        }
    })
}

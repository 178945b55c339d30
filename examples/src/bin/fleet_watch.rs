//! `fleet_watch`: the lease table of a `kcl` application, every second, for the worker-fleet
//! walkthrough (`docs/fleet.md`).
//!
//! It scans the lease table (named after the application) and prints which worker owns which
//! shard (lines start with the time of day in UTC), the lease counters (the owners' heartbeats) and the checkpoints, plus a line for every
//! lease that changed owner since the previous scan:
//!
//! ```text
//! 06:17:21.004 moved shardId-000000000001: w2 -> w3
//! ```
//!
//! ```text
//! cargo run -p examples --bin fleet_watch -- --endpoint http://127.0.0.1:4567
//! ```
//!
//! On a terminal the table is redrawn in place; piped, each scan is printed in full (`--moves`
//! prints only the changes of owner).

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use examples::fleet;
use kcl::leases::LeaseTable;

/// Prints a kcl application's lease table: owner, counter and checkpoint of every shard.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Endpoint of both Kinesis and DynamoDB (an engine, e.g. http://127.0.0.1:4567),
    /// overriding the AWS configuration (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_KINESIS,
    /// AWS_ENDPOINT_URL_DYNAMODB, profiles). With neither, the local engine at
    /// http://127.0.0.1:4567 unless a region is configured, then AWS.
    #[arg(long)]
    endpoint: Option<String>,
    /// Application name, i.e. the lease table's name.
    #[arg(long, default_value = fleet::DEFAULT_APP)]
    app: String,
    /// Scan period.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Print only changes of owner, not the table.
    #[arg(long)]
    moves: bool,
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
    let (_, ddb) = fleet::connect(args.endpoint.as_deref()).await?;
    let table = LeaseTable::new(ddb, &args.app);
    let terminal = std::io::stdout().is_terminal() && !args.moves;
    let mut owners: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut recent: VecDeque<String> = VecDeque::new();
    let mut waiting_said = false;
    let mut tick = tokio::time::interval(Duration::from_millis(args.interval_ms.max(100)));
    let signal = fleet::shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => return Ok(()),
            _ = tick.tick() => {}
        }
        let stamp = fleet::clock();
        let leases = match table.list().await {
            Ok(leases) => leases,
            Err(e) => {
                // The first worker creates the table; until then there is nothing to show.
                if !waiting_said {
                    println!("{stamp} no lease table {} yet ({e})", args.app);
                    waiting_said = true;
                }
                continue;
            }
        };
        let mut moves = Vec::new();
        for lease in &leases {
            match owners.insert(lease.key.clone(), lease.owner.clone()) {
                Some(before) if before != lease.owner => moves.push(format!(
                    "{stamp} moved {}: {} -> {}",
                    lease.key,
                    before.as_deref().unwrap_or("-"),
                    lease.owner.as_deref().unwrap_or("-")
                )),
                None => moves.push(format!(
                    "{stamp} new lease {} owner {}",
                    lease.key,
                    lease.owner.as_deref().unwrap_or("-")
                )),
                _ => {}
            }
        }
        let mut out = String::new();
        if terminal {
            // Home and clear, so the table stays in place; the last moves are redrawn below
            // it, or they would vanish with the next scan.
            out.push_str("\x1b[H\x1b[2J");
            recent.extend(moves.drain(..));
            while recent.len() > 10 {
                recent.pop_front();
            }
            moves = recent.iter().cloned().collect();
        }
        if !args.moves {
            out.push_str(&format!(
                "{stamp} lease table {} ({} leases)\n",
                args.app,
                leases.len()
            ));
            out.push_str(&fleet::lease_table_view(&leases));
        }
        for line in &moves {
            out.push_str(line);
            out.push('\n');
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes())?;
        stdout.flush()?;
    }
}

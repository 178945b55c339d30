//! Fan-out: one log stream read by two independent applications.
//!
//! # The situation
//! Every host ships its service's log lines to one Kinesis stream. Several teams want them: the
//! platform team archives everything (for audits and replays), the on-call team watches error
//! rates. Each team runs its own consumer application, deploys it on its own schedule, and must
//! neither slow the other down nor miss lines because the other already read them.
//!
//! # Data flow
//! ```text
//!                                        +--kcl app `log-archiver`--> archive (lines per service)
//! hosts --kpl, key = service/host--> stream `logs`
//!                                        +--kcl app `error-monitor`--> error rate per service
//! ```
//! The two applications have different names, so `kcl` gives each its own lease table (named
//! after the application) and therefore its own leases and checkpoints on the same shards.
//! Kinesis keeps records for the retention period whoever reads them, so a reader does not
//! consume records away from another. Each application reads through enhanced fan-out by
//! default: `kcl` registers a stream consumer named after the application, so each gets its own
//! push pipe per shard (2 MiB/s each on AWS) instead of sharing the shard's 5 GetRecords calls
//! per second, and the slow monitor's backlog does not slow the archiver. `--retrieval polling`
//! runs the same scenario with GetRecords.
//!
//! Here the archiver runs from the start; the error monitor is deployed only once the archiver
//! has caught up, starts from TRIM_HORIZON with the whole stream as backlog, and is slow (a
//! delay per line, like a rate-limited metrics API). Both must end up with every line.
//!
//! # Guarantees it relies on
//! - **Independent checkpoints per application** (one lease table each): the report checks both
//!   tables hold a checkpoint for every shard.
//! - **At-least-once delivery**: the archive is append-only and may hold a line twice after a
//!   crash (readers dedupe by source and `seq`); the monitor counts a line only if its `seq` is
//!   above the last one counted for its source.
//! - **Per-key order** (key = `service/host`): what makes the monitor's `seq` guard sound.
//!
//! # Running it
//! ```text
//! cargo run -p examples --bin log_fanout -- --duration 10 --rate 500
//! cargo run -p examples --bin log_fanout -- --endpoint http://127.0.0.1:4567
//! AWS_PROFILE=dev AWS_REGION=eu-west-1 cargo run -p examples --bin log_fanout -- --aws
//! ```
//! The binary runs on an in-process engine unless `--endpoint` or the AWS configuration names
//! another place (see [`crate::scenarios::cli`]).

pub mod apps;
pub mod model;
mod report;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result};
use kcl::leases::{Checkpoint, LeaseTable};
use tokio::time::Instant;

use super::app::Worker;
use super::resources::Resources;
use super::{Clients, kcl_config, produce, wait_until};
use crate::verdict::SharedActivity;
use apps::{Archive, Archiver, ErrorMonitor, Rate, Rates, Shared};
use model::{LogLine, Shippers};
pub use report::{AppReport, Report};

/// How to run the scenario.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long hosts ship lines.
    pub duration: Duration,
    /// Lines per second, over all hosts.
    pub rate: u64,
    /// Shards of the stream.
    pub shards: i32,
    /// Seed of the simulation.
    pub seed: u64,
    /// Time the error monitor takes per line.
    pub monitor_delay_per_line: Duration,
    /// Longest wait for an application to catch up.
    pub catch_up_timeout: Duration,
    /// Appended to the stream and application names.
    pub suffix: String,
    /// How the consumer applications read their shards (default: enhanced fan-out).
    pub retrieval: kcl::Retrieval,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retrieval: kcl::Retrieval::fan_out(),
            duration: Duration::from_secs(10),
            rate: 200,
            shards: 2,
            seed: 5,
            monitor_delay_per_line: Duration::from_millis(2),
            catch_up_timeout: Duration::from_secs(60),
            suffix: String::new(),
        }
    }
}

/// The names of what a run creates, each with [`Options::suffix`] appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The log stream.
    pub stream: String,
    /// The archiver application, and its lease table.
    pub archiver_app: String,
    /// The error monitor application, and its lease table.
    pub monitor_app: String,
}

impl Names {
    /// The names for `options`.
    pub fn new(options: &Options) -> Self {
        let suffix = &options.suffix;
        Self {
            stream: format!("logs{suffix}"),
            archiver_app: format!("log-archiver{suffix}"),
            monitor_app: format!("error-monitor{suffix}"),
        }
    }
}

/// What a run with `options` creates: the stream and the two lease tables.
pub fn resources(options: &Options) -> Resources {
    let names = Names::new(options);
    Resources {
        streams: vec![names.stream],
        tables: vec![names.archiver_app, names.monitor_app],
    }
}

/// Runs the scenario against `clients` (see [`resources`] for what it creates).
pub async fn run(clients: &Clients, options: &Options) -> Result<Report> {
    let started = Instant::now();
    let Names {
        stream,
        archiver_app,
        monitor_app,
    } = Names::new(options);
    crate::clients::create_stream(&clients.kinesis, &stream, options.shards).await?;

    let archive = Shared::<Archive>::default();
    let shared = archive.clone();
    let archiver_activity = SharedActivity::default();
    let activity = archiver_activity.clone();
    let archiver = Worker::start(
        clients,
        &archiver_app,
        &stream,
        "archiver-1",
        move |shard: &str| Archiver(shared.clone(), activity.processor(shard)),
        kcl_config(&options.retrieval),
    )?;

    let producer = produce::producer(&clients.kinesis, &stream).await?;
    let mut shippers = Shippers::new(options.seed);
    let produced = produce::paced(&producer, options.rate, options.duration, || {
        let line = shippers.next_line();
        let data = serde_json::to_vec(&line).unwrap_or_default();
        (kpl::Record::new(line.source.clone(), data), line)
    })
    .await?;
    // `paced` settled every put, each failure counted once there: nothing is left unsent.
    producer.shutdown(Duration::from_secs(5)).await;
    let expected: HashSet<(String, u64)> = produced
        .acked
        .iter()
        .map(|l| (l.source.clone(), l.seq))
        .collect();

    let archiver_done = wait_until(options.catch_up_timeout, || async {
        let archived = archived_lines(&archive.lock());
        Ok(expected.iter().all(|key| archived.contains(key)))
    })
    .await?;
    let archiver_done_at = started.elapsed();

    // Deployed late, from TRIM_HORIZON: the whole stream is its backlog.
    let rates = Shared::<Rates>::default();
    let shared = rates.clone();
    let delay_per_line = options.monitor_delay_per_line;
    let monitor_started_at = started.elapsed();
    let monitor_activity = SharedActivity::default();
    let activity = monitor_activity.clone();
    let monitor = Worker::start(
        clients,
        &monitor_app,
        &stream,
        "monitor-1",
        move |shard: &str| ErrorMonitor {
            rates: shared.clone(),
            delay_per_line,
            activity: activity.processor(shard),
        },
        kcl_config(&options.retrieval),
    )?;
    let last = last_seq(&produced.acked);
    let monitor_done = wait_until(options.catch_up_timeout, || async {
        let rates = rates.lock();
        Ok(last
            .iter()
            .all(|(source, seq)| rates.last_seq.get(source).is_some_and(|s| s >= seq)))
    })
    .await?;
    let monitor_done_at = started.elapsed();
    archiver.stop().await?;
    monitor.stop().await?;

    let archiver_checkpoints = checkpointed(clients, &archiver_app).await?;
    let monitor_checkpoints = checkpointed(clients, &monitor_app).await?;
    let expected_rates = count_rates(&produced.acked);
    let archive = archive.lock();
    let archived = archived_lines(&archive);
    let rates = rates.lock();
    let archiver = AppReport {
        name: archiver_app.clone(),
        caught_up: archiver_done,
        started_at: Duration::ZERO,
        caught_up_at: archiver_done_at,
        deliveries: archive.lines.values().map(|v| v.len() as u64).sum(),
        distinct: archived.len() as u64,
        lost: expected.iter().filter(|k| !archived.contains(*k)).count() as u64,
        checkpointed_shards: archiver_checkpoints,
        overlapping_shards: archiver_activity.overlapping_shards(),
    };
    let counted: u64 = rates.services.values().map(|r| r.lines).sum();
    let monitor = AppReport {
        name: monitor_app.clone(),
        caught_up: monitor_done,
        started_at: monitor_started_at,
        caught_up_at: monitor_done_at,
        deliveries: counted + rates.redelivered,
        distinct: counted,
        lost: (expected.len() as u64).saturating_sub(counted),
        checkpointed_shards: monitor_checkpoints,
        overlapping_shards: monitor_activity.overlapping_shards(),
    };
    let mut services: Vec<(String, Rate, Rate)> = expected_rates
        .into_iter()
        .map(|(service, want)| {
            let got = rates.services.get(&service).copied().unwrap_or_default();
            (service, want, got)
        })
        .collect();
    services.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Report {
        lines: produced.acked.len() as u64,
        producer_failures: produced.failures,
        shards: options.shards.max(1) as usize,
        archiver,
        monitor,
        services,
        malformed: archive.malformed + rates.malformed,
    })
}

/// The distinct (source, seq) in the archive.
fn archived_lines(archive: &Archive) -> HashSet<(String, u64)> {
    archive.lines.values().flatten().cloned().collect()
}

/// The last acknowledged `seq` per source.
fn last_seq(lines: &[LogLine]) -> HashMap<String, u64> {
    let mut last = HashMap::new();
    for line in lines {
        let entry = last.entry(line.source.clone()).or_insert(line.seq);
        *entry = (*entry).max(line.seq);
    }
    last
}

/// Lines and errors per service among `lines`, counting each (source, seq) once.
fn count_rates(lines: &[LogLine]) -> HashMap<String, Rate> {
    let mut seen = HashSet::new();
    let mut rates: HashMap<String, Rate> = HashMap::new();
    for line in lines.iter().filter(|l| seen.insert((&l.source, l.seq))) {
        let rate = rates.entry(line.service.clone()).or_default();
        rate.lines += 1;
        rate.errors += u64::from(line.level == model::Level::Error);
    }
    rates
}

/// Shards with a checkpoint (a position or SHARD_END) in `app`'s lease table.
async fn checkpointed(clients: &Clients, app: &str) -> Result<usize> {
    let leases = LeaseTable::new(clients.dynamodb.clone(), app)
        .list()
        .await
        .with_context(|| format!("listing the leases of {app}"))?;
    Ok(leases
        .iter()
        .filter(|l| matches!(l.checkpoint, Checkpoint::Sequence(_) | Checkpoint::ShardEnd))
        .count())
}

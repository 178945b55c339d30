//! Shardline quickstart: the whole system in one process, with something going wrong.
//!
//! Starts an embedded engine, creates a stream, produces a clickstream with `kpl`, and consumes it
//! with a fleet of `kcl` workers computing per-user features. A third of the way in it splits a
//! shard; two thirds in it crashes a worker. At the end it checks that records were acknowledged,
//! none failed, every acknowledged record was processed, in order per user, and no shard was
//! processed by two workers at the same time; and it reports how many were processed twice.
//!
//! ```text
//! cargo run --release -p examples --bin quickstart -- --help
//! ```
//!
//! # Elsewhere than in its own process
//! With nothing configured it starts the engine in its own process (`--embedded` forces that
//! whatever is configured). `--endpoint URL` runs it against an engine there (both services);
//! otherwise the AWS configuration decides, the standard way (`aws-config`): `AWS_ENDPOINT_URL`,
//! the per-service `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_PROFILE` and
//! `~/.aws/config` (`region`, `endpoint_url`). `--aws` runs it against AWS itself in the
//! configured region, with the SDK's usual credentials; a region alone is not enough, so a
//! default region in `~/.aws/config` does not turn the demo into billed resources. The first
//! line says where it runs.
//!
//! ```text
//! AWS_ENDPOINT_URL=http://127.0.0.1:4567 cargo run --release -p examples --bin quickstart
//! AWS_PROFILE=dev AWS_REGION=eu-west-1 cargo run --release -p examples --bin quickstart -- --aws --rate 1000
//! ```
//!
//! There the stream is `clickstream-S` and the lease table `user-features-S`, with `S` from
//! `--suffix` (default: the unix time in seconds) so they collide with nothing of yours, and
//! both are deleted at the end (with the fan-out consumer the workers registered), unless
//! `--keep`. Against AWS they are billed while they exist (4 shards by default, an on-demand
//! table). `--data-dir` configures the engine the quickstart starts, so it is refused anywhere
//! else. The split and the crash work the same against AWS (the split takes AWS tens of
//! seconds; the crashed worker's shards move after the 3 s failover time the quickstart sets).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use examples::clickstream::Generator;
use examples::clients::{self, Aws};
use examples::features::{FeatureFactory, Report, Shared};
use examples::metrics::{CloudWatchFrom, Exporters};
use examples::retrieval::RetrievalArg;
use examples::scenarios::cli::{self, TargetArgs};
use examples::scenarios::resources::Resources;
use kcl::{Config, InitialPosition, Scheduler};

const STREAM: &str = "clickstream";
const APP: &str = "user-features";

/// Shardline quickstart: an embedded Kinesis engine, a KPL producer writing a clickstream, and a
/// fleet of KCL workers computing per-user features, while a shard is split and a worker crashes.
/// With --endpoint or a configured endpoint (AWS_ENDPOINT_URL, a profile's endpoint_url, ...) it
/// runs there instead of on an engine of its own, and with --aws on AWS itself.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// How long to produce, in seconds. The split happens at 1/3, the crash at 2/3.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Click events produced per second.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Shards the stream starts with.
    #[arg(long, default_value_t = 4)]
    shards: i32,
    /// Consumer workers (each one a kcl Scheduler, as a separate host would run).
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Distinct users (partition keys).
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Keep the engine's data in this directory (durable, fsynced); in memory otherwise. Only
    /// for the engine the quickstart starts itself.
    #[arg(long, conflicts_with = "endpoint")]
    data_dir: Option<PathBuf>,
    /// How the workers read their shards.
    #[arg(long, value_enum, default_value_t = RetrievalArg::FanOut)]
    retrieval: RetrievalArg,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    metrics: examples::metrics::MetricsArgs,
}

/// The names of the stream and the application (and its lease table), with the run's suffix.
#[derive(Debug)]
struct Names {
    stream: String,
    app: String,
}

/// One consumer worker.
struct Worker {
    id: String,
    scheduler: Arc<Scheduler<FeatureFactory>>,
    task: tokio::task::JoinHandle<kcl::Result<()>>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(report) if report.ok() => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::FAILURE,
        Err(e) => {
            // One line with its causes, not a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<Report> {
    if args.duration == 0 || args.rate == 0 || args.shards < 1 || args.workers < 1 {
        bail!("--duration, --rate, --shards and --workers must be at least 1");
    }
    let started = Instant::now();
    let (aws, engine) = match args.target.configured().await? {
        Some(aws) => {
            if let Some(dir) = &args.data_dir {
                bail!(
                    "--data-dir {} is for the engine the quickstart starts itself, but it runs on {} here: drop --data-dir, or pass --embedded",
                    dir.display(),
                    aws.target
                );
            }
            cli::check(&aws).await?;
            (aws, None)
        }
        None => {
            let engine = start_engine(args.data_dir.as_deref()).await?;
            (Aws::embedded(&engine.endpoint_url()).await, Some(engine))
        }
    };
    let suffix = args.target.suffix(&aws.target)?;
    let names = Names {
        stream: format!("{STREAM}{suffix}"),
        app: format!("{APP}{suffix}"),
    };
    // Before the producer and the workers: they register their metrics when they start.
    let exporters = Exporters::start(&args.metrics, CloudWatchFrom::Aws(&aws)).await?;
    let engine_kind = match (&engine, &args.data_dir) {
        (None, _) => String::new(),
        (Some(_), Some(dir)) => format!(", durable in {}", dir.display()),
        (Some(_), None) => ", in memory".into(),
    };
    println!(
        "{}{engine_kind}{}; workers read by {}",
        cli::describe(&aws.target, &suffix),
        if engine.is_some() {
            ", AWS throughput limits on"
        } else {
            ""
        },
        args.retrieval
    );

    let shared = Shared::default();
    let outcome = demo(&args, &aws, &names, &shared, started).await;
    exporters.shutdown().await;
    let closed = match engine {
        Some(engine) => {
            engine.shutdown().await;
            Ok(())
        }
        None => {
            let created = Resources {
                streams: vec![names.stream.clone()],
                tables: vec![names.app.clone()],
            };
            created
                .clean_up(&aws.kinesis, &aws.dynamodb, args.target.keep)
                .await
        }
    };
    outcome?;
    closed?;

    let report = shared.report();
    print_summary(&report, &shared, started.elapsed());
    Ok(report)
}

/// Starts the engine in this process: durable in `data_dir` (which must be new or empty),
/// else in memory. Throughput limits stay on, as in AWS: the producer and consumers must live
/// with them.
async fn start_engine(data_dir: Option<&Path>) -> Result<core_engine::EngineHandle> {
    let mut builder = core_engine::Engine::builder();
    if let Some(dir) = data_dir {
        // A previous run's stream would be there already, with events the checks do not know.
        let used = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if used {
            bail!(
                "{} is not empty (a previous run?); give --data-dir a new or empty directory",
                dir.display()
            );
        }
        builder = builder.data_dir(dir);
    }
    cli::start_engine(builder).await
}

/// The run itself, from creating the stream to the workers' shutdown; what happened is in
/// `shared`.
async fn demo(
    args: &Args,
    aws: &Aws,
    names: &Names,
    shared: &Shared,
    started: Instant,
) -> Result<()> {
    let (kinesis, ddb) = (&aws.kinesis, &aws.dynamodb);
    clients::create_stream(kinesis, &names.stream, args.shards).await?;
    println!(
        "stream {}: {} shards; producing {} events/s from {} users for {}s; {} workers",
        names.stream, args.shards, args.rate, args.users, args.duration, args.workers
    );

    let mut workers: Vec<Worker> = (1..=args.workers)
        .map(|n| {
            start_worker(
                kinesis,
                ddb,
                names,
                &format!("worker-{n}"),
                shared,
                args.retrieval,
            )
        })
        .collect::<Result<_>>()?;

    let producer_config = kpl::Config {
        // Per-user order is checked at the end, so no two PutRecords calls may race for a shard
        // (the KPL's default lets them, and a retry may also overtake later records).
        preserve_order: true,
        ..kpl::Config::default()
    };
    let producer = kpl::Producer::new(kinesis.clone(), &names.stream, producer_config)
        .await
        .context("starting the producer")?;
    let stop = Arc::new(AtomicBool::new(false));
    let pending = Arc::new(AtomicU64::new(0));
    let producing = tokio::spawn(produce(
        producer.clone(),
        args.rate,
        args.users,
        shared.clone(),
        stop.clone(),
        pending.clone(),
    ));

    let display = Display::new();
    let leases = kcl::leases::LeaseTable::new(ddb.clone(), &names.app);
    let run_for = Duration::from_secs(args.duration);
    let (mut split_done, mut crash_done) = (false, false);
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    while started.elapsed() < run_for {
        ticker.tick().await;
        let elapsed = started.elapsed();
        if !split_done && elapsed >= run_for / 3 {
            split_done = true;
            // Under load: the producer learns of the split from where its puts land and
            // re-routes, keeping each user's order (aggregates that would straddle the new
            // children are re-split and re-sent ahead of newer records).
            display.event(&split_a_shard(kinesis, &names.stream).await?);
        }
        if !crash_done && elapsed >= run_for * 2 / 3 && workers.len() > 1 {
            crash_done = true;
            // Abort the worker's task: its leases are left to expire, as if its host died.
            let victim = workers.remove(0);
            victim.task.abort();
            display.crashed(&victim.id);
            display.event(&format!(
                "crashed {} (its shards move to the others after the failover time)",
                victim.id
            ));
        }
        last = display.status(shared, &leases, last).await;
    }

    // Stop producing and settle every put.
    stop.store(true, Ordering::SeqCst);
    producing.await.context("producer task")?;
    settle(producer).await;
    while pending.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    display.event("producer stopped; waiting for the consumers to catch up (60s at most)");

    let deadline = Instant::now() + Duration::from_secs(60);
    while !shared.caught_up() && Instant::now() < deadline {
        ticker.tick().await;
        last = display.status(shared, &leases, last).await;
    }
    let caught_up = shared.caught_up();
    display.event(if caught_up {
        "consumers caught up; shutting down"
    } else {
        "consumers did not catch up in time; shutting down"
    });

    for worker in workers {
        worker.scheduler.shutdown();
        match tokio::time::timeout(Duration::from_secs(15), worker.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("{} stopped with an error: {e}", worker.id),
            Ok(Err(e)) => eprintln!("{} task failed: {e}", worker.id),
            Err(_) => eprintln!("{} did not stop within 15s", worker.id),
        }
    }
    Ok(())
}

fn start_worker(
    kinesis: &aws_sdk_kinesis::Client,
    ddb: &aws_sdk_dynamodb::Client,
    names: &Names,
    id: &str,
    shared: &Shared,
    retrieval: RetrievalArg,
) -> Result<Worker> {
    let config = Config {
        retrieval: retrieval.retrieval(),
        // Shorter than the 10s default so the crash is visible within a short demo.
        failover_time: Duration::from_secs(3),
        shard_sync_interval: Duration::from_secs(1),
        // When polling: 4 reads/s per shard stays under Kinesis' 5 GetRecords/s limit.
        idle_time_between_reads: Duration::from_millis(250),
        initial_position: InitialPosition::TrimHorizon,
        shutdown_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let scheduler = Arc::new(
        Scheduler::new(
            kinesis.clone(),
            ddb.clone(),
            &names.app,
            &names.stream,
            id,
            FeatureFactory(shared.clone()),
            config,
        )
        .with_context(|| format!("configuring {id}"))?,
    );
    let runner = scheduler.clone();
    let task = tokio::spawn(async move { runner.run().await });
    Ok(Worker {
        id: id.to_owned(),
        scheduler,
        task,
    })
}

/// Delivers everything `producer` holds and stops it. What it could not send is not counted
/// here: each of those puts' futures fails too, and `produce` counts it there, once.
async fn settle(producer: kpl::Producer) {
    producer.flush_all(Duration::from_secs(30)).await;
    producer.shutdown(Duration::from_secs(5)).await;
}

/// Puts `rate` events per second until `stop`, recording each acknowledgement in `shared`.
async fn produce(
    producer: kpl::Producer,
    rate: u64,
    users: usize,
    shared: Shared,
    stop: Arc<AtomicBool>,
    pending: Arc<AtomicU64>,
) {
    let mut generator = Generator::new(users, 42);
    let started = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::SeqCst) {
        // Catch up to the target count for the time elapsed (10ms steps keep it smooth).
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due && !stop.load(Ordering::SeqCst) {
            let event = generator.next_event();
            sent += 1;
            let record = kpl::Record::new(event.user.clone(), event.to_bytes());
            pending.fetch_add(1, Ordering::SeqCst);
            let (shared, pending) = (shared.clone(), pending.clone());
            match producer.put(record).await {
                Ok(delivery) => {
                    tokio::spawn(async move {
                        match delivery.await {
                            Ok(_) => shared.acked(event.user, event.seq),
                            Err(_) => shared.lock().producer_failures += 1,
                        }
                        pending.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(_) => {
                    // Refused at once: no future, so this is the only place it is counted.
                    shared.lock().producer_failures += 1;
                    pending.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Splits the open shard of `stream` with the most hash keys in half.
async fn split_a_shard(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> Result<String> {
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .context("listing shards")?
        .shards
        .unwrap_or_default();
    let widest = shards
        .iter()
        .filter(|s| {
            s.sequence_number_range
                .as_ref()
                .is_none_or(|r| r.ending_sequence_number.is_none())
        })
        .filter_map(|s| {
            let range = s.hash_key_range.as_ref()?;
            let start: u128 = range.starting_hash_key.parse().ok()?;
            let end: u128 = range.ending_hash_key.parse().ok()?;
            Some((end - start, start, s.shard_id.clone()))
        })
        .max()
        .context("no open shard to split")?;
    let (width, start, shard) = widest;
    kinesis
        .split_shard()
        .stream_name(stream)
        .shard_to_split(&shard)
        .new_starting_hash_key((start + width / 2 + 1).to_string())
        .send()
        .await
        .with_context(|| format!("splitting {shard}"))?;
    clients::wait_active(kinesis, stream).await?;
    Ok(format!("split {shard} in two while producing"))
}

/// Live progress: a refreshed line on a terminal, one plain line per second otherwise.
struct Display {
    terminal: bool,
    started: Instant,
    /// Crashed workers: they show in the lease table until their leases expire.
    crashed: std::sync::Mutex<Vec<String>>,
}

impl Display {
    fn new() -> Self {
        Self {
            terminal: std::io::stdout().is_terminal(),
            started: Instant::now(),
            crashed: std::sync::Mutex::default(),
        }
    }

    /// Prints a one-off event on its own line.
    fn event(&self, what: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        if self.terminal {
            println!("\r\x1b[2K[{secs:5.1}s] {what}");
        } else {
            println!("[{secs:5.1}s] {what}");
        }
    }

    /// Marks `id` as crashed in the lease display.
    fn crashed(&self, id: &str) {
        if let Ok(mut crashed) = self.crashed.lock() {
            crashed.push(id.to_owned());
        }
    }

    /// Prints the status; `last` is (when, acked, processed) of the previous status.
    async fn status(
        &self,
        shared: &Shared,
        leases: &kcl::leases::LeaseTable,
        last: (Instant, u64, u64),
    ) -> (Instant, u64, u64) {
        let now = Instant::now();
        let (acked, distinct, processed) = shared.progress();
        let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
        let produced_rate = (acked - last.1) as f64 / secs;
        let consumed_rate = (processed - last.2) as f64 / secs;
        let crashed = self.crashed.lock().map(|c| c.clone()).unwrap_or_default();
        let owners = owners(leases, &crashed).await;
        let line = format!(
            "[{:5.1}s] produced {acked} ({produced_rate:.0}/s)  consumed {processed} ({consumed_rate:.0}/s)  lag {}  leases {owners}",
            self.started.elapsed().as_secs_f64(),
            acked.saturating_sub(distinct),
        );
        if self.terminal {
            print!("\r\x1b[2K{line}");
            let _ = std::io::stdout().flush();
        } else {
            println!("{line}");
        }
        (now, acked, processed)
    }
}

/// `worker-1:[0,3] worker-2:[1]` from the lease table (shard ids shortened to their number).
async fn owners(leases: &kcl::leases::LeaseTable, crashed: &[String]) -> String {
    let Ok(list) = leases.list().await else {
        // The table is created by the first worker; until then there is nothing to show.
        return "-".into();
    };
    let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for lease in list.into_iter().filter(|l| !l.is_finished()) {
        let short = lease
            .key
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(lease.key.clone(), |n| n.to_string());
        let owner = match lease.owner {
            Some(owner) if crashed.contains(&owner) => format!("{owner}(crashed)"),
            Some(owner) => owner,
            None => "unowned".into(),
        };
        by_owner.entry(owner).or_default().push(short);
    }
    by_owner
        .into_iter()
        .map(|(owner, shards)| format!("{owner}:[{}]", shards.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_summary(report: &Report, shared: &Shared, took: Duration) {
    let verdict = |ok: bool| if ok { "ok" } else { "FAILED" };
    println!();
    println!("== summary ({:.1}s)", took.as_secs_f64());
    println!(
        "produced (acknowledged)   {:>9}   {}",
        report.acked,
        verdict(report.acked > 0)
    );
    println!(
        "producer failures         {:>9}   {}",
        report.producer_failures,
        verdict(report.producer_failures == 0)
    );
    println!(
        "processed                 {:>9}   ({} distinct)",
        report.processed, report.distinct
    );
    println!(
        "lost                      {:>9}   {}",
        report.lost,
        verdict(report.lost == 0)
    );
    println!(
        "per-user order violations {:>9}   {}",
        report.order_violations,
        verdict(report.order_violations == 0)
    );
    println!(
        "overlapping processing    {:>9}   {} ({} batches handed to a worker while another processed the shard)",
        report.overlapping_shards,
        verdict(report.overlapping_shards == 0),
        report.overlapping_batches
    );
    println!(
        "processed more than once  {:>9}   (allowed: work after a checkpoint is redone after a crash)",
        report.duplicates
    );
    if report.malformed > 0 {
        println!("malformed records         {:>9}   FAILED", report.malformed);
    }
    if report.unacked_processed > 0 {
        println!(
            "processed but not acked   {:>9}   (a put reported failed had landed)",
            report.unacked_processed
        );
    }
    {
        let state = shared.lock();
        let busiest = state.users.iter().max_by_key(|(_, f)| f.events);
        if let Some((user, f)) = busiest {
            println!(
                "features of {} users; busiest {user}: {} events, {} checkouts, last page {}",
                report.users, f.events, f.checkouts, f.last_page
            );
        }
    }
    let verdict = report.verdict();
    if verdict.ok() {
        println!("result: OK, every acknowledged record was processed, in order per user");
    } else {
        println!("result: {verdict}");
    }
}

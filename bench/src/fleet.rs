//! `failover` and `scaling`: kcl workers in this process sharing one application's leases.
//!
//! `failover`: two workers split a stream's leases; one is killed (its task aborted: no lease is
//! released, no checkpoint written) while records keep arriving; measured is the time until the
//! other worker processes a new record of each shard the killed one held.
//!
//! `scaling`: a backlog over 1..64 shards, read by 1..8 workers from TRIM_HORIZON; measured is
//! the time from starting the workers until every record is processed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use kcl::{Checkpointer, ProcessRecordsInput, ProcessorError, RecordProcessor, Scheduler};
use parking_lot::Mutex;

use crate::common::{
    Common, Storage, Table, Target, create_stream, list, median, num, peak_rss_mib, reset_peak_rss,
    stream_name, text,
};
use crate::latency::Retrieval;

/// A batch processed: when, by which worker, of which shard.
type Event = (Instant, Arc<str>, String);

/// Makes a worker's processors.
type Factory = Box<dyn Fn(&str) -> Note + Send + Sync>;

/// Who processed a batch of which shard, and when.
#[derive(Clone, Default)]
struct Log {
    events: Arc<Mutex<Vec<Event>>>,
    records: Arc<AtomicU64>,
}

struct Note {
    log: Log,
    worker: Arc<str>,
    shard: String,
    last_checkpoint: Instant,
}

impl RecordProcessor for Note {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        if input.records.is_empty() {
            return Ok(());
        }
        self.log
            .records
            .fetch_add(input.records.len() as u64, Ordering::Relaxed);
        self.log
            .events
            .lock()
            .push((Instant::now(), self.worker.clone(), self.shard.clone()));
        if self.last_checkpoint.elapsed() >= Duration::from_secs(1) {
            checkpointer.checkpoint().await?;
            self.last_checkpoint = Instant::now();
        }
        Ok(())
    }

    async fn shard_ended(&mut self, checkpointer: &mut Checkpointer) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

/// A worker of `app` running in its own task.
struct Worker {
    scheduler: Arc<Scheduler<Factory>>,
    task: tokio::task::JoinHandle<kcl::Result<()>>,
}

fn start_worker(
    target: &Target,
    app: &str,
    stream: &str,
    name: &str,
    log: &Log,
    config: kcl::Config,
) -> Result<Worker> {
    let worker: Arc<str> = name.into();
    let log = log.clone();
    let factory: Factory = Box::new(move |shard: &str| Note {
        log: log.clone(),
        worker: worker.clone(),
        shard: shard.to_owned(),
        last_checkpoint: Instant::now(),
    });
    let scheduler = Arc::new(
        Scheduler::new(
            target.kinesis(),
            target.dynamodb(),
            app,
            stream,
            name,
            factory,
            config,
        )
        .context("scheduler")?,
    );
    let task = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.run().await }
    });
    Ok(Worker { scheduler, task })
}

fn fleet_config(failover: Duration) -> kcl::Config {
    kcl::Config {
        failover_time: failover,
        ..Retrieval::Polling.config(Duration::from_millis(200))
    }
}

/// Options of `failover`.
#[derive(Debug, Clone, clap::Args)]
pub struct FailoverArgs {
    /// Shards of the stream.
    #[arg(long, default_value_t = 4)]
    pub shards: i32,
    /// kcl's `failover_time` in ms (the Java KCL's default 10,000).
    #[arg(long, default_value_t = 10_000)]
    pub failover_ms: u64,
    /// Records put per second while measuring.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
}

/// One failover: seconds until the last of the killed worker's shards resumed elsewhere.
async fn failover_once(args: &FailoverArgs, common: &Common) -> Result<(f64, usize, f64)> {
    reset_peak_rss();
    let target = Target::start(Storage::Memory, false, common.endpoint.as_deref()).await?;
    let stream = stream_name("failover");
    create_stream(&target.kinesis(), &stream, args.shards).await?;
    let failover = Duration::from_millis(args.failover_ms);
    let log = Log::default();
    let a = start_worker(
        &target,
        &stream,
        &stream,
        "worker-a",
        &log,
        fleet_config(failover),
    )?;
    let b = start_worker(
        &target,
        &stream,
        &stream,
        "worker-b",
        &log,
        fleet_config(failover),
    )?;
    let writer = tokio::spawn({
        let (kinesis, stream, rate) = (target.kinesis(), stream.clone(), args.rate.max(1));
        async move {
            let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            for i in 0u64.. {
                ticks.tick().await;
                let _ = kinesis
                    .put_record()
                    .stream_name(&stream)
                    .partition_key(format!("key-{i}"))
                    .data(Blob::new(vec![b'x'; 100]))
                    .send()
                    .await;
            }
        }
    });
    // Until both workers process records: the leases are split.
    let split_by = Instant::now() + 10 * failover + Duration::from_secs(30);
    let held_by_a = loop {
        anyhow::ensure!(
            Instant::now() < split_by,
            "the workers never split the leases"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let recent = Instant::now() - Duration::from_secs(1);
        let events = log.events.lock();
        let mut last: std::collections::BTreeMap<&str, &str> = Default::default();
        for (at, worker, shard) in events.iter().filter(|e| e.0 >= recent) {
            let _ = at;
            last.insert(shard, worker);
        }
        let a_shards: Vec<String> = last
            .iter()
            .filter(|(_, w)| **w == "worker-a")
            .map(|(s, _)| (*s).to_owned())
            .collect();
        if !a_shards.is_empty() && last.values().any(|w| *w == "worker-b") {
            break a_shards;
        }
    };
    let killed = Instant::now();
    a.task.abort();
    let _ = a.task.await;
    let resumed_by = killed + 10 * failover + Duration::from_secs(30);
    let seconds = loop {
        anyhow::ensure!(
            Instant::now() < resumed_by,
            "the killed worker's shards never resumed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let events = log.events.lock();
        let firsts: Vec<Option<Instant>> = held_by_a
            .iter()
            .map(|shard| {
                events
                    .iter()
                    .filter(|(at, worker, s)| *at > killed && &**worker == "worker-b" && s == shard)
                    .map(|(at, _, _)| *at)
                    .min()
            })
            .collect();
        if firsts.iter().all(Option::is_some) {
            break firsts
                .into_iter()
                .flatten()
                .map(|at| at.duration_since(killed).as_secs_f64())
                .fold(0.0, f64::max);
        }
    };
    writer.abort();
    b.scheduler.shutdown();
    let _ = b.task.await;
    let rss = peak_rss_mib();
    target.stop().await;
    Ok((seconds, held_by_a.len(), rss))
}

/// `failover`: one row.
pub async fn failover(args: &FailoverArgs, common: &Common) -> Result<()> {
    let mut args = args.clone();
    if common.smoke {
        args.failover_ms = 1_000;
        args.shards = 2;
    }
    let mut table = Table::new(
        format!(
            "failover: 2 kcl workers (polling, idle 200 ms) over {} shards, {} records/s; one killed; time until its shards resume on the other; medians of {}",
            args.shards,
            args.rate,
            common.repeats()
        ),
        &[
            "failover_time ms",
            "shards moved",
            "resumed after s",
            "worst run s",
            "peak RSS MiB",
        ],
    );
    table.note(crate::common::machine());
    let mut runs = Vec::new();
    for _ in 0..common.repeats() {
        runs.push(failover_once(&args, common).await?);
    }
    table.row(
        vec![
            text(args.failover_ms.to_string()),
            num(median(runs.iter().map(|r| r.1 as f64).collect()), 0),
            num(median(runs.iter().map(|r| r.0).collect()), 2),
            num(runs.iter().map(|r| r.0).fold(0.0, f64::max), 2),
            num(median(runs.iter().map(|r| r.2).collect()), 0),
        ],
        common.json,
    );
    table.finish(common.json);
    Ok(())
}

/// Options of `scaling`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScalingArgs {
    /// Shard counts, comma-separated.
    #[arg(long, default_value = "1,4,16,64", value_parser = list::<i32>)]
    pub shards: std::vec::Vec<i32>,
    /// Worker counts, comma-separated.
    #[arg(long, default_value = "1,2,4,8", value_parser = list::<usize>)]
    pub workers: std::vec::Vec<usize>,
    /// Records of 100 B per shard in the backlog.
    #[arg(long, default_value_t = 5_000)]
    pub records_per_shard: usize,
    /// kcl's `failover_time` in ms (it also sets how often leases are taken).
    #[arg(long, default_value_t = 10_000)]
    pub failover_ms: u64,
}

/// One cell: (seconds to drain, workers that processed something, peak RSS).
async fn scale_once(
    args: &ScalingArgs,
    common: &Common,
    shards: i32,
    workers: usize,
) -> Result<(f64, usize, f64)> {
    reset_peak_rss();
    let target = Target::start(Storage::Memory, false, common.endpoint.as_deref()).await?;
    let stream = stream_name("scaling");
    let kinesis = target.kinesis();
    create_stream(&kinesis, &stream, shards).await?;
    let total = args.records_per_shard * shards as usize;
    let mut written = 0;
    while written < total {
        let n = 500.min(total - written);
        let entries = (written..written + n)
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("key-{i}"))
                    .data(Blob::new(vec![b'x'; 100]))
                    .build()
                    .expect("data and key are set")
            })
            .collect();
        let out = kinesis
            .put_records()
            .stream_name(&stream)
            .set_records(Some(entries))
            .send()
            .await
            .context("PutRecords")?;
        anyhow::ensure!(
            out.failed_record_count.unwrap_or(0) == 0,
            "the backlog is incomplete"
        );
        written += n;
    }
    let log = Log::default();
    let failover = Duration::from_millis(args.failover_ms);
    let started = Instant::now();
    let fleet = (0..workers)
        .map(|i| {
            let name = format!("worker-{i}");
            start_worker(
                &target,
                &stream,
                &stream,
                &name,
                &log,
                fleet_config(failover),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let deadline = started + Duration::from_secs(600);
    while log.records.load(Ordering::Relaxed) < total as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the backlog was not read in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let active = {
        let events = log.events.lock();
        let mut names: Vec<&str> = events.iter().map(|e| &*e.1).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    for worker in &fleet {
        worker.scheduler.shutdown();
    }
    for worker in fleet {
        let _ = worker.task.await;
    }
    let rss = peak_rss_mib();
    target.stop().await;
    Ok((seconds, active, rss))
}

/// `scaling`: one row per shard count and worker count.
pub async fn scaling(args: &ScalingArgs, common: &Common) -> Result<()> {
    let mut args = args.clone();
    if common.smoke {
        args.shards = vec![1, 2];
        args.workers = vec![1, 2];
        args.records_per_shard = 200;
        args.failover_ms = 1_000;
    }
    let mut table = Table::new(
        format!(
            "scaling: kcl workers (polling) reading a backlog of {} x 100 B records per shard from TRIM_HORIZON, AWS limits off; medians of {}",
            args.records_per_shard,
            common.repeats()
        ),
        &[
            "shards",
            "workers",
            "drain s",
            "records/s",
            "workers used",
            "peak RSS MiB",
        ],
    );
    table.note(format!(
        "{}; drain time counts from starting the workers (lease table, lease taking, reading)",
        crate::common::machine()
    ));
    for &shards in &args.shards {
        for &workers in &args.workers {
            let mut runs = Vec::new();
            for _ in 0..common.repeats() {
                runs.push(scale_once(&args, common, shards, workers).await?);
            }
            let total = (args.records_per_shard * shards as usize) as f64;
            table.row(
                vec![
                    text(shards.to_string()),
                    num(workers as f64, 0),
                    num(median(runs.iter().map(|r| r.0).collect()), 2),
                    num(median(runs.iter().map(|r| total / r.0).collect()), 0),
                    num(median(runs.iter().map(|r| r.1 as f64).collect()), 0),
                    num(median(runs.iter().map(|r| r.2).collect()), 0),
                ],
                common.json,
            );
        }
    }
    table.finish(common.json);
    Ok(())
}

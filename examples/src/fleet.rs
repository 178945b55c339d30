//! The worker-fleet example: `kcl` workers as separate OS processes against a standalone engine.
//!
//! The binaries `fleet_worker`, `fleet_producer` and `fleet_watch` (and the test
//! `tests/fleet.rs`) share what is here:
//!
//! - [`WorkerStats`], [`CountingFactory`] and [`CountingProcessor`]: a record processor that
//!   counts records per shard, checkpoints every batch, and keeps the set of shards its worker
//!   holds (a processor lives exactly as long as its worker runs the shard's lease); with a
//!   [`ProcessedLog`], every batch is also logged before its checkpoint, for the chaos soak.
//! - [`StatusLine`]: the one-line status a worker prints, and its parser.
//! - [`Load`] and [`produce`]: a steady `kpl` load.
//! - [`ensure_stream`], [`wait_for_stream`] and [`shutdown_signal`]: plumbing.
//! - [`lease_table_view`]: the lease table as `fleet_watch` prints it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kcl::leases::{Checkpoint, Lease};
use kcl::{
    Checkpointer, ProcessRecordsInput, ProcessorError, RecordProcessor, RecordProcessorFactory,
};
use tokio::sync::watch;

use crate::soak::log::{BatchLine, LoggedRecord, ProcessedLog};

/// Default stream name of the fleet example.
pub const DEFAULT_STREAM: &str = "fleet";
/// Default application name (and so lease table name) of the fleet example.
pub const DEFAULT_APP: &str = "fleet-app";

/// Counters of one worker process.
#[derive(Debug, Default)]
struct Counters {
    /// Records processed per shard, since this process started.
    processed: BTreeMap<String, u64>,
    /// Checkpoints written.
    checkpoints: u64,
}

/// What one worker holds and has done, shared by its processors and its status printer.
#[derive(Clone, Debug)]
pub struct WorkerStats {
    held: Arc<watch::Sender<BTreeSet<String>>>,
    counters: Arc<Mutex<Counters>>,
    /// Where each batch is logged before its checkpoint (the chaos soak reads it), if anywhere.
    log: Option<Arc<ProcessedLog>>,
    /// Processors created so far, to number them in the log.
    processors: Arc<AtomicU64>,
    /// The worker id written in the log.
    worker: Arc<str>,
}

impl Default for WorkerStats {
    fn default() -> Self {
        Self {
            held: Arc::new(watch::channel(BTreeSet::new()).0),
            counters: Arc::default(),
            log: None,
            processors: Arc::default(),
            worker: Arc::from(""),
        }
    }
}

impl WorkerStats {
    /// Stats whose processors also append every batch to `log` as worker `worker`, before
    /// checkpointing it (see [`crate::soak::log`]).
    pub fn with_log(worker: &str, log: ProcessedLog) -> Self {
        Self {
            log: Some(Arc::new(log)),
            worker: Arc::from(worker),
            ..Self::default()
        }
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        // Counters are plain additions, consistent even if a holder panicked.
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shards this worker runs a processor for now.
    pub fn held(&self) -> BTreeSet<String> {
        self.held.borrow().clone()
    }

    /// A receiver notified whenever the held set changes.
    pub fn subscribe(&self) -> watch::Receiver<BTreeSet<String>> {
        self.held.subscribe()
    }

    /// Records processed by this worker, all shards together.
    pub fn processed(&self) -> u64 {
        self.counters().processed.values().sum()
    }

    /// Checkpoints written by this worker.
    pub fn checkpoints(&self) -> u64 {
        self.counters().checkpoints
    }

    /// The status of worker `worker` now.
    pub fn status(&self, worker: &str) -> StatusLine {
        StatusLine {
            worker: worker.to_owned(),
            shards: self.held(),
            processed: self.processed(),
            checkpoints: Some(self.checkpoints()),
        }
    }
}

/// Counts the records of one shard and checkpoints after every batch.
#[derive(Debug)]
pub struct CountingProcessor {
    shard: String,
    stats: WorkerStats,
    /// This processor's number within its worker, from 1.
    number: u64,
}

impl RecordProcessor for CountingProcessor {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let start_us = crate::soak::log::now_us();
        *self
            .stats
            .counters()
            .processed
            .entry(self.shard.clone())
            .or_default() += input.records.len() as u64;
        if let Some(log) = &self.stats.log {
            // Logged before the checkpoint: a kill in between replays a batch already logged (a
            // duplicate), never checkpoints one that is not.
            log.append(&BatchLine {
                worker: self.stats.worker.to_string(),
                processor: self.number,
                shard: self.shard.clone(),
                start_us,
                end_us: crate::soak::log::now_us(),
                records: input
                    .records
                    .iter()
                    .map(|r| {
                        LoggedRecord(
                            r.partition_key.clone(),
                            r.sequence_number.clone(),
                            r.sub_sequence_number,
                            String::from_utf8_lossy(&r.data).into_owned(),
                        )
                    })
                    .collect(),
            })?;
        }
        // Fenced: fails with LeaseLost once another worker took the shard, and the batch is
        // then handed to the new owner from the last checkpoint (at least once).
        checkpointer.checkpoint().await?;
        self.stats.counters().checkpoints += 1;
        Ok(())
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        // The next owner resumes exactly here instead of replaying the last batch.
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

impl Drop for CountingProcessor {
    fn drop(&mut self) {
        // The scheduler drops the processor when it stops running the shard, whatever the
        // reason (lease lost, shard ended, shutdown, failure), so this is the one place to
        // notice that the worker let go of it.
        self.stats.held.send_modify(|held| {
            held.remove(&self.shard);
        });
    }
}

/// Creates a [`CountingProcessor`] for each lease the worker starts running.
#[derive(Clone, Debug, Default)]
pub struct CountingFactory(pub WorkerStats);

impl RecordProcessorFactory for CountingFactory {
    type Processor = CountingProcessor;

    fn create(&self, shard_id: &str) -> CountingProcessor {
        self.0.held.send_modify(|held| {
            held.insert(shard_id.to_owned());
        });
        CountingProcessor {
            shard: shard_id.to_owned(),
            stats: self.0.clone(),
            number: self.0.processors.fetch_add(1, Ordering::SeqCst) + 1,
        }
    }
}

/// A worker's status: `worker=w1 shards=[shardId-000000000000,...] processed=1234 checkpoints=56`.
///
/// Workers print it every few seconds and whenever their shards change (then followed by
/// `took=[...] released=[...]`); the parser reads both and ignores unknown fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    /// Worker id.
    pub worker: String,
    /// Shards the worker holds.
    pub shards: BTreeSet<String>,
    /// Records processed since the worker started.
    pub processed: u64,
    /// Checkpoints written, when printed.
    pub checkpoints: Option<u64>,
}

impl fmt::Display for StatusLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker={} shards=[{}] processed={}",
            self.worker,
            join(&self.shards),
            self.processed
        )?;
        if let Some(checkpoints) = self.checkpoints {
            write!(f, " checkpoints={checkpoints}")?;
        }
        Ok(())
    }
}

impl StatusLine {
    /// Parses a line printed by a worker; `None` for lines that carry no status.
    pub fn parse(line: &str) -> Option<Self> {
        let mut worker = None;
        let mut shards = None;
        let mut processed = None;
        let mut checkpoints = None;
        for field in line.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            match key {
                "worker" => worker = Some(value.to_owned()),
                "shards" => shards = Some(parse_list(value)?),
                "processed" => processed = Some(value.parse().ok()?),
                "checkpoints" => checkpoints = Some(value.parse().ok()?),
                _ => {}
            }
        }
        Some(Self {
            worker: worker?,
            shards: shards?,
            processed: processed?,
            checkpoints,
        })
    }
}

/// `a,b,c` from a set.
pub fn join<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `[a,b]` (and `[]`).
fn parse_list(value: &str) -> Option<BTreeSet<String>> {
    let inner = value.strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// Creates `stream` with `shards` shards unless it exists, then waits until it is ACTIVE.
/// Returns whether it was created, and its open shard count.
pub async fn ensure_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    shards: i32,
) -> Result<(bool, i32)> {
    let created = match kinesis
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await
    {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            false
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("creating stream {stream}")));
        }
    };
    let open = wait_for_stream(kinesis, stream, Duration::from_secs(60), false).await?;
    Ok((created, open))
}

/// Waits until `stream` exists and is ACTIVE (or, with `updating_ok`, UPDATING), polling every
/// 200 ms for at most `timeout`. Returns its open shard count.
pub async fn wait_for_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    timeout: Duration,
    updating_ok: bool,
) -> Result<i32> {
    use aws_sdk_kinesis::types::StreamStatus;
    let deadline = Instant::now() + timeout;
    loop {
        match kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
        {
            Ok(out) => {
                if let Some(summary) = out.stream_description_summary {
                    let ready = summary.stream_status == StreamStatus::Active
                        || (updating_ok && summary.stream_status == StreamStatus::Updating);
                    if ready {
                        return Ok(summary.open_shard_count);
                    }
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("describing stream {stream}")));
            }
        }
        if Instant::now() >= deadline {
            bail!("stream {stream} was not active within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Counters of a [`produce`] loop.
#[derive(Debug, Default)]
pub struct Load {
    /// Records handed to the producer.
    pub sent: AtomicU64,
    /// Records Kinesis acknowledged.
    pub acked: AtomicU64,
    /// Records the producer finally failed to deliver.
    pub failed: AtomicU64,
    /// Set to stop [`produce`].
    pub stop: AtomicBool,
}

/// Puts `rate` records per second with `keys` distinct partition keys (so every shard gets
/// some) until `load.stop` is set, counting outcomes in `load`. Returns when the last put was
/// handed over; deliveries still in flight keep updating `load`.
pub async fn produce(producer: &kpl::Producer, rate: u64, keys: u64, load: Arc<Load>) {
    let started = Instant::now();
    let keys = keys.max(1);
    let mut n = 0u64;
    while !load.stop.load(Ordering::SeqCst) {
        // Catch up with the count due by now: a steady rate whatever the timer's jitter.
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while n < due && !load.stop.load(Ordering::SeqCst) {
            let record = kpl::Record::new(format!("key-{}", n % keys), format!("record {n}"));
            n += 1;
            load.sent.fetch_add(1, Ordering::Relaxed);
            match producer.put(record).await {
                Ok(delivery) => {
                    let load = load.clone();
                    tokio::spawn(async move {
                        let counter = match delivery.await {
                            Ok(_) => &load.acked,
                            Err(_) => &load.failed,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    });
                }
                Err(_) => {
                    load.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM, the signals a terminal and `kill` send.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The time of day in UTC, `HH:MM:SS.mmm`: every fleet binary starts its lines with it, so the
/// output of separate processes (and the moment of a `kill`, see `date -u +%T.%3N`) line up.
pub fn clock() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// `host-pid`, a worker id that differs between processes and hosts.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// A checkpoint in a few characters: sentinels as is, sequence numbers by their last digits
/// (enough to see them move; the full number is in the lease table).
pub fn short_checkpoint(checkpoint: &Checkpoint) -> String {
    match checkpoint.sequence() {
        Some(s) => {
            let digits = &s.sequence;
            let tail = &digits[digits.len().saturating_sub(12)..];
            if s.sub_sequence > 0 {
                format!("…{tail}/{}", s.sub_sequence)
            } else {
                format!("…{tail}")
            }
        }
        None => checkpoint.as_str().to_owned(),
    }
}

/// The lease table as rows of `shard owner counter checkpoint`, sorted by shard, then one line
/// per owner with its shard count.
pub fn lease_table_view(leases: &[Lease]) -> String {
    let mut leases: Vec<&Lease> = leases.iter().collect();
    leases.sort_by(|a, b| a.key.cmp(&b.key));
    let owner_width = leases
        .iter()
        .filter_map(|l| l.owner.as_ref().map(String::len))
        .max()
        .unwrap_or(0)
        .max("owner".len());
    let mut out = format!(
        "{:<22} {:<owner_width$} {:>8}  checkpoint\n",
        "shard", "owner", "counter"
    );
    let mut by_owner: BTreeMap<&str, usize> = BTreeMap::new();
    for lease in &leases {
        let owner = lease.owner.as_deref().unwrap_or("-");
        if !lease.is_finished() {
            *by_owner.entry(owner).or_default() += 1;
        }
        out.push_str(&format!(
            "{:<22} {:<owner_width$} {:>8}  {}\n",
            lease.key,
            owner,
            lease.counter,
            short_checkpoint(&lease.checkpoint)
        ));
    }
    let owners: Vec<String> = by_owner
        .iter()
        .map(|(owner, n)| format!("{owner}:{n}"))
        .collect();
    out.push_str(&format!("leases per owner: {}\n", owners.join(" ")));
    out
}

/// Kinesis and DynamoDB clients from the AWS configuration, `--endpoint` overriding it, or for
/// the local engine at [`LOCAL_ENDPOINT`](crate::clients::LOCAL_ENDPOINT) when nothing is
/// configured (see [`Aws::load`](crate::clients::Aws::load)); checked to answer: a clear error
/// for a wrong endpoint instead of retries that never end. Says where they point on stderr.
pub async fn connect(
    endpoint: Option<&str>,
) -> Result<(aws_sdk_kinesis::Client, aws_sdk_dynamodb::Client)> {
    let aws = crate::clients::Aws::load(endpoint, Some(crate::clients::LOCAL_ENDPOINT)).await?;
    eprintln!("using {}", aws.target);
    aws.kinesis
        .list_streams()
        .send()
        .await
        .with_context(|| format!("no Kinesis endpoint answers at {}", aws.target))?;
    Ok((aws.kinesis, aws.dynamodb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_round_trip() {
        let status = StatusLine {
            worker: "w1".into(),
            shards: ["shardId-000000000001".into(), "shardId-000000000000".into()].into(),
            processed: 1234,
            checkpoints: Some(7),
        };
        let line = status.to_string();
        assert_eq!(
            line,
            "worker=w1 shards=[shardId-000000000000,shardId-000000000001] processed=1234 checkpoints=7"
        );
        assert_eq!(StatusLine::parse(&line), Some(status));
        let change = "worker=w2 shards=[] processed=0 took=[] released=[shardId-000000000003]";
        let parsed = StatusLine::parse(change).expect("a change line parses");
        assert!(parsed.shards.is_empty());
        assert_eq!(parsed.checkpoints, None);
        assert_eq!(StatusLine::parse("worker=w1 started pid=7"), None);
        let stamped = format!("{} {line}", clock());
        assert_eq!(StatusLine::parse(&stamped).map(|s| s.processed), Some(1234));
    }

    #[test]
    fn the_held_set_follows_processor_lifetimes() {
        let stats = WorkerStats::default();
        let factory = CountingFactory(stats.clone());
        let a = factory.create("a");
        let b = factory.create("b");
        assert_eq!(stats.held(), ["a".to_string(), "b".to_string()].into());
        drop(a);
        assert_eq!(stats.held(), ["b".to_string()].into());
        drop(b);
        assert!(stats.held().is_empty());
    }

    #[test]
    fn the_lease_view_counts_owners() {
        let mut a = Lease::new("shardId-000000000000", Checkpoint::TrimHorizon);
        a.owner = Some("w1".into());
        let mut b = Lease::new("shardId-000000000001", Checkpoint::at("123456", 0));
        b.owner = Some("w1".into());
        let c = Lease::new("shardId-000000000002", Checkpoint::ShardEnd);
        let view = lease_table_view(&[c, b, a]);
        assert!(view.contains("leases per owner: w1:2\n"), "{view}");
        assert!(view.contains("…123456"), "{view}");
        let rows: Vec<&str> = view.lines().collect();
        assert!(rows[1].starts_with("shardId-000000000000"), "{view}");
    }
}

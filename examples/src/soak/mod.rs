//! The chaos soak (`src/bin/chaos_soak.rs`): a durable engine as a child process, a `kpl`
//! producer in this process and a fleet of `fleet_worker` processes, run for a given time while
//! the soak splits and merges shards, injects Kinesis and DynamoDB faults and SIGKILLs the
//! engine and the workers at moments drawn from a seeded generator. Then the chaos stops, the
//! fleet drains, and what was acknowledged is compared with what was processed
//! ([`check::analyze`]).
//!
//! - [`log`]: the per-batch log the workers append before each checkpoint.
//! - [`check`]: the comparison and the summary (definitions of every number are there).
//! - [`faults`]: the fault catalogue and the client of `POST /_shardline/faults`.
//! - [`reshard`]: splits and merges.
//! - [`producer`]: the load, every acknowledgement kept.
//! - [`process`]: the engine and worker processes.
//!
//! The seed fixes the schedule (when, and which action on which target); what the chaos hits
//! then depends on timing, so two runs with one seed are alike, not identical.

pub mod check;
pub mod faults;
pub mod log;
pub mod process;
pub mod producer;
pub mod reshard;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use self::check::{Ack, ChaosCounts, Summary};
use self::faults::{FaultTargets, FaultsEndpoint};
use self::log::{BatchLine, LogFollower};
use self::process::{EngineProcess, WorkerConfig, WorkerSlot};
use self::producer::Produced;
use crate::fleet;

/// Stream the soak writes and reads.
pub const STREAM: &str = "soak";
/// Application (and lease table) of the soak's workers.
pub const APP: &str = "soak-app";

/// How a soak runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long the chaos lasts (the drain comes after).
    pub duration: Duration,
    /// Seed of the chaos schedule.
    pub seed: u64,
    /// The `core-engine` binary.
    pub engine_bin: PathBuf,
    /// The `fleet_worker` binary.
    pub worker_bin: PathBuf,
    /// Data directory, logs and process output go under it.
    pub work_dir: PathBuf,
    /// The engine's port (kept across restarts).
    pub port: u16,
    /// Worker processes.
    pub workers: usize,
    /// Shards at creation.
    pub shards: usize,
    /// Fewest open shards merges leave.
    pub min_shards: usize,
    /// Most open shards splits make.
    pub max_shards: usize,
    /// Records per second.
    pub rate: u64,
    /// Distinct partition keys.
    pub keys: u64,
    /// kcl failover time of the workers.
    pub failover_ms: u64,
    /// Mean time between two chaos actions.
    pub chaos_interval: Duration,
    /// Services faults are injected into.
    pub faults: FaultTargets,
    /// Longest wait, after the chaos, for every acknowledged record to be processed.
    pub drain_timeout: Duration,
    /// Whether overlapping processing of a shard fails the run.
    pub overlap_fails: bool,
    /// Whether workers are also paused (SIGSTOP, then SIGCONT).
    pub pause_workers: bool,
}

/// One chaos action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    KillEngine,
    /// A split or merge, and a SIGKILL of the engine while it is being carried out (the window
    /// in which a topology change may be visible before it is durable).
    ReshardThenKillEngine,
    KillWorker,
    /// SIGSTOP a worker for about a failover time, then SIGCONT (a long GC pause, a frozen VM).
    PauseWorker,
    Reshard,
    Fault,
}

/// Draws the next action: faults most often, engine kills least. Pauses take two fifths of the
/// worker kills' share when enabled (so the other draws stay the same either way).
fn draw_action(rng: &mut StdRng, pauses: bool) -> Action {
    match rng.random_range(0..20) {
        0 => Action::KillEngine,
        1 => Action::ReshardThenKillEngine,
        5..7 if pauses => Action::PauseWorker,
        2..7 => Action::KillWorker,
        7..12 => Action::Reshard,
        _ => Action::Fault,
    }
}

/// A gap between two actions: uniform in [0.25, 1.75] times the mean.
fn draw_gap(rng: &mut StdRng, mean: Duration) -> Duration {
    mean.mul_f64(rng.random_range(0.25..1.75))
}

/// Prints a line stamped with the time of day.
fn say(line: impl AsRef<str>) {
    println!("{} {}", fleet::clock(), line.as_ref());
}

/// Everything the workers logged, read as it grows.
#[derive(Debug, Default)]
struct Logs {
    followers: HashMap<PathBuf, LogFollower>,
    batches: Vec<BatchLine>,
    seen: HashSet<u64>,
}

impl Logs {
    fn read(&mut self, dir: &std::path::Path) -> Result<()> {
        for entry in std::fs::read_dir(dir).context("reading the log directory")? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                self.followers
                    .entry(path.clone())
                    .or_insert_with(|| LogFollower::new(path));
            }
        }
        for follower in self.followers.values_mut() {
            for batch in follower.read_new()? {
                for record in &batch.records {
                    if let Ok(id) = record.3.parse() {
                        self.seen.insert(id);
                    }
                }
                self.batches.push(batch);
            }
        }
        Ok(())
    }

    fn missing(&self, acks: &[Ack]) -> usize {
        acks.iter().filter(|a| !self.seen.contains(&a.id)).count()
    }
}

/// The soak's moving parts.
struct Soak {
    options: Options,
    rng: StdRng,
    engine: EngineProcess,
    engine_restart_at: Option<Instant>,
    engine_failures_in_a_row: u32,
    workers: Vec<WorkerSlot>,
    worker_restart_at: Vec<Option<Instant>>,
    /// When each paused worker gets its SIGCONT.
    worker_resume_at: Vec<Option<Instant>>,
    worker_config: WorkerConfig,
    kinesis: aws_sdk_kinesis::Client,
    faults: FaultsEndpoint,
    /// `times` of the rules installed on the running engine, in order.
    rule_times: Vec<u64>,
    chaos: ChaosCounts,
}

impl Soak {
    /// Counts the firings of the running engine's rules into `chaos` and forgets the rules
    /// (before a kill, and at the end).
    async fn collect_fired(&mut self) {
        if let Ok(listed) = self.faults.list().await {
            self.chaos.faults_fired += faults::fired(&self.rule_times, &listed);
        }
        self.rule_times.clear();
    }

    async fn kill_engine(&mut self) {
        self.collect_fired().await;
        self.engine.kill().await;
        self.chaos.engine_kills += 1;
        let delay = Duration::from_millis(self.rng.random_range(0..3000));
        say(format!(
            "chaos: SIGKILL engine; restart in {} ms",
            delay.as_millis()
        ));
        self.engine_restart_at = Some(Instant::now() + delay);
    }

    /// Restarts the engine when due. Fails after 5 failed starts in a row.
    async fn tend_engine(&mut self) -> Result<()> {
        if self.engine_restart_at.is_none() && !self.engine.is_running() {
            say(format!(
                "the engine exited by itself; restarting it; see {}",
                self.worker_config.out_dir.join("engine.log").display()
            ));
            self.chaos.engine_exits += 1;
            self.rule_times.clear();
            self.engine_restart_at = Some(Instant::now());
        }
        let Some(at) = self.engine_restart_at else {
            return Ok(());
        };
        if Instant::now() < at {
            return Ok(());
        }
        match self.engine.start().await {
            Ok(()) => {
                say("engine restarted on the same data directory and port");
                self.engine_restart_at = None;
                self.engine_failures_in_a_row = 0;
                Ok(())
            }
            Err(e) => {
                self.chaos.engine_start_failures += 1;
                self.engine_failures_in_a_row += 1;
                say(format!("engine restart failed: {e:#}"));
                if self.engine_failures_in_a_row >= 5 {
                    return Err(e.context("the engine failed to restart 5 times in a row"));
                }
                self.engine_restart_at = Some(Instant::now() + Duration::from_secs(1));
                Ok(())
            }
        }
    }

    /// Restarts workers whose restart is due (while the engine runs), and notices workers that
    /// exited by themselves.
    fn tend_workers(&mut self) -> Result<()> {
        let engine_up = self.engine_restart_at.is_none();
        for i in 0..self.workers.len() {
            if self.worker_resume_at[i].is_some_and(|at| Instant::now() >= at) {
                self.worker_resume_at[i] = None;
                self.resume(i);
            }
            if let Some(status) = self.workers[i].exited() {
                self.chaos.worker_exits += 1;
                let id = self.workers[i].id();
                say(format!(
                    "worker {id} exited by itself ({status}); see {}",
                    self.worker_config
                        .out_dir
                        .join(format!("{id}.err"))
                        .display()
                ));
                self.worker_restart_at[i] = Some(Instant::now() + Duration::from_secs(1));
            }
            if engine_up && self.worker_restart_at[i].is_some_and(|at| Instant::now() >= at) {
                self.workers[i].start(&self.worker_config)?;
                self.worker_restart_at[i] = None;
                say(format!("worker {} started", self.workers[i].id()));
            }
        }
        Ok(())
    }

    /// SIGCONTs worker `i` (on a task: this is called from a synchronous loop).
    fn resume(&self, i: usize) {
        if let Some(pid) = self.workers[i].child.as_ref().and_then(|c| c.id()) {
            say(format!("worker {} resumed", self.workers[i].id()));
            tokio::spawn(async move {
                let _ = tokio::process::Command::new("kill")
                    .args(["-CONT".to_owned(), pid.to_string()])
                    .status()
                    .await;
            });
        }
    }

    async fn act(&mut self, action: Action) {
        let engine_up = self.engine_restart_at.is_none();
        match action {
            Action::KillEngine => {
                if engine_up {
                    self.kill_engine().await;
                }
            }
            Action::ReshardThenKillEngine => {
                let seed = self.rng.random::<u64>();
                let delay = Duration::from_micros(self.rng.random_range(0..30_000));
                if !engine_up {
                    return;
                }
                let change = tokio::time::timeout(Duration::from_secs(10), async {
                    let open = reshard::open_shards(&self.kinesis, STREAM).await?;
                    reshard::wait_active(&self.kinesis, STREAM).await?;
                    let mut rng = StdRng::seed_from_u64(seed);
                    anyhow::Ok(reshard::choose(
                        &mut rng,
                        &open,
                        self.options.min_shards,
                        self.options.max_shards,
                    ))
                })
                .await;
                let Ok(Ok(Some(change))) = change else {
                    return;
                };
                let (kinesis, change2) = (self.kinesis.clone(), change.clone());
                let call = tokio::spawn(async move {
                    match &change2 {
                        reshard::Reshard::Split(shard, at) => kinesis
                            .split_shard()
                            .stream_name(STREAM)
                            .shard_to_split(shard)
                            .new_starting_hash_key(at.to_string())
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        reshard::Reshard::Merge(a, b) => kinesis
                            .merge_shards()
                            .stream_name(STREAM)
                            .shard_to_merge(a)
                            .adjacent_shard_to_merge(b)
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                    }
                });
                tokio::time::sleep(delay).await;
                say(format!(
                    "chaos: {change:?}, and the engine killed {} µs after the request",
                    delay.as_micros()
                ));
                self.kill_engine().await;
                match call.await {
                    Ok(Ok(())) => match change {
                        reshard::Reshard::Split(..) => self.chaos.splits += 1,
                        reshard::Reshard::Merge(..) => self.chaos.merges += 1,
                    },
                    _ => self.chaos.reshard_errors += 1,
                }
            }
            Action::KillWorker => {
                let i = self.rng.random_range(0..self.workers.len());
                let delay = Duration::from_millis(self.rng.random_range(0..5000));
                let id = self.workers[i].id();
                self.worker_resume_at[i] = None;
                if self.workers[i].kill().await {
                    self.chaos.worker_kills += 1;
                    say(format!(
                        "chaos: SIGKILL worker {id}; a new one in {} ms",
                        delay.as_millis()
                    ));
                    self.worker_restart_at[i] = Some(Instant::now() + delay);
                }
            }
            Action::PauseWorker => {
                let i = self.rng.random_range(0..self.workers.len());
                let pause = Duration::from_millis(self.options.failover_ms)
                    .mul_f64(self.rng.random_range(0.5..2.0));
                if self.worker_resume_at[i].is_none() && self.workers[i].signal("STOP").await {
                    self.chaos.worker_pauses += 1;
                    say(format!(
                        "chaos: SIGSTOP worker {} for {} ms",
                        self.workers[i].id(),
                        pause.as_millis()
                    ));
                    self.worker_resume_at[i] = Some(Instant::now() + pause);
                }
            }
            Action::Reshard => {
                let seed = self.rng.random::<u64>();
                if !engine_up {
                    return;
                }
                let result = tokio::time::timeout(Duration::from_secs(20), async {
                    let open = reshard::open_shards(&self.kinesis, STREAM).await?;
                    let mut rng = StdRng::seed_from_u64(seed);
                    let Some(change) = reshard::choose(
                        &mut rng,
                        &open,
                        self.options.min_shards,
                        self.options.max_shards,
                    ) else {
                        return anyhow::Ok(None);
                    };
                    reshard::wait_active(&self.kinesis, STREAM).await?;
                    reshard::apply(&self.kinesis, STREAM, &change).await?;
                    Ok(Some((change, open.len())))
                })
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within 20 s")));
                match result {
                    Ok(Some((change, before))) => {
                        match &change {
                            reshard::Reshard::Split(..) => self.chaos.splits += 1,
                            reshard::Reshard::Merge(..) => self.chaos.merges += 1,
                        }
                        say(format!("chaos: {change:?} ({before} open shards before)"));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.chaos.reshard_errors += 1;
                        say(format!("chaos: reshard failed: {e:#}"));
                    }
                }
            }
            Action::Fault => {
                let rule = faults::draw(&mut self.rng, self.options.faults, STREAM, APP);
                if !engine_up {
                    return;
                }
                match self.faults.add(&rule).await {
                    Ok(()) => {
                        self.chaos.fault_rules += 1;
                        self.rule_times.push(rule.times);
                        say(format!("chaos: fault {}", rule.body));
                    }
                    Err(e) => say(format!("chaos: fault not installed: {e:#}")),
                }
            }
        }
    }
}

/// Runs a soak; the summary says whether it passed. Errors are failures to set up or to keep
/// the engine running (then no comparison is possible).
pub async fn run(options: Options) -> Result<Summary> {
    let data_dir = options.work_dir.join("data");
    let log_dir = options.work_dir.join("processed");
    let out_dir = options.work_dir.join("output");
    for dir in [&data_dir, &log_dir, &out_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut engine = EngineProcess::new(
        options.engine_bin.clone(),
        options.port,
        data_dir,
        out_dir.join("engine.log"),
    );
    engine.start().await.context("starting the engine")?;
    let endpoint = engine.endpoint();
    say(format!(
        "engine serving {endpoint} from {}; seed {}",
        options.work_dir.join("data").display(),
        options.seed
    ));
    let kinesis = crate::clients::kinesis(&endpoint);
    fleet::ensure_stream(&kinesis, STREAM, options.shards as i32).await?;

    let producer = kpl::Producer::new(kinesis.clone(), STREAM, kpl::Config::default())
        .await
        .context("starting the producer")?;
    let producer = Arc::new(producer);
    let produced = Arc::new(Produced::default());
    let producing = tokio::spawn({
        let (producer, produced) = (producer.clone(), produced.clone());
        let (rate, keys) = (options.rate, options.keys);
        async move { producer::produce(&producer, rate, keys, produced).await }
    });

    let worker_config = WorkerConfig {
        bin: options.worker_bin.clone(),
        endpoint: endpoint.clone(),
        stream: STREAM.into(),
        app: APP.into(),
        failover_ms: options.failover_ms,
        shard_sync_ms: 1000,
        log_dir: log_dir.clone(),
        out_dir: out_dir.clone(),
    };
    let mut soak = Soak {
        rng: StdRng::seed_from_u64(options.seed),
        engine,
        engine_restart_at: None,
        engine_failures_in_a_row: 0,
        workers: (1..=options.workers).map(WorkerSlot::new).collect(),
        worker_restart_at: vec![Some(Instant::now()); options.workers],
        worker_resume_at: vec![None; options.workers],
        worker_config,
        kinesis,
        faults: FaultsEndpoint { port: options.port },
        rule_times: Vec::new(),
        chaos: ChaosCounts::default(),
        options: options.clone(),
    };
    let mut logs = Logs::default();
    let outcome = chaos_then_drain(&mut soak, &producer, &produced, producing, &mut logs).await;

    // Stop everything, gracefully, then read the logs to their end.
    produced.stop.store(true, Ordering::SeqCst);
    for slot in &mut soak.workers {
        slot.stop(Duration::from_secs(15)).await;
    }
    soak.engine.stop().await;
    logs.read(&log_dir)?;
    // An engine that will not come back is a finding, not a reason to skip the comparison.
    let (drained, aborted) = match outcome {
        Ok(drained) => (drained, None),
        Err(e) => {
            say(format!("soak aborted: {e:#}"));
            (false, Some(format!("{e:#}")))
        }
    };

    let acks = produced
        .acks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    soak.chaos.put_failures = produced.failed.load(Ordering::Relaxed);
    let base = Summary {
        seed: options.seed,
        duration_s: options.duration.as_secs(),
        chaos: soak.chaos.clone(),
        drained,
        overlap_fails: options.overlap_fails,
        aborted,
        ..Summary::default()
    };
    Ok(check::analyze(&acks, &logs.batches, base))
}

/// The chaos for `options.duration`, then the drain; returns whether the fleet caught up.
async fn chaos_then_drain(
    soak: &mut Soak,
    producer: &Arc<kpl::Producer>,
    produced: &Arc<Produced>,
    producing: tokio::task::JoinHandle<()>,
    logs: &mut Logs,
) -> Result<bool> {
    let log_dir = soak.worker_config.log_dir.clone();
    let started = Instant::now();
    let end = started + soak.options.duration;
    let mut next_action = started + draw_gap(&mut soak.rng, soak.options.chaos_interval);
    let mut next_report = started + Duration::from_secs(10);
    let mut next_read = started;
    while Instant::now() < end {
        soak.tend_engine().await?;
        soak.tend_workers()?;
        let now = Instant::now();
        if now >= next_action {
            let action = draw_action(&mut soak.rng, soak.options.pause_workers);
            soak.act(action).await;
            next_action = Instant::now() + draw_gap(&mut soak.rng, soak.options.chaos_interval);
        }
        if now >= next_read {
            logs.read(&log_dir)?;
            next_read = now + Duration::from_secs(2);
        }
        if now >= next_report {
            let c = &soak.chaos;
            say(format!(
                "t={}s acked={} processed={} failed={} | kills engine={} workers={} exits={} \
                 | splits={} merges={} | fault rules={}",
                started.elapsed().as_secs(),
                produced.acked(),
                logs.seen.len(),
                produced.failed.load(Ordering::Relaxed),
                c.engine_kills,
                c.worker_kills,
                c.worker_exits,
                c.splits,
                c.merges,
                c.fault_rules
            ));
            next_report = now + Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    say("chaos over: no more kills, reshards or faults; delivering what is buffered");
    // The engine back, every worker running, no fault left.
    if let Some(at) = soak.engine_restart_at.as_mut() {
        *at = Instant::now();
    }
    while soak.engine_restart_at.is_some() {
        soak.tend_engine().await?;
    }
    soak.collect_fired().await;
    if let Err(e) = soak.faults.clear().await {
        say(format!("could not clear the fault rules: {e:#}"));
    }
    for at in soak
        .worker_restart_at
        .iter_mut()
        .chain(soak.worker_resume_at.iter_mut())
        .flatten()
    {
        *at = Instant::now();
    }
    soak.tend_workers()?;

    produced.stop.store(true, Ordering::SeqCst);
    producing.await.context("producer task")?;
    producer.flush_all(Duration::from_secs(60)).await;
    // Delivery callbacks run on their own tasks: let them record the last outcomes.
    let settle = Instant::now() + Duration::from_secs(10);
    while producer.outstanding() > 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let acks = produced
        .acks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    say(format!(
        "producer done: {} acknowledged, {} failed, {} still outstanding; draining (at most {} s)",
        acks.len(),
        produced.failed.load(Ordering::Relaxed),
        producer.outstanding(),
        soak.options.drain_timeout.as_secs()
    ));

    let deadline = Instant::now() + soak.options.drain_timeout;
    let mut last_report = Instant::now();
    loop {
        soak.tend_engine().await?;
        soak.tend_workers()?;
        logs.read(&log_dir)?;
        let missing = logs.missing(&acks);
        if missing == 0 {
            say("drained: every acknowledged record processed");
            return Ok(true);
        }
        if Instant::now() >= deadline {
            say(format!(
                "drain timed out with {missing} acknowledged records unprocessed"
            ));
            return Ok(false);
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            say(format!(
                "draining: {missing} acknowledged records not yet processed"
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

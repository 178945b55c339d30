//! What every subcommand shares: the engine under test (in process or external), SDK clients,
//! the process's CPU time and peak RSS, medians, and the table (or JSON) it prints.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use core_engine::{Engine, EngineHandle};

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Runs of each row; the table shows their medians.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Prints JSON (one object with the title and the rows) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// A few seconds' version of the subcommand, for the test suite.
    #[arg(long)]
    pub smoke: bool,
    /// A Kinesis-compatible endpoint to load instead of an engine started in this process.
    #[arg(long)]
    pub endpoint: Option<String>,
}

impl Common {
    /// Repeats per row: one in smoke mode.
    pub fn repeats(&self) -> usize {
        if self.smoke { 1 } else { self.repeats.max(1) }
    }
}

/// How the in-process engine keeps records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
    /// In memory.
    Memory,
    /// In a write-ahead log in a temporary directory.
    Durable,
}

impl Storage {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Durable => "durable",
        }
    }
}

/// The engine a run talks to: one started for it, or an external endpoint.
#[derive(Debug)]
pub struct Target {
    engine: Option<EngineHandle>,
    endpoint: String,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    /// Starts an engine (`storage`, AWS's throughput limits on or off), or, with `external`,
    /// uses that endpoint as it is.
    pub async fn start(storage: Storage, limits: bool, external: Option<&str>) -> Result<Self> {
        if let Some(endpoint) = external {
            return Ok(Self {
                engine: None,
                endpoint: endpoint.to_owned(),
                _dir: None,
            });
        }
        let (builder, dir) = match storage {
            Storage::Memory => (Engine::builder().in_memory(), None),
            Storage::Durable => {
                let dir = tempfile::tempdir().context("a temporary data directory")?;
                (Engine::builder().data_dir(dir.path()), Some(dir))
            }
        };
        let engine = builder
            .throughput_limits(limits)
            .build()
            .context("engine configuration")?;
        // On its own runtime, so that its threads' CPU time is the engine's (`engine_cpu`).
        let engine = engine_runtime()
            .spawn(engine.start())
            .await
            .context("the engine's runtime")?
            .context("starting the engine")?;
        Ok(Self {
            endpoint: engine.endpoint_url(),
            engine: Some(engine),
            _dir: dir,
        })
    }

    /// The endpoint URL (`http://host:port`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A Kinesis client of its own (its own connections).
    pub fn kinesis(&self) -> aws_sdk_kinesis::Client {
        kinesis(&self.endpoint)
    }

    /// A DynamoDB client, for kcl's lease table.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKIDBENCH",
                "secret",
                None,
                None,
                "bench",
            ))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// Stops the in-process engine.
    pub async fn stop(self) {
        if let Some(engine) = self.engine {
            engine.shutdown().await;
        }
    }
}

/// A Kinesis client for `endpoint` with static credentials.
pub fn kinesis(endpoint: &str) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDBENCH", "secret", None, None, "bench"))
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

/// A stream name no earlier run used (an external endpoint keeps its streams).
pub fn stream_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("bench-{what}-{}-{nanos}", std::process::id())
}

/// Creates a stream of `shards` shards and waits until it is ACTIVE.
pub async fn create_stream(
    client: &aws_sdk_kinesis::Client,
    name: &str,
    shards: i32,
) -> Result<()> {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .context("CreateStream")?;
    for _ in 0..600 {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .context("DescribeStreamSummary")?;
        let active = summary
            .stream_description_summary
            .is_some_and(|s| s.stream_status == aws_sdk_kinesis::types::StreamStatus::Active);
        if active {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("stream {name} did not become ACTIVE")
}

/// Name of the in-process engine's runtime threads (its blocking threads too).
const ENGINE_THREADS: &str = "engine-rt";

/// The runtime in-process engines run on, apart from the clients' (kpl, kcl, the SDK).
fn engine_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name(ENGINE_THREADS)
            .enable_all()
            .build()
            .expect("a runtime for the engine")
    })
}

/// CPU time this process has used, all threads (the scheduler's nanosecond counters).
pub fn process_cpu() -> Duration {
    threads_cpu(|_| true)
}

/// CPU time the in-process engine has used: its runtime's threads and its log writer's.
/// (Against an external endpoint it stays zero.)
pub fn engine_cpu() -> Duration {
    threads_cpu(|name| name.starts_with(ENGINE_THREADS) || name == "wal-writer")
}

/// CPU time of this process's threads whose name `counts`.
fn threads_cpu(counts: impl Fn(&str) -> bool) -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !counts(name.trim()) {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// Resets the peak RSS (Linux's `clear_refs` 5), so [`peak_rss_mib`] measures from now on.
/// Without it (another OS, or a kernel that refuses) the peak is the process's lifetime peak.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set size (VmHWM) in MiB, 0 where unknown.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The median of `values` (NaN for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The `p`-th percentile (0..=100) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// One value of a table.
#[derive(Debug, Clone)]
pub enum Cell {
    /// Text, such as a mode.
    Text(String),
    /// A number shown with this many decimals.
    Num(f64, usize),
}

impl Cell {
    fn shown(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Num(v, _) if v.is_nan() => "-".into(),
            Self::Num(v, decimals) => format!("{v:.decimals$}"),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Self::Text(text) => serde_json::Value::from(text.as_str()),
            Self::Num(v, _) if v.is_nan() => serde_json::Value::Null,
            Self::Num(v, _) => serde_json::Value::from(*v),
        }
    }
}

/// A text cell.
pub fn text(value: impl Into<String>) -> Cell {
    Cell::Text(value.into())
}

/// A number cell with `decimals` decimals.
pub fn num(value: f64, decimals: usize) -> Cell {
    Cell::Num(value, decimals)
}

/// What a subcommand prints: a title, notes, and rows under named columns.
#[derive(Debug)]
pub struct Table {
    title: String,
    notes: Vec<String>,
    columns: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: impl Into<String>, columns: &[&'static str]) -> Self {
        Self {
            title: title.into(),
            notes: Vec::new(),
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a line printed under the title.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Adds a row (one cell per column) and, unless printing JSON at the end, shows it now.
    pub fn row(&mut self, cells: Vec<Cell>, json: bool) {
        debug_assert_eq!(cells.len(), self.columns.len());
        if !json {
            if self.rows.is_empty() {
                self.print_header();
            }
            println!(
                "{}",
                self.line(&cells.iter().map(Cell::shown).collect::<Vec<_>>())
            );
        }
        self.rows.push(cells);
    }

    fn widths(&self) -> Vec<usize> {
        // The first column holds labels such as "polling (idle 1500 ms)".
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| c.len().max(if i == 0 { 22 } else { 9 }))
            .collect()
    }

    fn line(&self, cells: &[String]) -> String {
        let widths = self.widths();
        cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    }

    fn print_header(&self) {
        println!("{}", self.title);
        for note in &self.notes {
            println!("  {note}");
        }
        let columns: Vec<String> = self.columns.iter().map(|c| (*c).to_owned()).collect();
        println!("{}", self.line(&columns));
    }

    /// Prints the JSON form, or the header of a table that got no rows.
    pub fn finish(&self, json: bool) {
        if json {
            let rows: Vec<serde_json::Value> = self
                .rows
                .iter()
                .map(|row| {
                    let object: serde_json::Map<String, serde_json::Value> = self
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, cell)| ((*c).to_owned(), cell.json()))
                        .collect();
                    serde_json::Value::Object(object)
                })
                .collect();
            let out = serde_json::json!({
                "title": self.title,
                "notes": self.notes,
                "rows": rows,
            });
            println!("{out}");
        } else if self.rows.is_empty() {
            self.print_header();
        }
    }
}

/// Parses a comma-separated list of numbers (for `--sizes 100,1024`).
pub fn list<T: std::str::FromStr>(text: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("{v:?} is not a number"))
        })
        .collect()
}

/// The machine, for a table's notes.
pub fn machine() -> String {
    format!(
        "{} cores; load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into())
    )
}

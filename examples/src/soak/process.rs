//! The soak's child processes: the engine (`core-engine serve` on a data directory and a fixed
//! port) and the `fleet_worker`s, with their output in files of the work directory.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Finds a binary built next to this one (`target/<profile>/<name>`), unless `given`.
pub fn sibling_binary(given: Option<PathBuf>, name: &str, build_hint: &str) -> Result<PathBuf> {
    let path = match given {
        Some(path) => path,
        None => {
            let exe = std::env::current_exe().context("locating this executable")?;
            let dir = exe.parent().context("this executable has no directory")?;
            dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !path.is_file() {
        bail!(
            "{} not found; build it first ({build_hint}) or pass its path",
            path.display()
        );
    }
    Ok(path)
}

fn append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Sends SIGTERM to `child` (a graceful stop), through kill(1).
pub async fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
}

/// Waits for `child` to exit within `timeout`; SIGKILLs it otherwise.
pub async fn reap(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    }
}

/// The engine as a child process: same binary, data directory and port across restarts.
#[derive(Debug)]
pub struct EngineProcess {
    bin: PathBuf,
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl EngineProcess {
    /// An engine that will serve `127.0.0.1:port` from `data_dir`, writing its output to `log`.
    pub fn new(bin: PathBuf, port: u16, data_dir: PathBuf, log: PathBuf) -> Self {
        Self {
            bin,
            port,
            data_dir,
            log,
            child: None,
        }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether it is running (as far as this process knows).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts it and waits until it says it is listening and answers (60 s at most). Fails
    /// with the end of its log if it exits or stays silent.
    pub async fn start(&mut self) -> Result<()> {
        let mut child = Command::new(&self.bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env(
                "RUST_LOG",
                std::env::var("SOAK_ENGINE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(append(&self.log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let (listening_tx, listening_rx) = tokio::sync::oneshot::channel();
        let log = self.log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut tx = Some(listening_tx);
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .await
                .ok();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("listening")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(());
                }
                if let Some(file) = &mut file {
                    let _ = file.write_all(format!("{line}\n").as_bytes()).await;
                }
            }
        });
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                said = listening_rx => said.is_ok(),
                _ = child.wait() => false,
            }
        })
        .await
        .unwrap_or(false);
        if !ready {
            let _ = child.start_kill();
            let status = child.wait().await.ok();
            bail!(
                "the engine did not start (exit {status:?}); end of {}:\n{}",
                self.log.display(),
                tail(&self.log, 15)
            );
        }
        self.child = Some(child);
        // "listening" may come before recovery ends: wait for an answer too.
        let kinesis = crate::clients::kinesis(&self.endpoint());
        for _ in 0..300 {
            let answered =
                tokio::time::timeout(Duration::from_secs(5), kinesis.list_streams().send()).await;
            if matches!(answered, Ok(Ok(_))) {
                return Ok(());
            }
            if !self.is_running() {
                bail!(
                    "the engine exited after saying it listens; end of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 15)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the engine did not answer ListStreams within 30 s")
    }

    /// SIGKILLs it and reaps it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Stops it with SIGTERM (SIGKILL after 30 s).
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        terminate(&child).await;
        reap(&mut child, Duration::from_secs(30)).await
    }
}

/// The last `n` lines of a text file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How the workers run.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The `fleet_worker` binary.
    pub bin: PathBuf,
    /// Engine endpoint.
    pub endpoint: String,
    /// Stream.
    pub stream: String,
    /// Application (lease table) name.
    pub app: String,
    /// kcl failover time.
    pub failover_ms: u64,
    /// kcl shard sync period.
    pub shard_sync_ms: u64,
    /// Where the processed-records logs go.
    pub log_dir: PathBuf,
    /// Where the workers' output goes.
    pub out_dir: PathBuf,
}

/// One worker slot: a worker process, replaced by a new one (new id) whenever it dies.
#[derive(Debug)]
pub struct WorkerSlot {
    /// Slot number, from 1.
    pub slot: usize,
    /// Processes started in this slot so far.
    pub incarnation: u64,
    /// The running process.
    pub child: Option<Child>,
}

impl WorkerSlot {
    /// An empty slot.
    pub fn new(slot: usize) -> Self {
        Self {
            slot,
            incarnation: 0,
            child: None,
        }
    }

    /// The id of the current (or last) worker of the slot.
    pub fn id(&self) -> String {
        format!("w{}-{}", self.slot, self.incarnation)
    }

    /// Starts a new worker in the slot. Incarnations alternate between enhanced fan-out and
    /// polling, so the fleet mixes both and shards move between the two kinds of reader.
    pub fn start(&mut self, config: &WorkerConfig) -> Result<()> {
        self.incarnation += 1;
        let id = self.id();
        let retrieval = if (self.slot as u64 + self.incarnation).is_multiple_of(2) {
            "fan-out"
        } else {
            "polling"
        };
        let log = config.log_dir.join(format!("{id}.jsonl"));
        let child = Command::new(&config.bin)
            .args(["--endpoint", &config.endpoint])
            .args(["--stream", &config.stream, "--app", &config.app])
            .args(["--worker-id", &id])
            .args(["--failover-ms", &config.failover_ms.to_string()])
            .args(["--shard-sync-ms", &config.shard_sync_ms.to_string()])
            .args(["--idle-ms", "200", "--status-ms", "5000"])
            .args(["--initial-position", "trim-horizon"])
            .args(["--retrieval", retrieval])
            .arg("--processed-log")
            .arg(&log)
            .env(
                "RUST_LOG",
                std::env::var("SOAK_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(append(&config.out_dir.join(format!("{id}.out")))?)
            .stderr(append(&config.out_dir.join(format!("{id}.err")))?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", config.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether its worker has exited by itself; reaps it then.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    /// Sends `signal` (a kill(1) name such as `STOP` or `CONT`) to its worker; whether there
    /// was one to send it to.
    pub async fn signal(&self, signal: &str) -> bool {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else {
            return false;
        };
        Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    /// SIGKILLs its worker.
    pub async fn kill(&mut self) -> bool {
        match self.child.take() {
            Some(mut child) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                true
            }
            None => false,
        }
    }

    /// Stops its worker with SIGTERM (SIGKILL after `timeout`); returns its exit status.
    pub async fn stop(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        terminate(&child).await;
        reap(&mut child, timeout).await
    }
}

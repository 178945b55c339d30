//! What the scenario binaries share: `--duration`, `--endpoint`, and the engine they run on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::Clients;
use crate::retrieval::RetrievalArg;

/// Options every scenario binary takes.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonArgs {
    /// How long to produce, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Use the engine at this URL (e.g. a running `core-engine serve`) instead of starting an
    /// embedded in-memory one. Stream and table names then get a unique suffix, so runs do not
    /// collide with each other's data.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// How the consumer applications read their shards.
    #[arg(long, value_enum, default_value_t = RetrievalArg::FanOut)]
    pub retrieval: RetrievalArg,
}

impl CommonArgs {
    /// `--duration` as a [`Duration`], checked.
    pub fn duration(&self) -> Result<Duration> {
        if !(self.duration.is_finite() && self.duration > 0.0 && self.duration <= 3600.0) {
            bail!("--duration must be between 0 and 3600 seconds");
        }
        Ok(Duration::from_secs_f64(self.duration))
    }
}

/// The engine a binary runs against, with the suffix for its resource names.
#[derive(Debug)]
pub struct Target {
    /// Clients for the engine.
    pub clients: Clients,
    /// Appended to stream and table names: empty on a fresh embedded engine.
    pub suffix: String,
    /// The URL of the engine.
    pub endpoint: String,
    /// The embedded engine, if one was started; shut down by [`Target::close`].
    engine: Option<core_engine::EngineHandle>,
}

impl Target {
    /// Connects to `--endpoint`, or starts an embedded in-memory engine (with AWS throughput
    /// limits on, as in AWS) on a free loopback port.
    pub async fn connect(args: &CommonArgs) -> Result<Self> {
        match &args.endpoint {
            Some(endpoint) => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Ok(Self {
                    clients: Clients::new(endpoint),
                    suffix: format!("-{secs}"),
                    endpoint: endpoint.clone(),
                    engine: None,
                })
            }
            None => {
                let engine = core_engine::Engine::builder()
                    .in_memory()
                    .build()
                    .context("configuring the embedded engine")?
                    .start()
                    .await
                    .context("starting the embedded engine")?;
                let endpoint = engine.endpoint_url();
                Ok(Self {
                    clients: Clients::new(&endpoint),
                    suffix: String::new(),
                    endpoint,
                    engine: Some(engine),
                })
            }
        }
    }

    /// A line saying where the scenario runs.
    pub fn describe(&self) -> String {
        match self.engine {
            Some(_) => format!("embedded in-memory engine at {}", self.endpoint),
            None => format!(
                "engine at {} (names suffixed {})",
                self.endpoint, self.suffix
            ),
        }
    }

    /// Stops the embedded engine, if there is one.
    pub async fn close(self) {
        if let Some(engine) = self.engine {
            engine.shutdown().await;
        }
    }
}

/// The process exit code for a scenario's outcome: 0 when every check held, 1 when one failed,
/// 2 (with the error and its causes on stderr) when the run itself failed.
pub fn exit_code(outcome: Result<bool>) -> std::process::ExitCode {
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

//! What the scenario binaries and the quickstart share: where they run (`--endpoint`, the AWS
//! configuration, or an engine of their own), the names of what they create, and `--duration`.
//!
//! Where they run, in order: `--endpoint URL` (both services there); else the AWS configuration
//! the standard way (`aws-config`: `AWS_ENDPOINT_URL`, the per-service
//! `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_REGION`, `AWS_PROFILE` and
//! `~/.aws/config`); AWS itself, in the configured region, only with `--aws`; else (no endpoint
//! configured, or `--embedded`) an in-memory engine they start in their own process. A region
//! alone is not enough to go to AWS: many machines have a default one in `~/.aws/config`, and
//! a demo run there must not create billed resources in an account by surprise. Anywhere but on that
//! engine, every stream, table and application name gets a suffix (`--suffix`, by default
//! `-<unix seconds>`), and what the run created is deleted at the end unless `--keep`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::Clients;
use super::resources::Resources;
use crate::clients::{Aws, Target};
use crate::retrieval::RetrievalArg;

/// Where a binary runs, and what it does with what it creates there.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TargetArgs {
    /// Endpoint of both Kinesis and DynamoDB (e.g. a `core-engine serve` at
    /// http://127.0.0.1:4567), overriding the AWS configuration (AWS_ENDPOINT_URL,
    /// AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION, AWS_PROFILE). With
    /// neither, an in-memory engine is started in this process.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Start the in-process engine even if an AWS configuration is present.
    #[arg(long, conflicts_with = "endpoint")]
    pub embedded: bool,
    /// Run against AWS itself in the configured region (AWS_REGION or the profile's), with the
    /// SDK's usual credentials: the streams, tables and consumers it creates are billed while
    /// they exist. Without it a region alone does not send the run to AWS.
    #[arg(long, conflicts_with_all = ["endpoint", "embedded"])]
    pub aws: bool,
    /// Appended to the name of every stream, table and application the run creates (letters,
    /// digits, '-', '_', '.'). Default: `-<unix seconds>` anywhere but on the in-process
    /// engine, so the names collide neither with another run's nor with your own.
    #[arg(long, allow_hyphen_values = true)]
    pub suffix: Option<String>,
    /// Leave the streams and tables the run created. By default they are deleted at the end
    /// (the in-process engine's go with the process).
    #[arg(long)]
    pub keep: bool,
}

impl TargetArgs {
    /// Clients from `--endpoint`, the configured endpoints, or AWS itself with `--aws`; `None`
    /// when none of these applies or `--embedded` asks for the in-process engine.
    ///
    /// # Errors
    /// `--aws` with no region configured.
    pub async fn configured(&self) -> Result<Option<Aws>> {
        if self.embedded {
            return Ok(None);
        }
        Aws::configured(self.endpoint.as_deref(), self.aws).await
    }

    /// The suffix of the names a run creates on `target`: `--suffix`, else none on the
    /// in-process engine (it is fresh) and `-<unix seconds>` elsewhere.
    pub fn suffix(&self, target: &Target) -> Result<String> {
        if let Some(suffix) = &self.suffix {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
            if suffix.len() > 64 || !suffix.chars().all(allowed) {
                bail!(
                    "--suffix {suffix:?}: at most 64 letters, digits, '-', '_' or '.' (stream and table names allow no other)"
                );
            }
            return Ok(suffix.clone());
        }
        if target.is_embedded() {
            return Ok(String::new());
        }
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(format!("-{secs}"))
    }
}

/// Options every scenario binary takes.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonArgs {
    /// How long to produce, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Where the scenario runs.
    #[command(flatten)]
    pub target: TargetArgs,
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

/// Where a scenario binary runs: clients, the suffix of its names, and the in-process engine
/// if it started one.
#[derive(Debug)]
pub struct Connection {
    /// The clients.
    pub clients: Clients,
    /// Where they point.
    pub target: Target,
    /// Appended to stream, table and application names (see [`TargetArgs::suffix`]).
    pub suffix: String,
    /// `--keep`.
    keep: bool,
    /// The in-process engine, if one was started; shut down by [`Connection::close`].
    engine: Option<core_engine::EngineHandle>,
}

impl Connection {
    /// Clients for `--endpoint` or the AWS configuration, or for an in-memory engine (AWS
    /// throughput limits on, as in AWS) started on a free loopback port when nothing is
    /// configured.
    pub async fn connect(args: &TargetArgs) -> Result<Self> {
        let (aws, engine) = match args.configured().await? {
            Some(aws) => {
                check(&aws).await?;
                (aws, None)
            }
            None => {
                let engine = start_engine(core_engine::Engine::builder().in_memory()).await?;
                (Aws::embedded(&engine.endpoint_url()).await, Some(engine))
            }
        };
        Ok(Self {
            suffix: args.suffix(&aws.target)?,
            clients: Clients {
                kinesis: aws.kinesis,
                dynamodb: aws.dynamodb,
            },
            target: aws.target,
            keep: args.keep,
            engine,
        })
    }

    /// A line saying where the scenario runs and how its names are suffixed.
    pub fn describe(&self) -> String {
        describe(&self.target, &self.suffix)
    }

    /// Stops the in-process engine, if there is one; else deletes what the run `created`
    /// unless `--keep` (saying so on stdout).
    pub async fn close(self, created: &Resources) -> Result<()> {
        match self.engine {
            Some(engine) => {
                engine.shutdown().await;
                Ok(())
            }
            None => {
                created
                    .clean_up(&self.clients.kinesis, &self.clients.dynamodb, self.keep)
                    .await
            }
        }
    }
}

/// Checks that Kinesis answers at `aws` (a clear error for a wrong endpoint or missing
/// credentials, before anything is created).
pub async fn check(aws: &Aws) -> Result<()> {
    aws.kinesis.list_streams().send().await.with_context(|| {
        format!(
            "Kinesis does not answer (using {}; --embedded runs on an engine in this process instead)",
            aws.target
        )
    })?;
    Ok(())
}

/// `using TARGET` and, when there is one, the suffix of the run's names.
pub fn describe(target: &Target, suffix: &str) -> String {
    if suffix.is_empty() {
        format!("using {target}")
    } else {
        format!("using {target}; names suffixed {suffix}")
    }
}

/// Starts the in-process engine `builder` describes.
pub async fn start_engine(
    builder: core_engine::EngineBuilder,
) -> Result<core_engine::EngineHandle> {
    builder
        .build()
        .context("configuring the in-process engine")?
        .start()
        .await
        .context("starting the in-process engine")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_suffixed_anywhere_but_on_the_in_process_engine() {
        let embedded = Target::Embedded("http://127.0.0.1:1".into());
        let endpoint = Target::Endpoint("http://127.0.0.1:4567".into());
        let default = TargetArgs::default();
        assert_eq!(default.suffix(&embedded).unwrap(), "");
        let secs = default.suffix(&endpoint).unwrap();
        assert!(
            secs.strip_prefix('-')
                .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 1_700_000_000)),
            "{secs}"
        );
        let mine = TargetArgs {
            suffix: Some("-mine_1.a".into()),
            ..TargetArgs::default()
        };
        assert_eq!(mine.suffix(&embedded).unwrap(), "-mine_1.a");
        assert_eq!(mine.suffix(&endpoint).unwrap(), "-mine_1.a");
        for bad in ["/x", "a b", "ü", &"x".repeat(65)] {
            let args = TargetArgs {
                suffix: Some(bad.into()),
                ..TargetArgs::default()
            };
            let e = args.suffix(&endpoint).unwrap_err().to_string();
            assert!(e.starts_with("--suffix"), "{e}");
        }
    }
}

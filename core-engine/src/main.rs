//! The standalone engine: `core-engine serve --listen 127.0.0.1:4567 [--data-dir DIR] [--tls]`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use core_engine::auth::Credentials;
use core_engine::{Engine, SyncMode, TlsConfig};
use tokio::net::TcpListener;

/// A Kinesis-compatible engine for local development, tests and CI.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: text (coloured only when stderr is a terminal) or JSON, one
    /// object per line. The level comes from RUST_LOG (default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CORE_ENGINE_LOG_FORMAT")]
    log_format: LogFormat,
}

/// `--log-format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Logs to stderr in `format`, at the level RUST_LOG says (default info).
fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match format {
        // Colour codes only for a person watching: not in a file, a pipe or a log collector.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Kinesis API until interrupted (Ctrl-C or SIGTERM).
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:4567", env = "CORE_ENGINE_LISTEN")]
    listen: SocketAddr,
    /// Keep data in this directory so that it survives restarts; in memory if absent.
    #[arg(long, env = "CORE_ENGINE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Directory standing in for S3: Kinesis channels write their batches under
    /// <dir>/<bucket>/<channel-name>/. Default <data-dir>/channels, or a fresh temporary
    /// directory in memory mode.
    #[arg(long, env = "CORE_ENGINE_CHANNEL_DIR")]
    channel_dir: Option<PathBuf>,
    /// When a durable put is acknowledged: after fsync, or after the write reaches the OS.
    #[arg(long, value_enum, default_value_t = Sync::Fsync)]
    sync: Sync,
    /// Durable mode: bytes of record bodies cached in memory (the newest records); older ones
    /// are read back from the log. Default 256 MiB.
    #[arg(long, env = "CORE_ENGINE_CACHE_BYTES")]
    cache_bytes: Option<u64>,
    /// In-memory mode: the most bytes of records held; puts beyond it get
    /// LimitExceededException instead of the engine running out of memory. Default: no cap.
    #[arg(long, env = "CORE_ENGINE_MAX_MEMORY_BYTES")]
    max_memory_bytes: Option<u64>,
    /// Master key for encryption at rest (32 raw bytes, 64 hex digits or base64 of 32 bytes);
    /// default <data-dir>/master.key, made at the first StartStreamEncryption.
    #[arg(long, env = "CORE_ENGINE_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Region used in ARNs.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Twelve-digit account id used in ARNs.
    #[arg(long, default_value = "000000000000")]
    account_id: String,
    /// Enforce Kinesis' per-shard throughput limits (1 MiB/s and 1,000 records/s in, 2 MiB/s and
    /// 5 reads/s out).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    throughput_limits: bool,
    /// Milliseconds a new stream stays CREATING.
    #[arg(long, default_value_t = 0)]
    create_delay_ms: u64,
    /// Milliseconds a new consumer stays CREATING; default --create-delay-ms.
    #[arg(long)]
    consumer_create_delay_ms: Option<u64>,
    /// Milliseconds a stream stays UPDATING after SplitShard, MergeShards or UpdateShardCount.
    #[arg(long, default_value_t = 0)]
    reshard_delay_ms: u64,
    /// Milliseconds a client may take to send its first request after connecting, or an
    /// HTTP/1 request head once started; a request body stalled this long is dropped too.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_ms: u64,
    /// Milliseconds a connection with no request in flight stays open (longer than SDKs keep
    /// idle pooled connections; requests in flight are never cut).
    #[arg(long, default_value_t = 120_000, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_ms: u64,
    /// Most connections served at once; more are answered 503 and closed. Default 4096, or
    /// 128 below the open-file limit (ulimit -n) if that is lower.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// Verify SigV4 signatures: the one access key accepted (full access, admin too).
    /// Requires --secret-key.
    #[arg(
        long,
        env = "CORE_ENGINE_ACCESS_KEY",
        requires = "secret_key",
        conflicts_with = "credentials"
    )]
    access_key: Option<String>,
    /// The secret of --access-key.
    #[arg(long, env = "CORE_ENGINE_SECRET_KEY", requires = "access_key")]
    secret_key: Option<String>,
    /// Verify SigV4 signatures against the keys, session tokens and access rules of this
    /// TOML file (format in docs/engine.md).
    #[arg(long, env = "CORE_ENGINE_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Do not serve the /_shardline/ admin endpoints (fault injection) at all.
    #[arg(long)]
    no_admin: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

/// HTTPS instead of HTTP.
#[derive(Debug, clap::Args)]
struct TlsArgs {
    /// Serve HTTPS with a certificate generated at start for the listen address, localhost,
    /// 127.0.0.1 and ::1, signed by a new CA whose certificate is written to --tls-ca-out.
    #[arg(long, conflicts_with = "tls_cert")]
    tls: bool,
    /// Serve HTTPS with this certificate chain (PEM, server certificate first).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where --tls writes its CA certificate (PEM), for AWS_CA_BUNDLE, awscli --ca-bundle or
    /// boto3 verify=. Default: ca.pem in --data-dir, else core-engine-ca-PORT.pem in the
    /// temporary directory.
    #[arg(long, requires = "tls")]
    tls_ca_out: Option<PathBuf>,
    /// Another DNS name or IP address for --tls' certificate (repeatable).
    #[arg(long = "tls-name", requires = "tls")]
    tls_names: Vec<String>,
}

impl TlsArgs {
    fn config(&self) -> Option<TlsConfig> {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            return Some(TlsConfig::from_pem_files(cert, key));
        }
        self.tls.then(|| {
            self.tls_names
                .iter()
                .fold(TlsConfig::self_signed(), |config, name| config.name(name))
        })
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Sync {
    /// Sync to disk before acknowledging: survives power loss.
    Fsync,
    /// Acknowledge once the OS has the write: survives a crash of the engine only.
    OsBuffered,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let Command::Serve(args) = cli.command;
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "core-engine failed");
            // In JSON every stderr line is a log record; the one above says it.
            if cli.log_format == LogFormat::Text {
                eprintln!("error: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), core_engine::Error> {
    let mut builder = Engine::builder()
        .listen(args.listen)
        .region(args.region)
        .account_id(args.account_id)
        .stream_create_delay(Duration::from_millis(args.create_delay_ms))
        .reshard_delay(Duration::from_millis(args.reshard_delay_ms))
        .throughput_limits(args.throughput_limits)
        .sync_mode(match args.sync {
            Sync::Fsync => SyncMode::Fsync,
            Sync::OsBuffered => SyncMode::OsBuffered,
        });
    if let Some(dir) = &args.data_dir {
        builder = builder.data_dir(dir);
    }
    if let Some(bytes) = args.cache_bytes {
        builder = builder.cache_bytes(bytes);
    }
    if let Some(bytes) = args.max_memory_bytes {
        builder = builder.max_memory_bytes(bytes);
    }
    if let Some(ms) = args.consumer_create_delay_ms {
        builder = builder.consumer_create_delay(Duration::from_millis(ms));
    }
    if let Some(dir) = &args.channel_dir {
        builder = builder.channel_dir(dir);
    }
    if let Some(tls) = args.tls.config() {
        builder = builder.tls(tls);
    }
    if let Some(path) = args.master_key_file {
        builder = builder.master_key_file(path);
    }
    builder = builder
        .header_read_timeout(Duration::from_millis(args.header_read_timeout_ms))
        .idle_timeout(Duration::from_millis(args.idle_timeout_ms));
    if let (Some(id), Some(secret)) = (args.access_key, args.secret_key) {
        builder = builder.credentials(Credentials::single(id, secret));
    }
    if let Some(path) = &args.credentials {
        builder = builder.credentials(Credentials::load(path).map_err(core_engine::Error::Config)?);
    }
    builder = builder.admin_endpoints(!args.no_admin);
    if let Some(max) = args.max_connections {
        builder = builder.max_connections(usize::try_from(max).unwrap_or(usize::MAX));
    }
    // Recovery first: "listening" must mean that the data directory opened.
    let engine = builder.build()?.recover()?;
    let listener =
        TcpListener::bind(args.listen)
            .await
            .map_err(|source| core_engine::Error::Bind {
                addr: args.listen,
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|source| core_engine::Error::Bind {
            addr: args.listen,
            source,
        })?;
    if let Some(ca) = engine.ca_certificate_pem() {
        let path = args
            .tls
            .tls_ca_out
            .clone()
            .unwrap_or_else(|| match &args.data_dir {
                Some(dir) => dir.join("ca.pem"),
                None => std::env::temp_dir().join(format!("core-engine-ca-{}.pem", addr.port())),
            });
        std::fs::write(&path, ca).map_err(|e| {
            core_engine::Error::Config(format!(
                "TLS: cannot write the CA certificate to {}: {e}",
                path.display()
            ))
        })?;
        // Before the listening line, so that the file is there once a script sees that line.
        println!("core-engine CA certificate: {}", path.display());
    }
    let scheme = if engine.is_tls() { "https" } else { "http" };
    // Scripts read this line to find the endpoint when listening on port 0.
    println!("core-engine listening on {scheme}://{addr}");
    engine.run(listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

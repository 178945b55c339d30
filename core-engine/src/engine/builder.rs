//! [`EngineBuilder`]: every setting of an engine, with its default, checked by `build`.

use super::*;

/// Builds an [`Engine`].
///
/// ```
/// # async fn demo() -> Result<(), core_engine::Error> {
/// let engine = core_engine::Engine::builder()
///     .region("eu-west-1")
///     .build()?
///     .start()
///     .await?;
/// println!("Kinesis endpoint: {}", engine.endpoint_url());
/// engine.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use]
pub struct EngineBuilder {
    config: EngineConfig,
}

/// Default of [`EngineBuilder::cache_bytes`]: 256 MiB.
const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            config: EngineConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                data_dir: None,
                sync_mode: SyncMode::Fsync,
                wal_segment_bytes: WalOptions::default().segment_bytes,
                cache_bytes: DEFAULT_CACHE_BYTES,
                max_memory_bytes: None,
                region: "us-east-1".into(),
                account_id: "000000000000".into(),
                stream_create_delay: Duration::ZERO,
                table_create_delay: Duration::ZERO,
                consumer_create_delay: None,
                reshard_delay: Duration::ZERO,
                shard_limit: 10_000,
                throughput_limits: true,
                subscription_lifetime: Duration::from_secs(300),
                fan_out_batch_window: Duration::from_millis(2),
                faults: Vec::new(),
                fault_seed: 0,
                on_demand_stream_limit: 50,
                retention_check_interval: Duration::from_secs(60),
                channel_dir: None,
                channel_delivery_interval: Duration::from_secs(1),
                clock: Arc::new(TokioClock::new()),
                listener: ListenerConfig::default(),
                credentials: None,
                admin_endpoints: true,
                tls: None,
                master_key: None,
            },
        }
    }
}

impl EngineBuilder {
    /// Address to listen on. Default `127.0.0.1:0` (a free port; see [`EngineHandle::endpoint_url`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// Keep data in this directory, so that it survives restarts and crashes. Default: none,
    /// everything is in memory and gone when the engine stops.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// Keep everything in memory (the default).
    pub fn in_memory(mut self) -> Self {
        self.config.data_dir = None;
        self
    }

    /// When a durable put counts as done. Default [`SyncMode::Fsync`]: synced to disk before the
    /// answer, so it survives power loss. [`SyncMode::OsBuffered`] survives a crash of the
    /// engine but not of the machine, and is faster.
    pub fn sync_mode(mut self, mode: SyncMode) -> Self {
        self.config.sync_mode = mode;
        self
    }

    /// Size at which the write-ahead log starts a new segment file. Retention frees space a
    /// whole segment at a time, so smaller segments free it sooner. Default 64 MiB.
    pub fn wal_segment_bytes(mut self, bytes: u64) -> Self {
        self.config.wal_segment_bytes = bytes;
        self
    }

    /// Durable engine: the most bytes of record bodies kept in memory, as a cache of the newest
    /// records; older records are read back from the log's segment files when read. The
    /// per-record index (about 24 bytes a record) stays in memory. Default 256 MiB.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.config.cache_bytes = bytes;
        self
    }

    /// In-memory engine: the most bytes of records (keys, data and a 24-byte header each) held
    /// before PutRecord and PutRecords are refused with LimitExceededException, so that the
    /// engine answers with an error instead of being killed by the OS; reads keep working and
    /// puts succeed again once retention expires records or streams are deleted. Default: no
    /// cap. Ignored by a durable engine, whose memory [`EngineBuilder::cache_bytes`] bounds.
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.config.max_memory_bytes = Some(bytes);
        self
    }

    /// The master key that wraps the data keys of streams encrypted at rest
    /// (StartStreamEncryption in a durable engine; see [`crate::storage::crypto`]). Default:
    /// `<data-dir>/master.key`, made (mode 0600) at the first StartStreamEncryption, which only
    /// protects the log against someone who has the segment files but not that file. A data
    /// directory must be reopened with the key it was written with; another key stops the
    /// start with an error.
    pub fn master_key(mut self, key: [u8; 32]) -> Self {
        self.config.master_key = Some(MasterKeySource::Key(MasterKey::from_bytes(key)));
        self
    }

    /// [`EngineBuilder::master_key`] read from a file when the engine opens: 32 raw bytes, 64
    /// hex digits, or the base64 of 32 bytes.
    pub fn master_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.master_key = Some(MasterKeySource::File(path.into()));
        self
    }

    /// Region in ARNs. Default `us-east-1`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = region.into();
        self
    }

    /// Twelve-digit account id in ARNs and messages. Default `000000000000`.
    pub fn account_id(mut self, account_id: impl Into<String>) -> Self {
        self.config.account_id = account_id.into();
        self
    }

    /// How long a new stream stays `CREATING` before it turns `ACTIVE`. Default zero.
    pub fn stream_create_delay(mut self, delay: Duration) -> Self {
        self.config.stream_create_delay = delay;
        self
    }

    /// How long a new DynamoDB table or global secondary index stays `CREATING` before it turns
    /// `ACTIVE`. Default zero.
    pub fn table_create_delay(mut self, delay: Duration) -> Self {
        self.config.table_create_delay = delay;
        self
    }

    /// How long a consumer registered with RegisterStreamConsumer stays `CREATING` before it
    /// turns `ACTIVE` (SubscribeToShard refuses it meanwhile). Default: the stream creation
    /// delay (zero unless set).
    pub fn consumer_create_delay(mut self, delay: Duration) -> Self {
        self.config.consumer_create_delay = Some(delay);
        self
    }

    /// How long a stream shows `UPDATING` after SplitShard, MergeShards or UpdateShardCount
    /// (further resharding is refused with `ResourceInUseException` meanwhile; records flow and
    /// the new shards are usable at once). Default zero; Kinesis takes a few seconds.
    pub fn reshard_delay(mut self, delay: Duration) -> Self {
        self.config.reshard_delay = delay;
        self
    }

    /// Most open shards across all streams (DescribeLimits' `ShardLimit`). Default 10,000.
    pub fn shard_limit(mut self, limit: u32) -> Self {
        self.config.shard_limit = limit;
        self
    }

    /// Whether each shard's throughput is limited as in Kinesis: 1 MiB/s and 1,000 records/s
    /// of writes, 2 MiB/s and 5 calls/s of GetRecords, 5 GetShardIterator calls/s. Over the
    /// limit, PutRecords fails the records concerned and the other calls fail with
    /// `ProvisionedThroughputExceededException`. Default on; turn it off for bulk loads.
    pub fn throughput_limits(mut self, enabled: bool) -> Self {
        self.config.throughput_limits = enabled;
        self
    }

    /// How long a SubscribeToShard stream lasts before the engine ends it. Default five
    /// minutes, as in Kinesis.
    pub fn subscription_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.subscription_lifetime = lifetime;
        self
    }

    /// Least time between two SubscribeToShard events with records: records put within it
    /// after an event share the next one, so that small records arriving faster than events
    /// can be sent travel in batches, as on AWS. A record after a quiet spell still goes at
    /// once. Default 2 ms; zero sends each event as soon as it can.
    pub fn fan_out_batch_window(mut self, window: Duration) -> Self {
        self.config.fan_out_batch_window = window;
        self
    }

    /// Injects a fault from the start (see [`crate::faults`]); call once per rule. Rules can
    /// also be changed while running, with [`EngineHandle::faults`] or over HTTP.
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.config.faults.push(rule);
        self
    }

    /// Seed of the generator that decides which calls injected faults hit. Default 0.
    pub fn fault_seed(mut self, seed: u64) -> Self {
        self.config.fault_seed = seed;
        self
    }

    /// How often expired records are dropped and log space released, and how often DynamoDB
    /// items whose time to live has passed are deleted. Reads never return expired records
    /// whatever this is (they may return expired items until the next sweep, as DynamoDB's do).
    /// Default one minute.
    pub fn retention_check_interval(mut self, interval: Duration) -> Self {
        self.config.retention_check_interval = interval;
        self
    }

    /// The directory standing in for S3: Kinesis channels write their batches under
    /// `<dir>/<bucket>/<channel-name>/` (see docs/engine.md, "Channels"). Default
    /// `<data-dir>/channels` for a durable engine, else a fresh directory under the system's
    /// temporary directory (see [`EngineHandle::channel_dir`]).
    pub fn channel_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.channel_dir = Some(dir.into());
        self
    }

    /// How often channels check for batches due (whether a batch is due follows the engine
    /// clock). Default one second.
    pub fn channel_delivery_interval(mut self, interval: Duration) -> Self {
        self.config.channel_delivery_interval = interval;
        self
    }

    /// The source of time. Default [`TokioClock`], which follows the wall clock and
    /// `tokio::time::pause`/`advance`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.config.clock = clock;
        self
    }

    /// How long a client may take to send its first request after connecting, and to send
    /// an HTTP/1 request head once it has started one; a request body that makes no progress
    /// for this long also has its connection closed. Default 10 seconds.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.listener.header_read_timeout = timeout;
        self
    }

    /// How long a connection with no request in flight stays open. Default 120 seconds,
    /// longer than AWS SDKs keep idle pooled connections (60 to 90 seconds), so that a client
    /// normally closes its idle connections first. A request in flight, such as a
    /// SubscribeToShard stream, is never cut.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.listener.idle_timeout = timeout;
        self
    }

    /// The most connections served at once; one more is answered HTTP 503
    /// `ServiceUnavailable` (which SDKs retry) and closed, and the others carry on. Default
    /// 4,096, lowered to 128 below the process's open-file limit (`ulimit -n`) if that is lower.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.config.listener.max_connections = Some(max);
        self
    }

    /// Verify every request's SigV4 signature against these keys, and apply their access
    /// rules (see [`crate::auth`]). Default: off, any credentials are accepted.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.config.credentials = Some(credentials);
        self
    }

    /// Whether the `/_shardline/` admin endpoints are served (with verification on, they
    /// require an admin key). Default on; off answers 404.
    pub fn admin_endpoints(mut self, enabled: bool) -> Self {
        self.config.admin_endpoints = enabled;
        self
    }

    /// Serve HTTPS instead of HTTP, with this certificate (see [`TlsConfig`]); ALPN offers
    /// HTTP/2 and HTTP/1.1. Default: plain HTTP.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Engine, Error> {
        let config = self.config;
        if config.account_id.len() != 12 || !config.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Config(format!(
                "account id must be 12 digits, got {:?}",
                config.account_id
            )));
        }
        let region_ok = !config.region.is_empty()
            && config
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !region_ok {
            return Err(Error::Config(format!("invalid region {:?}", config.region)));
        }
        if config.wal_segment_bytes < 4096 {
            return Err(Error::Config(
                "WAL segments must be at least 4096 bytes".into(),
            ));
        }
        for rule in &config.faults {
            rule.validate().map_err(Error::Config)?;
        }
        let listener = &config.listener;
        if listener.header_read_timeout.is_zero() || listener.idle_timeout.is_zero() {
            return Err(Error::Config(
                "header read and idle timeouts must not be zero".into(),
            ));
        }
        if listener.max_connections == Some(0) {
            return Err(Error::Config("max connections must be at least 1".into()));
        }
        if let Some(credentials) = &config.credentials {
            credentials.validate().map_err(Error::Config)?;
        }
        if config.channel_delivery_interval.is_zero() {
            return Err(Error::Config(
                "channel delivery interval must not be zero".into(),
            ));
        }
        if config.retention_check_interval.is_zero() {
            return Err(Error::Config(
                "retention check interval must not be zero".into(),
            ));
        }
        Ok(Engine { config })
    }
}

//! Configuring, starting and stopping an engine.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::{Credentials, Verifier};
use crate::clock::{Clock, TokioClock};
use crate::dynamodb::{DdbConfig, DynamoDb};
use crate::error::Error;
use crate::faults::{FaultInjector, FaultRule};
use crate::kinesis::{Kinesis, ServiceConfig};
use crate::protocol::Services;
use crate::server::{ListenerConfig, ServerTls};
use crate::storage::crypto::{MasterKey, MasterKeySlot};
use crate::storage::wal::{FileStorage, SyncMode, WalOptions};
use crate::storage::{MemoryStorage, Storage};
use crate::tls::{TlsConfig, TlsConnections};

mod builder;
pub use builder::EngineBuilder;

/// A configured engine, ready to [`start`](Engine::start) or [`run`](Engine::run).
///
/// Build one with [`Engine::builder`]; every setting has a default that suits tests.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
}

/// Every setting of an engine. Fields are documented with their defaults on [`EngineBuilder`].
#[derive(Clone, Debug)]
struct EngineConfig {
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
    sync_mode: SyncMode,
    wal_segment_bytes: u64,
    cache_bytes: u64,
    max_memory_bytes: Option<u64>,
    region: String,
    account_id: String,
    stream_create_delay: Duration,
    table_create_delay: Duration,
    consumer_create_delay: Option<Duration>,
    reshard_delay: Duration,
    shard_limit: u32,
    on_demand_stream_limit: u32,
    throughput_limits: bool,
    subscription_lifetime: Duration,
    fan_out_batch_window: Duration,
    faults: Vec<FaultRule>,
    fault_seed: u64,
    retention_check_interval: Duration,
    channel_dir: Option<PathBuf>,
    channel_delivery_interval: Duration,
    clock: Arc<dyn Clock>,
    listener: ListenerConfig,
    credentials: Option<Credentials>,
    admin_endpoints: bool,
    tls: Option<TlsConfig>,
    master_key: Option<MasterKeySource>,
}

/// Where the master key for encryption at rest comes from.
#[derive(Clone, Debug)]
enum MasterKeySource {
    Key(MasterKey),
    File(PathBuf),
}

impl Engine {
    /// A builder with default settings.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Binds the listen address, recovers any data, and serves in a background task.
    pub async fn start(self) -> Result<EngineHandle, Error> {
        let listener = TcpListener::bind(self.config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: self.config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: self.config.listen,
            source,
        })?;
        let limits = self.config.listener;
        let tls = self.config.load_tls()?;
        let services = self.open()?;
        let faults = services.kinesis.faults.clone();
        let cloudwatch = services.cloudwatch.clone();
        let channel_dir = services.kinesis.channel_root().unwrap_or_default();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_until(
            listener,
            services,
            limits,
            tls.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        let handle = EngineHandle {
            local_addr,
            faults,
            tls,
            channel_dir,
            cloudwatch,
            stop: Some(stop),
            task: Some(task),
        };
        tracing::info!(endpoint = %handle.endpoint_url(), "core-engine started");
        Ok(handle)
    }

    /// Recovers any data, then serves `listener` until `shutdown` completes; returns once
    /// in-flight requests are done and storage is closed.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        self.recover()?.run(listener, shutdown).await
    }

    /// Opens storage and recovers any data without serving yet, so that a caller can announce
    /// that it is ready only once recovery succeeded.
    pub fn recover(self) -> Result<RecoveredEngine, Error> {
        let limits = self.config.listener;
        let tls = self.config.load_tls()?;
        Ok(RecoveredEngine {
            services: self.open()?,
            limits,
            tls,
        })
    }

    /// Opens storage and rebuilds the services' state from it.
    pub(crate) fn open(self) -> Result<Services, Error> {
        let config = self.config;
        let storage: Arc<dyn Storage> = match &config.data_dir {
            Some(dir) => {
                let options = WalOptions {
                    sync: config.sync_mode,
                    segment_bytes: config.wal_segment_bytes,
                };
                Arc::new(FileStorage::open(dir, options)?)
            }
            None => Arc::new(MemoryStorage::new()),
        };
        let service = ServiceConfig {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            create_delay_ms: millis(config.stream_create_delay),
            consumer_create_delay_ms: millis(
                config
                    .consumer_create_delay
                    .unwrap_or(config.stream_create_delay),
            ),
            reshard_delay_ms: millis(config.reshard_delay),
            shard_limit: config.shard_limit,
            on_demand_stream_limit: config.on_demand_stream_limit,
            durable: config.data_dir.is_some(),
            throughput_limits: config.throughput_limits,
            subscription_lifetime: config.subscription_lifetime,
            // Kept in the data directory, so that iterators survive a restart.
            token_key: match &config.data_dir {
                Some(dir) => crate::model::iterator::TokenKey::load_or_create(dir)?,
                None => crate::model::iterator::TokenKey::random(),
            },
            cache_bytes: config.cache_bytes,
            max_memory_bytes: config.max_memory_bytes,
            master_key: Arc::new(match (&config.master_key, &config.data_dir) {
                (Some(MasterKeySource::Key(key)), _) => MasterKeySlot::given(key.clone()),
                (Some(MasterKeySource::File(path)), _) => {
                    MasterKeySlot::given(MasterKey::from_file(path)?)
                }
                (None, Some(dir)) => MasterKeySlot::in_dir(dir)?,
                (None, None) => MasterKeySlot::none(),
            }),
        };
        let faults = Arc::new(FaultInjector::new(config.fault_seed, config.faults.clone()));
        let metadata_path = config.data_dir.clone().unwrap_or_default().join("metadata");
        let kinesis = Arc::new(
            Kinesis::recover(
                service,
                storage,
                config.clock.clone(),
                faults,
                metadata_path,
            )?
            .with_fan_out_batch_window(config.fan_out_batch_window),
        );
        spawn_retention(&kinesis, config.retention_check_interval);
        let channel_dir = match (&config.channel_dir, &config.data_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(data)) => data.join("channels"),
            (None, None) => {
                std::env::temp_dir().join(format!("core-engine-channels-{}", uuid::Uuid::new_v4()))
            }
        };
        kinesis.open_channels(channel_dir)?;
        kinesis.open_queues(config.data_dir.as_ref().map(|d| d.join("queues")))?;
        spawn_channel_delivery(&kinesis, config.channel_delivery_interval);
        let dynamodb = DynamoDb::open(
            DdbConfig {
                region: config.region.clone(),
                account_id: config.account_id.clone(),
                create_delay_ms: i64::try_from(config.table_create_delay.as_millis())
                    .unwrap_or(i64::MAX),
            },
            config.clock.clone(),
            config
                .data_dir
                .as_ref()
                .map(|d| d.join("dynamodb"))
                .as_deref(),
            config.sync_mode,
        )?;
        let dynamodb = Arc::new(dynamodb);
        spawn_expiry(&dynamodb, config.retention_check_interval);
        let auth = config.credentials.as_ref().map(|credentials| {
            Arc::new(Verifier::new(
                credentials,
                &config.region,
                &config.account_id,
                config.clock.clone(),
            ))
        });
        let cloudwatch = Arc::new(crate::cloudwatch::CloudWatch::new(config.clock.clone()));
        let observe = Arc::new(crate::observe::Observe::default());
        observe.add_section(Arc::new(crate::cloudwatch::CloudWatchSection(
            cloudwatch.clone(),
        )));
        Ok(Services {
            cloudwatch,
            kinesis,
            dynamodb,
            auth,
            admin_endpoints: config.admin_endpoints,
            observe,
        })
    }
}

impl EngineConfig {
    /// Loads or generates the TLS certificate, if TLS is on.
    fn load_tls(&self) -> Result<Option<Arc<ServerTls>>, Error> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        Ok(Some(Arc::new(ServerTls::new(tls.load(self.listen)?))))
    }
}

/// An engine whose data is recovered, ready to serve; see [`Engine::recover`].
#[derive(Debug)]
pub struct RecoveredEngine {
    services: Services,
    limits: ListenerConfig,
    tls: Option<Arc<ServerTls>>,
}

impl RecoveredEngine {
    /// Whether the engine will serve HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The certificate (PEM) of the CA that signed the engine's certificate, when TLS is on
    /// with [`TlsConfig::self_signed`]: what clients must trust.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.tls.as_deref().and_then(ServerTls::ca_pem)
    }

    /// Serves `listener` until `shutdown` completes; returns once in-flight requests are done
    /// and storage is closed.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        serve_until(listener, self.services, self.limits, self.tls, shutdown).await;
        Ok(())
    }
}

/// A duration in milliseconds, saturating.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Periodically drops expired records; stops when the service is dropped.
fn spawn_retention(kinesis: &Arc<Kinesis>, every: Duration) {
    let weak = Arc::downgrade(kinesis);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(kinesis) = weak.upgrade() else {
                return;
            };
            let result = tokio::task::spawn_blocking(move || kinesis.enforce_retention()).await;
            match result {
                Ok(Ok(trimmed)) if trimmed > 0 => {
                    tracing::debug!(trimmed, "dropped expired records")
                }
                Ok(Err(error)) => tracing::error!(%error, "retention enforcement failed"),
                _ => {}
            }
        }
    });
}

/// Periodically writes the channel batches that are due; stops when the service is dropped.
fn spawn_channel_delivery(kinesis: &Arc<Kinesis>, every: Duration) {
    let weak = Arc::downgrade(kinesis);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(kinesis) = weak.upgrade() else {
                return;
            };
            let result =
                tokio::task::spawn_blocking(move || crate::kinesis::deliver_due(&kinesis)).await;
            if let Ok(Err(error)) = result {
                tracing::error!(%error, "channel delivery failed");
            }
        }
    });
}

/// Periodically deletes DynamoDB items whose time to live has passed; stops when the service
/// is dropped.
fn spawn_expiry(dynamodb: &Arc<DynamoDb>, every: Duration) {
    let weak = Arc::downgrade(dynamodb);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(dynamodb) = weak.upgrade() else {
                return;
            };
            let result = tokio::task::spawn_blocking(move || dynamodb.expire_items()).await;
            match result {
                Ok(Ok(deleted)) if deleted > 0 => {
                    tracing::debug!(deleted, "deleted expired DynamoDB items")
                }
                Ok(Err(error)) => tracing::error!(%error, "deleting expired items failed"),
                _ => {}
            }
        }
    });
}

async fn serve_until(
    listener: TcpListener,
    services: Services,
    limits: ListenerConfig,
    tls: Option<Arc<ServerTls>>,
    shutdown: impl Future<Output = ()>,
) {
    crate::server::serve(listener, services.clone(), limits, tls, shutdown).await;
    // A clean stop leaves a checkpoint, so that the next start replays almost nothing.
    if let Err(error) = services.kinesis.checkpoint() {
        tracing::warn!(%error, "saving an index checkpoint at shutdown failed");
    }
    if let Err(error) = services.kinesis.storage.close() {
        tracing::error!(%error, "closing storage failed");
    }
    if let Err(error) = services.dynamodb.close() {
        tracing::error!(%error, "closing DynamoDB storage failed");
    }
    tracing::info!("core-engine stopped");
}

/// A running engine. Dropping it stops the engine without waiting; prefer
/// [`shutdown`](EngineHandle::shutdown).
#[derive(Debug)]
pub struct EngineHandle {
    local_addr: SocketAddr,
    faults: Arc<FaultInjector>,
    tls: Option<Arc<ServerTls>>,
    channel_dir: PathBuf,
    cloudwatch: Arc<crate::cloudwatch::CloudWatch>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// The directory Kinesis channels deliver to (see [`EngineBuilder::channel_dir`]).
    pub fn channel_dir(&self) -> &std::path::Path {
        &self.channel_dir
    }

    /// The URL to give an AWS SDK as its endpoint, such as `http://127.0.0.1:4567`, or
    /// `https://127.0.0.1:4567` with TLS.
    pub fn endpoint_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The certificate (PEM) of the CA that signed the engine's certificate, when TLS is on
    /// with [`TlsConfig::self_signed`]: what clients must trust (see
    /// [`crate::tls::sdk_http_client`]).
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.tls.as_deref().and_then(ServerTls::ca_pem)
    }

    /// How many TLS connections negotiated HTTP/2 and HTTP/1.1 so far; `None` without TLS.
    pub fn tls_connections(&self) -> Option<TlsConnections> {
        self.tls.as_deref().map(ServerTls::connections)
    }

    /// The engine's fault injector, to add or clear rules while it runs.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// The CloudWatch series clients put with PutMetricData and the engine still keeps (see
    /// [`crate::cloudwatch`]), sorted by namespace, metric name and dimensions. Render them with
    /// [`crate::cloudwatch::write_prometheus`].
    pub fn cloudwatch_series(&self) -> Vec<crate::cloudwatch::SeriesSnapshot> {
        self.cloudwatch.series()
    }

    /// The address the engine listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, lets in-flight requests finish, and closes storage.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

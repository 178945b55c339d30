//! Shared set-up: an engine, clients, a recording processor and worker handles.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use core_engine::{Engine, EngineHandle};
use kcl::{
    Checkpointer, Config, InitialPosition, ProcessRecordsInput, ProcessorError, RecordProcessor,
    RecordProcessorFactory, Scheduler,
};

#[allow(dead_code)] // the handle keeps the engine running
pub struct Env {
    pub handle: EngineHandle,
    pub kinesis: aws_sdk_kinesis::Client,
    pub ddb: aws_sdk_dynamodb::Client,
}

impl Env {
    pub async fn start() -> Self {
        Self::with(Engine::builder()).await
    }

    pub async fn with(builder: core_engine::EngineBuilder) -> Self {
        let handle = builder.build().unwrap().start().await.unwrap();
        let url = handle.endpoint_url();
        let kinesis = aws_sdk_kinesis::Client::from_conf(
            aws_sdk_kinesis::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(&url)
                .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "t"))
                .build(),
        );
        let ddb = ddb_client(&url);
        Self {
            handle,
            kinesis,
            ddb,
        }
    }

    pub async fn create_stream(&self, name: &str, shards: i32) {
        self.kinesis
            .create_stream()
            .stream_name(name)
            .shard_count(shards)
            .send()
            .await
            .unwrap();
    }

    /// Puts a record; returns (shard, sequence number).
    pub async fn put(&self, stream: &str, key: &str, data: &str) -> (String, String) {
        let out = self
            .kinesis
            .put_record()
            .stream_name(stream)
            .partition_key(key)
            .data(Blob::new(data.as_bytes()))
            .send()
            .await
            .unwrap();
        (out.shard_id, out.sequence_number)
    }

    /// Puts a record into the shard whose range starts at `hash`.
    pub async fn put_at(&self, stream: &str, hash: u128, data: &str) -> String {
        self.kinesis
            .put_record()
            .stream_name(stream)
            .partition_key("k")
            .explicit_hash_key(hash.to_string())
            .data(Blob::new(data.as_bytes()))
            .send()
            .await
            .unwrap()
            .shard_id
    }

    /// Open shards and their starting hash keys.
    pub async fn open_shards(&self, stream: &str) -> Vec<(String, u128)> {
        let shards = self
            .kinesis
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .unwrap()
            .shards
            .unwrap_or_default();
        shards
            .into_iter()
            .filter(|s| {
                s.sequence_number_range
                    .as_ref()
                    .is_none_or(|r| r.ending_sequence_number.is_none())
            })
            .map(|s| {
                let start = s.hash_key_range.unwrap().starting_hash_key.parse().unwrap();
                (s.shard_id, start)
            })
            .collect()
    }

    /// Lease owners by shard.
    pub async fn owners(&self, app: &str) -> HashMap<String, Option<String>> {
        kcl::leases::LeaseTable::new(self.ddb.clone(), app)
            .list()
            .await
            // The table may not exist yet.
            .unwrap_or_default()
            .into_iter()
            .filter(|l| !l.is_finished())
            .map(|l| (l.key, l.owner))
            .collect()
    }
}

/// A DynamoDB client for the engine (or a proxy) at `url`.
pub fn ddb_client(url: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "t",
            ))
            .build(),
    )
}

/// A TCP proxy in front of the engine that can be cut: from then on every connection through it,
/// open or new, stays open and never answers (a worker partitioned from its lease table).
#[allow(dead_code)]
pub struct Partition {
    pub url: String,
    cut: tokio::sync::watch::Sender<bool>,
    _accept: tokio::task::JoinHandle<()>,
}

#[allow(dead_code)]
impl Partition {
    pub async fn start(env: &Env) -> Self {
        let target = env
            .handle
            .endpoint_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (cut, rx) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let cut = *rx.borrow();
                if cut {
                    held.push(client);
                    continue;
                }
                let mut rx = rx.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = async { drop(rx.wait_for(|cut| *cut).await) } => {
                            drop(upstream);
                            // Keep the client's connection open, silent.
                            std::future::pending::<()>().await;
                        }
                    }
                });
            }
        });
        Self {
            url,
            cut,
            _accept: accept,
        }
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }
}

/// Short timings so fleets converge in seconds.
pub fn fast_config() -> Config {
    Config {
        failover_time: Duration::from_millis(1500),
        idle_time_between_reads: Duration::from_millis(50),
        shard_sync_interval: Duration::from_secs(1),
        initial_position: InitialPosition::TrimHorizon,
        shutdown_timeout: Duration::from_secs(5),
        processing_retry: kcl::RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
        ..Config::default()
    }
}

#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Delivery {
    pub worker: String,
    pub shard: String,
    pub key: String,
    pub data: String,
    pub sequence: String,
    pub sub_sequence: u64,
    pub at: Instant,
}

/// One call of a processor on a shard, from start to return (or cancellation).
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Busy {
    pub worker: String,
    pub shard: String,
    pub start: Instant,
    /// `None` while the call is still running.
    pub end: Option<Instant>,
}

/// A checkpoint the processor was told succeeded.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Acked {
    pub worker: String,
    pub shard: String,
    pub sequence: String,
    pub at: Instant,
}

/// A test's action run from inside a processor.
pub struct Hook(pub Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

/// Logs a processor call from its start; its end when dropped, so a cancelled call counts too.
struct BusyGuard<'a> {
    log: &'a Log,
    index: usize,
}

impl<'a> BusyGuard<'a> {
    fn new(log: &'a Log, worker: &str, shard: &str) -> Self {
        let mut busy = log.busy.lock().unwrap();
        busy.push(Busy {
            worker: worker.to_owned(),
            shard: shard.to_owned(),
            start: Instant::now(),
            end: None,
        });
        Self {
            log,
            index: busy.len() - 1,
        }
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.log.busy.lock().unwrap()[self.index].end = Some(Instant::now());
    }
}

/// Everything every processor saw or did, shared by a test's workers.
#[derive(Debug, Default)]
pub struct Log {
    /// Processor calls, to check no two workers processed a shard at once.
    pub busy: Mutex<Vec<Busy>>,
    /// Checkpoints acknowledged to processors.
    pub acked: Mutex<Vec<Acked>>,
    /// Runs once, right before the next checkpoint of any processor.
    pub before_checkpoint: Mutex<Option<Hook>>,
    /// Extra time each `process_records` takes, in milliseconds.
    pub process_delay_ms: std::sync::atomic::AtomicU64,
    pub deliveries: Mutex<Vec<Delivery>>,
    pub events: Mutex<Vec<String>>,
    /// Batches to fail before succeeding (counted down across the fleet).
    pub fail_batches: AtomicUsize,
    /// Whether processors checkpoint after each batch (else only at shutdown/shard end).
    pub no_batch_checkpoints: std::sync::atomic::AtomicBool,
    /// Whether `shutdown_requested` never returns.
    pub hang_on_shutdown: std::sync::atomic::AtomicBool,
    /// Whether the next batch panics the processor.
    pub panic_once: std::sync::atomic::AtomicBool,
}

impl Log {
    pub fn data(&self) -> Vec<String> {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.data.clone())
            .collect()
    }

    pub fn event(&self, e: String) {
        self.events.lock().unwrap().push(e);
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// Pairs of calls of different workers on one shard that overlapped in time (a call still
    /// running counts as running until now).
    pub fn overlaps(&self) -> Vec<(Busy, Busy)> {
        let now = Instant::now();
        let busy: Vec<Busy> = self
            .busy
            .lock()
            .unwrap()
            .iter()
            .map(|b| Busy {
                end: Some(b.end.unwrap_or(now)),
                ..b.clone()
            })
            .collect();
        let mut found = Vec::new();
        for (i, a) in busy.iter().enumerate() {
            for b in &busy[i + 1..] {
                if a.shard == b.shard
                    && a.worker != b.worker
                    && Some(a.start) < b.end
                    && Some(b.start) < a.end
                {
                    found.push((a.clone(), b.clone()));
                }
            }
        }
        found
    }

    /// Records delivered again after a checkpoint covering them was acknowledged (to anyone)
    /// before the delivery: a lost checkpoint.
    pub fn redelivered_after_ack(&self) -> Vec<Delivery> {
        let acked = self.acked.lock().unwrap().clone();
        let deliveries = self.deliveries.lock().unwrap().clone();
        deliveries
            .into_iter()
            .filter(|d| {
                acked.iter().any(|a| {
                    a.shard == d.shard
                        && a.at < d.at
                        && kcl::leases::SequenceNumber::new(&*d.sequence, d.sub_sequence)
                            <= kcl::leases::SequenceNumber::new(&*a.sequence, u64::MAX)
                })
            })
            .collect()
    }

    /// Whether every delivery of each item of `expected` is covered by a checkpoint of its shard
    /// that was acknowledged afterwards.
    pub fn all_checkpointed(&self, expected: &[String]) -> bool {
        let acked = self.acked.lock().unwrap().clone();
        let deliveries = self.deliveries.lock().unwrap().clone();
        expected.iter().all(|item| {
            let mine: Vec<&Delivery> = deliveries.iter().filter(|d| &d.data == item).collect();
            !mine.is_empty()
                && mine.iter().all(|d| {
                    acked.iter().any(|a| {
                        a.shard == d.shard
                            && a.at >= d.at
                            && kcl::leases::SequenceNumber::new(&*d.sequence, d.sub_sequence)
                                <= kcl::leases::SequenceNumber::new(&*a.sequence, u64::MAX)
                    })
                })
        })
    }

    /// Whether every item of `expected` was delivered.
    pub fn has_all(&self, expected: &[String]) -> bool {
        let data: std::collections::HashSet<String> = self.data().into_iter().collect();
        expected.iter().all(|e| data.contains(e))
    }
}

#[derive(Debug)]
pub struct Recorder {
    worker: String,
    shard: String,
    log: Arc<Log>,
}

impl RecordProcessor for Recorder {
    async fn initialize(&mut self, input: kcl::InitializationInput) -> Result<(), ProcessorError> {
        self.log.event(format!(
            "init {} {} {}",
            self.worker, self.shard, input.checkpoint
        ));
        Ok(())
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let _busy = BusyGuard::new(&self.log, &self.worker, &self.shard);
        {
            let mut deliveries = self.log.deliveries.lock().unwrap();
            for r in &input.records {
                deliveries.push(Delivery {
                    worker: self.worker.clone(),
                    shard: self.shard.clone(),
                    key: r.partition_key.clone(),
                    data: String::from_utf8_lossy(&r.data).into_owned(),
                    sequence: r.sequence_number.clone(),
                    sub_sequence: r.sub_sequence_number,
                    at: Instant::now(),
                });
            }
        }
        if self.log.panic_once.swap(false, Ordering::SeqCst) {
            panic!("injected processor panic");
        }
        let fail = self
            .log
            .fail_batches
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            self.log.event(format!("fail {}", self.shard));
            return Err("injected failure".into());
        }
        let delay = self.log.process_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if !self.log.no_batch_checkpoints.load(Ordering::SeqCst) {
            let hook = self.log.before_checkpoint.lock().unwrap().take();
            if let Some(Hook(hook)) = hook {
                hook();
            }
            match checkpointer.checkpoint().await {
                Ok(()) => {
                    if let Some(last) = input.records.last() {
                        self.log.acked.lock().unwrap().push(Acked {
                            worker: self.worker.clone(),
                            shard: self.shard.clone(),
                            sequence: last.sequence_number.clone(),
                            at: Instant::now(),
                        });
                    }
                }
                Err(e) => {
                    self.log.event(format!(
                        "checkpoint-error {} {} lost={}",
                        self.worker,
                        self.shard,
                        e.is_lease_lost()
                    ));
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn lease_lost(&mut self) {
        self.log
            .event(format!("lease_lost {} {}", self.worker, self.shard));
    }

    async fn shard_ended(&mut self, checkpointer: &mut Checkpointer) -> Result<(), ProcessorError> {
        let _busy = BusyGuard::new(&self.log, &self.worker, &self.shard);
        self.log
            .event(format!("shard_ended {} {}", self.worker, self.shard));
        checkpointer.checkpoint().await?;
        Ok(())
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let _busy = BusyGuard::new(&self.log, &self.worker, &self.shard);
        self.log
            .event(format!("shutdown {} {}", self.worker, self.shard));
        if self.log.hang_on_shutdown.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

#[derive(Debug)]
pub struct Factory {
    worker: String,
    log: Arc<Log>,
}

impl Factory {
    /// Processors of worker `worker` logging into `log`.
    #[allow(dead_code)]
    pub fn new(worker: &str, log: &Arc<Log>) -> Self {
        Self {
            worker: worker.to_owned(),
            log: log.clone(),
        }
    }
}

impl RecordProcessorFactory for Factory {
    type Processor = Recorder;
    fn create(&self, shard_id: &str) -> Recorder {
        Recorder {
            worker: self.worker.clone(),
            shard: shard_id.to_owned(),
            log: self.log.clone(),
        }
    }
}

pub struct Worker {
    pub scheduler: Arc<Scheduler<Factory>>,
    pub task: tokio::task::JoinHandle<kcl::Result<()>>,
}

impl Worker {
    pub fn start(
        env: &Env,
        app: &str,
        stream: &str,
        id: &str,
        log: &Arc<Log>,
        config: Config,
    ) -> Self {
        Self::start_with(env, env.ddb.clone(), app, stream, id, log, config)
    }

    /// A worker reaching DynamoDB through `ddb`.
    pub fn start_with(
        env: &Env,
        ddb: aws_sdk_dynamodb::Client,
        app: &str,
        stream: &str,
        id: &str,
        log: &Arc<Log>,
        config: Config,
    ) -> Self {
        let scheduler = Arc::new(
            Scheduler::builder()
                .application(app)
                .stream(stream)
                .worker_id(id)
                .kinesis(env.kinesis.clone())
                .dynamodb(ddb)
                .processor_factory(Factory {
                    worker: id.to_owned(),
                    log: log.clone(),
                })
                .config(config)
                .build()
                .unwrap(),
        );
        let runner = scheduler.clone();
        let task = tokio::spawn(async move { runner.run().await });
        Self { scheduler, task }
    }

    /// Crash: stop at once, leases left to expire.
    pub fn kill(self) {
        self.task.abort();
    }

    /// Graceful shutdown.
    pub async fn stop(self) {
        self.scheduler.shutdown();
        self.task.await.unwrap().unwrap();
    }
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether each lease's owner in `owners` runs a consumer on it (a lease just taken from another
/// worker may still wait for the previous owner's lease to run out).
pub fn owners_started(log: &Log, owners: &HashMap<String, Option<String>>) -> bool {
    let events = log.events();
    owners.iter().all(|(shard, owner)| {
        owner.as_ref().is_some_and(|o| {
            events
                .iter()
                .any(|e| e.starts_with(&format!("init {o} {shard} ")))
        })
    })
}

/// Count of leases per owner.
pub fn per_owner(owners: &HashMap<String, Option<String>>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for owner in owners.values().flatten() {
        *counts.entry(owner.clone()).or_default() += 1;
    }
    counts
}

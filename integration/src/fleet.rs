//! A fleet of `kcl` workers computing the quickstart's features, with a switch to freeze a
//! worker in the middle of a batch before it is killed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use examples::features::{FeatureProcessor, Shared};
use kcl::{
    Checkpointer, Config, InitialPosition, ProcessRecordsInput, ProcessorError, RecordProcessor,
    RecordProcessorFactory, Scheduler,
};

use crate::TestEnv;

/// When on, a worker's processors apply the next batch and then hang before checkpointing:
/// the worker is in the middle of a batch, as when a host dies while processing.
#[derive(Clone, Debug, Default)]
pub struct StallSwitch(Arc<AtomicBool>);

impl StallSwitch {
    /// Freezes the worker's processors at their next batch.
    pub fn stall(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The features processor, checkpointing after every batch unless stalled.
#[derive(Debug)]
pub struct Processor {
    inner: FeatureProcessor,
    stall: StallSwitch,
}

impl RecordProcessor for Processor {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        self.inner.apply(&input.records);
        if self.stall.is_on() {
            // Processed but never checkpointed: the next owner must deliver these again.
            std::future::pending::<()>().await;
        }
        checkpointer.checkpoint().await?;
        Ok(())
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

/// Creates one [`Processor`] per shard for one worker.
#[derive(Debug)]
pub struct Factory {
    shared: Shared,
    stall: StallSwitch,
}

impl RecordProcessorFactory for Factory {
    type Processor = Processor;

    fn create(&self, _shard_id: &str) -> Processor {
        Processor {
            inner: FeatureProcessor::new(self.shared.clone()),
            stall: self.stall.clone(),
        }
    }
}

/// One running worker.
#[derive(Debug)]
pub struct Worker {
    /// Its id (the lease owner name).
    pub id: String,
    /// Freezes it mid-batch.
    pub stall: StallSwitch,
    scheduler: Arc<Scheduler<Factory>>,
    task: tokio::task::JoinHandle<kcl::Result<()>>,
}

/// Workers of one application reading one stream, sharing one [`Shared`] state.
#[derive(Debug)]
pub struct Fleet {
    /// The running workers.
    pub workers: Vec<Worker>,
    /// What every processor saw.
    pub shared: Shared,
    /// The configuration every worker starts with.
    config: Config,
}

/// Short timings so a fleet converges and fails over within seconds.
pub fn test_config() -> Config {
    Config {
        failover_time: Duration::from_millis(2000),
        shard_sync_interval: Duration::from_millis(500),
        // 4 reads/s per shard, under Kinesis' 5 GetRecords/s.
        idle_time_between_reads: Duration::from_millis(250),
        initial_position: InitialPosition::TrimHorizon,
        shutdown_timeout: Duration::from_secs(10),
        processing_retry: kcl::RetryPolicy {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
        },
        ..Config::default()
    }
}

impl Fleet {
    /// Starts `n` workers named `worker-1`... of application `app` on `stream`, with
    /// [`test_config`].
    pub fn start(env: &TestEnv, app: &str, stream: &str, n: usize, shared: &Shared) -> Self {
        Self::start_with(env, app, stream, n, shared, test_config())
    }

    /// Starts `n` workers as [`Fleet::start`] does, with `config`.
    pub fn start_with(
        env: &TestEnv,
        app: &str,
        stream: &str,
        n: usize,
        shared: &Shared,
        config: Config,
    ) -> Self {
        let mut fleet = Self {
            workers: Vec::new(),
            shared: shared.clone(),
            config,
        };
        for i in 1..=n {
            fleet.add(env, app, stream, &format!("worker-{i}"));
        }
        fleet
    }

    /// Starts one more worker.
    pub fn add(&mut self, env: &TestEnv, app: &str, stream: &str, id: &str) {
        let stall = StallSwitch::default();
        let scheduler = Arc::new(
            Scheduler::new(
                env.kinesis.clone(),
                env.ddb.clone(),
                app,
                stream,
                id,
                Factory {
                    shared: self.shared.clone(),
                    stall: stall.clone(),
                },
                self.config.clone(),
            )
            .expect("scheduler configuration"),
        );
        let runner = scheduler.clone();
        let task = tokio::spawn(async move { runner.run().await });
        self.workers.push(Worker {
            id: id.to_owned(),
            stall,
            scheduler,
            task,
        });
    }

    /// The stream consumer each worker reads through (`None` when polling, or before it
    /// registered or found it).
    pub fn consumer_arns(&self) -> Vec<Option<String>> {
        self.workers
            .iter()
            .map(|w| w.scheduler.consumer_arn())
            .collect()
    }

    /// Kills the worker at `index` at once (its leases are left to expire); returns its id.
    pub fn kill(&mut self, index: usize) -> String {
        let worker = self.workers.remove(index);
        worker.task.abort();
        worker.id
    }

    /// Stops every worker gracefully; panics if one fails or hangs.
    pub async fn stop(self) {
        for worker in self.workers {
            worker.scheduler.shutdown();
            tokio::time::timeout(Duration::from_secs(30), worker.task)
                .await
                .unwrap_or_else(|_| panic!("{} did not stop", worker.id))
                .expect("worker task")
                .unwrap_or_else(|e| panic!("{} failed: {e}", worker.id));
        }
    }

    /// Waits until every acknowledged record was processed, at most `timeout`.
    pub async fn wait_caught_up(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.shared.caught_up() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.shared.caught_up()
    }
}

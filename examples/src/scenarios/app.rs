//! A `kcl` application worker running in a task, stopped gracefully.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use kcl::{RecordProcessorFactory, Scheduler};

use super::Clients;

/// One worker of a consumer application, running until [`Worker::stop`].
#[derive(Debug)]
pub struct Worker<F: RecordProcessorFactory> {
    scheduler: Arc<Scheduler<F>>,
    task: tokio::task::JoinHandle<kcl::Result<()>>,
}

impl<F: RecordProcessorFactory> Worker<F> {
    /// Starts worker `worker_id` of application `app` (whose lease table has the same name) on
    /// `stream`.
    pub fn start(
        clients: &Clients,
        app: &str,
        stream: &str,
        worker_id: &str,
        factory: F,
        config: kcl::Config,
    ) -> Result<Self> {
        let scheduler = Arc::new(
            Scheduler::new(
                clients.kinesis.clone(),
                clients.dynamodb.clone(),
                app,
                stream,
                worker_id,
                factory,
                config,
            )
            .with_context(|| format!("configuring {app}/{worker_id}"))?,
        );
        let runner = scheduler.clone();
        let task = tokio::spawn(async move { runner.run().await });
        Ok(Self { scheduler, task })
    }

    /// Stops gracefully: processors get `shutdown_requested` (and checkpoint), leases are given
    /// up. Fails if the worker had stopped with an error or does not stop within 20 s.
    pub async fn stop(self) -> Result<()> {
        self.scheduler.shutdown();
        let id = self.scheduler.worker_id().to_owned();
        match tokio::time::timeout(Duration::from_secs(20), self.task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(anyhow!(e).context(format!("worker {id} failed"))),
            Ok(Err(e)) => Err(anyhow!(e).context(format!("worker {id} task failed"))),
            Err(_) => Err(anyhow!("worker {id} did not stop within 20s")),
        }
    }
}

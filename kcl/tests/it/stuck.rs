//! Liveness: a processor stuck in one call longer than `max_processing_time` makes its worker
//! give the lease up, so another worker takes the shard over instead of waiting forever.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcl::{Checkpointer, Config, ProcessRecordsInput, ProcessorError, RecordProcessor, Scheduler};

use crate::common::{Env, eventually, fast_config};

#[derive(Default)]
struct Seen {
    /// (worker, data) of records processed.
    processed: Mutex<Vec<(String, String)>>,
    events: Mutex<Vec<String>>,
}

/// Hangs forever in `process_records` (or `initialize`) on worker "a"; processes elsewhere.
struct Hanging {
    worker: String,
    seen: Arc<Seen>,
    hang_in_initialize: bool,
}

impl Hanging {
    async fn hang_here(&self) {
        if self.worker == "a" {
            std::future::pending::<()>().await;
        }
    }
}

impl RecordProcessor for Hanging {
    async fn initialize(&mut self, _: kcl::InitializationInput) -> Result<(), ProcessorError> {
        self.seen
            .events
            .lock()
            .unwrap()
            .push(format!("init {}", self.worker));
        if self.hang_in_initialize {
            self.hang_here().await;
        }
        Ok(())
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        self.hang_here().await;
        self.seen
            .processed
            .lock()
            .unwrap()
            .extend(input.records.iter().map(|r| {
                (
                    self.worker.clone(),
                    String::from_utf8_lossy(&r.data).into_owned(),
                )
            }));
        checkpointer.checkpoint().await?;
        Ok(())
    }

    async fn lease_lost(&mut self) {
        self.seen
            .events
            .lock()
            .unwrap()
            .push(format!("lease_lost {}", self.worker));
    }
}

type Factory = Box<dyn Fn(&str) -> Hanging + Send + Sync>;

fn worker(
    env: &Env,
    id: &str,
    seen: &Arc<Seen>,
    in_initialize: bool,
    config: Config,
) -> (
    Arc<Scheduler<Factory>>,
    tokio::task::JoinHandle<kcl::Result<()>>,
) {
    let (seen, worker) = (seen.clone(), id.to_owned());
    let factory: Factory = Box::new(move |_: &str| Hanging {
        worker: worker.clone(),
        seen: seen.clone(),
        hang_in_initialize: in_initialize,
    });
    let scheduler = Arc::new(
        Scheduler::new(
            env.kinesis.clone(),
            env.ddb.clone(),
            "app",
            "s",
            id,
            factory,
            config,
        )
        .unwrap(),
    );
    let runner = scheduler.clone();
    (scheduler, tokio::spawn(async move { runner.run().await }))
}

async fn stuck_case(in_initialize: bool, fan_out: bool) {
    let env = Env::start().await;
    env.create_stream("s", 1).await;
    env.put("s", "k", "one").await;
    let seen = Arc::new(Seen::default());
    let config = Config {
        max_processing_time: Some(Duration::from_millis(700)),
        retrieval: if fan_out {
            kcl::Retrieval::fan_out()
        } else {
            kcl::Retrieval::Polling
        },
        ..fast_config()
    };
    let (a, a_task) = worker(&env, "a", &seen, in_initialize, config.clone());
    eventually(Duration::from_secs(20), "a holds the lease", async || {
        env.owners("app")
            .await
            .values()
            .any(|o| o.as_deref() == Some("a"))
    })
    .await;
    let (b, b_task) = worker(&env, "b", &seen, in_initialize, config);
    eventually(
        Duration::from_secs(20),
        "b processes the record",
        async || {
            seen.processed
                .lock()
                .unwrap()
                .contains(&("b".to_owned(), "one".to_owned()))
        },
    )
    .await;
    env.put("s", "k", "two").await;
    eventually(
        Duration::from_secs(20),
        "b processes the next record",
        async || {
            seen.processed
                .lock()
                .unwrap()
                .contains(&("b".to_owned(), "two".to_owned()))
        },
    )
    .await;
    let events = seen.events.lock().unwrap().clone();
    assert!(events.contains(&"lease_lost a".to_owned()), "{events:?}");
    assert!(
        seen.processed.lock().unwrap().iter().all(|(w, _)| w == "b"),
        "the stuck worker processed nothing"
    );
    a.shutdown();
    b.shutdown();
    a_task.await.unwrap().unwrap();
    b_task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_process_records_gives_the_lease_to_another_worker() {
    stuck_case(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_initialize_gives_the_lease_to_another_worker_with_fan_out() {
    stuck_case(true, true).await;
}

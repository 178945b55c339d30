//! [`Load`]: a `kpl` producer putting the clickstream at a steady rate in the background.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use examples::clickstream::Generator;
use examples::features::Shared;

/// A background producer; every acknowledged record is recorded in the [`Shared`] ledger.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    producer: kpl::Producer,
    pending: Arc<AtomicU64>,
    shared: Shared,
}

/// The producer configuration the suite uses: per-key order kept across retries.
pub fn producer_config() -> kpl::Config {
    kpl::Config {
        preserve_order: true,
        ..kpl::Config::default()
    }
}

impl Load {
    /// Starts putting `rate` events/s from `users` users into `stream`.
    pub async fn start(
        kinesis: &aws_sdk_kinesis::Client,
        stream: &str,
        config: kpl::Config,
        rate: u64,
        users: usize,
        shared: &Shared,
    ) -> Self {
        let producer = kpl::Producer::new(kinesis.clone(), stream, config)
            .await
            .expect("producer start");
        let stop = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(
            producer.clone(),
            rate,
            users,
            shared.clone(),
            stop.clone(),
            pending.clone(),
        ));
        Self {
            stop,
            task,
            producer,
            pending,
            shared: shared.clone(),
        }
    }

    /// Stops putting, delivers what is buffered, and waits for every outcome.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("load task");
        self.producer.flush_all(Duration::from_secs(60)).await;
        // Each record shutdown hands back also fails its delivery future, which `run` counts;
        // adding them here too counted every failure twice.
        let _unsent = self.producer.shutdown(Duration::from_secs(5)).await;
        while self.pending.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn run(
    producer: kpl::Producer,
    rate: u64,
    users: usize,
    shared: Shared,
    stop: Arc<AtomicBool>,
    pending: Arc<AtomicU64>,
) {
    let mut generator = Generator::new(users, 7);
    let started = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due && !stop.load(Ordering::SeqCst) {
            let event = generator.next_event();
            sent += 1;
            let record = kpl::Record::new(event.user.clone(), event.to_bytes());
            pending.fetch_add(1, Ordering::SeqCst);
            match producer.put(record).await {
                Ok(delivery) => {
                    let (shared, pending) = (shared.clone(), pending.clone());
                    tokio::spawn(async move {
                        match delivery.await {
                            Ok(_) => shared.acked(event.user, event.seq),
                            Err(_) => shared.lock().producer_failures += 1,
                        }
                        pending.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(_) => {
                    shared.lock().producer_failures += 1;
                    pending.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! Producing a generated workload at a steady rate with `kpl`, keeping what was acknowledged.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::Instant;

/// What a paced run delivered.
#[derive(Debug)]
pub struct Produced<T> {
    /// The items whose record the producer got acknowledged, in the order they were put.
    pub acked: Vec<T>,
    /// Records the producer finally failed to deliver.
    pub failures: u64,
}

/// A producer configuration that keeps each partition key's records in order even across
/// retries (the scenarios rely on per-key order; the KPL's default lets a retry overtake).
pub fn ordered_config() -> kpl::Config {
    kpl::Config {
        preserve_order: true,
        ..kpl::Config::default()
    }
}

/// Puts `rate` records per second for `duration`, each made by `next` along with the item it
/// stands for, then waits until every put is settled.
pub async fn paced<T>(
    producer: &kpl::Producer,
    rate: u64,
    duration: Duration,
    mut next: impl FnMut() -> (kpl::Record, T),
) -> Result<Produced<T>> {
    let total = (rate as f64 * duration.as_secs_f64()).ceil() as u64;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(total as usize);
    let mut failures = 0;
    let mut sent = 0u64;
    while sent < total {
        // Catch up with the schedule, in 10 ms steps so the rate is smooth.
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let (record, item) = next();
            sent += 1;
            match producer.put(record).await {
                Ok(delivery) => pending.push((delivery, item)),
                Err(_) => failures += 1,
            }
        }
        if sent < total {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    producer.flush();
    let mut acked = Vec::with_capacity(pending.len());
    for (delivery, item) in pending {
        // Each future resolves on its own; awaiting them in put order keeps `acked` in order.
        match delivery.await {
            Ok(_) => acked.push(item),
            Err(_) => failures += 1,
        }
    }
    Ok(Produced { acked, failures })
}

/// Starts an order-preserving producer for `stream`.
pub async fn producer(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> Result<kpl::Producer> {
    kpl::Producer::new(kinesis.clone(), stream, ordered_config())
        .await
        .with_context(|| format!("starting a producer for {stream}"))
}

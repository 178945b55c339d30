//! The soak's producer: a steady `kpl` load whose every record carries a unique payload id, with
//! each acknowledgement kept (key, shard, sequence number) for the final comparison.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::check::Ack;

/// What the producer has seen so far.
#[derive(Debug, Default)]
pub struct Produced {
    /// Acknowledged records.
    pub acks: Mutex<Vec<Ack>>,
    /// Records handed to the producer.
    pub sent: AtomicU64,
    /// Records that finally failed.
    pub failed: AtomicU64,
    /// Set to stop [`produce`].
    pub stop: AtomicBool,
}

impl Produced {
    /// Acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Puts `rate` records per second over `keys` partition keys (`key-0`...) until `produced.stop`;
/// record `n` has data `n` (its payload id). Deliveries still in flight when it returns keep
/// updating `produced`.
pub async fn produce(producer: &kpl::Producer, rate: u64, keys: u64, produced: Arc<Produced>) {
    let started = Instant::now();
    let keys = keys.max(1);
    let mut n = 0u64;
    while !produced.stop.load(Ordering::SeqCst) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while n < due && !produced.stop.load(Ordering::SeqCst) {
            let id = n;
            n += 1;
            let key = format!("key-{}", id % keys);
            produced.sent.fetch_add(1, Ordering::Relaxed);
            match producer
                .put(kpl::Record::new(key.clone(), id.to_string()))
                .await
            {
                Ok(delivery) => {
                    let produced = produced.clone();
                    tokio::spawn(async move {
                        match delivery.await {
                            Ok(d) => match d.sequence_number.parse::<u128>() {
                                Ok(sequence) => {
                                    produced
                                        .acks
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .push(Ack {
                                            id,
                                            key,
                                            shard: d.shard_id,
                                            sequence,
                                            sub_sequence: d.sub_sequence_number.unwrap_or(0),
                                        });
                                }
                                Err(_) => {
                                    eprintln!(
                                        "record {id}: unreadable sequence number {}",
                                        d.sequence_number
                                    );
                                    produced.failed.fetch_add(1, Ordering::Relaxed);
                                }
                            },
                            Err(_) => {
                                produced.failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
                Err(_) => {
                    produced.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! Log lines and the services that write them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Services, each with the share of its lines that are errors.
pub const SERVICES: &[(&str, f64)] = &[
    ("checkout", 0.02),
    ("search", 0.05),
    ("auth", 0.01),
    ("payments", 0.10),
];

/// Hosts per service.
pub const HOSTS: usize = 3;

/// Severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something failed.
    Error,
}

/// One log line, as the log shipper on a host sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `service/host`: the partition key, so each host's lines stay in order.
    pub source: String,
    /// The service.
    pub service: String,
    /// The host's line counter, from 0.
    pub seq: u64,
    /// Severity.
    pub level: Level,
    /// The message.
    pub message: String,
}

/// Generates lines of random hosts of [`SERVICES`], reproducible from a seed.
#[derive(Debug)]
pub struct Shippers {
    rng: StdRng,
    next_seq: Vec<u64>,
}

impl Shippers {
    /// Shippers on every host, reproducible from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            next_seq: vec![0; SERVICES.len() * HOSTS],
        }
    }

    /// The next line.
    pub fn next_line(&mut self) -> LogLine {
        let n = self.rng.random_range(0..self.next_seq.len());
        let (service, error_rate) = SERVICES[n / HOSTS];
        let error = self.rng.random_bool(error_rate);
        let seq = self.next_seq[n];
        self.next_seq[n] += 1;
        let latency = self.rng.random_range(1..500);
        LogLine {
            source: format!("{service}/host-{}", n % HOSTS),
            service: service.to_owned(),
            seq,
            level: if error { Level::Error } else { Level::Info },
            message: if error {
                format!("request failed after {latency} ms: upstream timeout")
            } else {
                format!("request served in {latency} ms")
            },
        }
    }
}

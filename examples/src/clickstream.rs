//! The clickstream workload: users clicking through a shop.
//!
//! Each event carries its user's own sequence number, so a consumer can tell an in-order event
//! from a replay (duplicate) or a reordering.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

const PAGES: &[&str] = &[
    "/home",
    "/search",
    "/product",
    "/reviews",
    "/cart",
    "/checkout",
    "/account",
    "/help",
];

/// One click.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// User id, also the partition key.
    pub user: String,
    /// This user's event number, from 0, with no gaps.
    pub seq: u64,
    /// Page viewed.
    pub page: String,
    /// Milliseconds since the generator started.
    pub at_ms: u64,
}

impl Event {
    /// The event as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a plain struct of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses an event from JSON bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Generates events for `users` users picked at random, numbering each user's events.
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
    next_seq: Vec<u64>,
    started: std::time::Instant,
}

impl Generator {
    /// A generator over `users` users (at least one).
    pub fn new(users: usize, seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            next_seq: vec![0; users.max(1)],
            started: std::time::Instant::now(),
        }
    }

    /// The user id for user number `n`.
    pub fn user_id(n: usize) -> String {
        format!("user-{n:05}")
    }

    /// The next event.
    pub fn next_event(&mut self) -> Event {
        let n = self.rng.random_range(0..self.next_seq.len());
        let seq = self.next_seq[n];
        self.next_seq[n] += 1;
        Event {
            user: Self::user_id(n),
            seq,
            page: PAGES[self.rng.random_range(0..PAGES.len())].to_owned(),
            at_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_number_per_user() {
        let mut g = Generator::new(3, 7);
        let events: Vec<Event> = (0..100).map(|_| g.next_event()).collect();
        for e in &events {
            assert_eq!(&Event::parse(&e.to_bytes()).unwrap(), e);
        }
        for n in 0..3 {
            let seqs: Vec<u64> = events
                .iter()
                .filter(|e| e.user == Generator::user_id(n))
                .map(|e| e.seq)
                .collect();
            assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
        }
    }
}

//! Click events, their generator, and the per-user features folded from them.

use std::collections::{BTreeSet, HashMap, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Pages of the simulated shop.
pub const PAGES: &[&str] = &[
    "/home",
    "/search",
    "/product",
    "/reviews",
    "/cart",
    "/checkout",
    "/account",
    "/help",
];

/// A gap in a user's activity longer than this starts a new session (the common 30 minutes).
pub const SESSION_GAP_MS: u64 = 30 * 60 * 1000;

/// One click, as the web tier sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Click {
    /// User id, also the partition key.
    pub user: String,
    /// The user's own event counter (from 0, no gaps), as client analytics SDKs number events.
    /// It identifies the event even when the producer retries it into a second Kinesis record.
    pub seq: u64,
    /// Page viewed.
    pub page: String,
    /// Event time, in simulated milliseconds since the epoch (so sessions happen in a short run).
    pub ts_ms: u64,
}

/// Generates clicks of `users` users picked at random, with simulated event times: mostly
/// seconds apart, sometimes more than [`SESSION_GAP_MS`], so users have several sessions.
#[derive(Debug)]
pub struct ClickGenerator {
    rng: StdRng,
    /// Per user: next seq and current event time.
    users: Vec<(u64, u64)>,
}

impl ClickGenerator {
    /// A generator over `users` users (at least one), reproducible from `seed`.
    pub fn new(users: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let users = (0..users.max(1))
            .map(|_| (0, 1_700_000_000_000 + rng.random_range(0..3_600_000)))
            .collect();
        Self { rng, users }
    }

    /// The next click.
    pub fn next_click(&mut self) -> Click {
        let n = self.rng.random_range(0..self.users.len());
        let long_gap = self.rng.random_bool(0.1);
        let gap = if long_gap {
            self.rng
                .random_range(SESSION_GAP_MS + 1..4 * SESSION_GAP_MS)
        } else {
            self.rng.random_range(1_000..120_000)
        };
        let page = PAGES[self.rng.random_range(0..PAGES.len())].to_owned();
        let (seq, ts) = &mut self.users[n];
        let click = Click {
            user: format!("user-{n:04}"),
            seq: *seq,
            page,
            ts_ms: *ts,
        };
        *seq += 1;
        *ts += gap;
        click
    }
}

/// The features of one user, as stored in the feature table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Features {
    /// The user.
    pub user: String,
    /// `seq` of the last click applied: the idempotency guard.
    pub last_seq: u64,
    /// Clicks applied.
    pub clicks: u64,
    /// The pages of the last `recent` clicks, oldest first.
    pub recent_pages: VecDeque<String>,
    /// Every page the user ever viewed.
    pub distinct_pages: BTreeSet<String>,
    /// Event time of the last click.
    pub last_seen_ms: u64,
    /// Sessions (runs of clicks with gaps of at most [`SESSION_GAP_MS`]).
    pub sessions: u64,
}

impl Features {
    /// The features after a user's first click.
    pub fn first(click: &Click) -> Self {
        Self {
            user: click.user.clone(),
            last_seq: click.seq,
            clicks: 1,
            recent_pages: VecDeque::from([click.page.clone()]),
            distinct_pages: BTreeSet::from([click.page.clone()]),
            last_seen_ms: click.ts_ms,
            sessions: 1,
        }
    }

    /// Applies `click` unless it was applied already (its `seq` is not newer than `last_seq`),
    /// keeping the last `recent` pages. Returns whether it was applied.
    pub fn apply(&mut self, click: &Click, recent: usize) -> bool {
        if click.seq <= self.last_seq {
            return false;
        }
        self.last_seq = click.seq;
        self.clicks += 1;
        self.recent_pages.push_back(click.page.clone());
        while self.recent_pages.len() > recent.max(1) {
            self.recent_pages.pop_front();
        }
        self.distinct_pages.insert(click.page.clone());
        if click.ts_ms.saturating_sub(self.last_seen_ms) > SESSION_GAP_MS {
            self.sessions += 1;
        }
        self.last_seen_ms = self.last_seen_ms.max(click.ts_ms);
        true
    }

    /// Checkouts among the recent pages: a typical "intent" feature.
    pub fn recent_checkouts(&self) -> usize {
        self.recent_pages
            .iter()
            .filter(|p| *p == "/checkout")
            .count()
    }
}

/// Features recomputed from scratch from clicks in the order they were produced: what the
/// stored table must hold once the consumers caught up.
pub fn recompute(clicks: &[Click], recent: usize) -> HashMap<String, Features> {
    let mut out: HashMap<String, Features> = HashMap::new();
    for click in clicks {
        match out.get_mut(&click.user) {
            Some(features) => {
                features.apply(click, recent);
            }
            None => {
                out.insert(click.user.clone(), Features::first(click));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(seq: u64, page: &str, ts_ms: u64) -> Click {
        Click {
            user: "u".into(),
            seq,
            page: page.into(),
            ts_ms,
        }
    }

    #[test]
    fn features_fold_and_ignore_replays() {
        let gap = SESSION_GAP_MS + 1;
        let clicks = [
            click(0, "/home", 0),
            click(1, "/cart", 1_000),
            click(2, "/checkout", 1_000 + gap),
            click(1, "/cart", 1_000), // a replay
            click(3, "/home", 2_000 + gap),
        ];
        let f = &recompute(&clicks, 3)["u"];
        assert_eq!(f.last_seq, 3);
        assert_eq!(f.clicks, 4);
        assert_eq!(f.recent_pages, ["/cart", "/checkout", "/home"]);
        assert_eq!(f.distinct_pages.len(), 3);
        assert_eq!((f.sessions, f.last_seen_ms), (2, 2_000 + gap));
        assert_eq!(f.recent_checkouts(), 1);
    }

    #[test]
    fn generator_numbers_each_user_and_is_reproducible() {
        let a: Vec<Click> = {
            let mut g = ClickGenerator::new(3, 1);
            (0..50).map(|_| g.next_click()).collect()
        };
        let mut g = ClickGenerator::new(3, 1);
        assert!(a.iter().all(|c| *c == g.next_click()));
        let seqs: Vec<u64> = a
            .iter()
            .filter(|c| c.user == "user-0000")
            .map(|c| c.seq)
            .collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    }
}

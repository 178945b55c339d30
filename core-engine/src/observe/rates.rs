//! Per-shard write and read rates for the page, from the counters sampled when someone looks:
//! the page asks every second, so a rate covers about the last second.

use std::collections::HashMap;

use parking_lot::Mutex;
use serde::Serialize;

use crate::storage::StreamId;

/// Samples closer together than this keep the rates of the previous pair.
const MIN_INTERVAL_MS: i64 = 1_000;

/// A shard: its stream's incarnation and its index.
pub(crate) type ShardKey = (StreamId, u32);

/// A shard's cumulative counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) records_in: u64,
    pub(crate) bytes_in: u64,
    /// Read through GetRecords and fan-out together.
    pub(crate) records_out: u64,
    pub(crate) bytes_out: u64,
}

/// Per second, between two samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct ShardRates {
    pub(crate) write_records: f64,
    pub(crate) write_bytes: f64,
    pub(crate) read_records: f64,
    pub(crate) read_bytes: f64,
}

/// The last sample, and the rates it gave.
#[derive(Debug, Default)]
pub(crate) struct Rates {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    taken_ms: Option<i64>,
    last: HashMap<ShardKey, Sample>,
    rates: HashMap<ShardKey, ShardRates>,
}

impl Rates {
    /// Takes a sample at `now_ms` and gives the rates: between this sample and the previous
    /// one if they are at least a second apart (the new sample becoming the previous one),
    /// else those computed last. A shard seen once has no rate yet.
    pub(crate) fn sample(
        &self,
        now_ms: i64,
        samples: impl IntoIterator<Item = (ShardKey, Sample)>,
    ) -> HashMap<ShardKey, ShardRates> {
        let mut inner = self.inner.lock();
        let elapsed = inner.taken_ms.map(|t| now_ms - t);
        if elapsed.is_some_and(|e| e < MIN_INTERVAL_MS) {
            return inner.rates.clone();
        }
        let samples: HashMap<ShardKey, Sample> = samples.into_iter().collect();
        let seconds = elapsed.unwrap_or(0) as f64 / 1000.0;
        let per_second = |now: u64, before: u64| now.saturating_sub(before) as f64 / seconds;
        inner.rates = match elapsed {
            None => HashMap::new(),
            Some(_) => samples
                .iter()
                .filter_map(|(key, now)| {
                    let before = inner.last.get(key)?;
                    Some((
                        *key,
                        ShardRates {
                            write_records: per_second(now.records_in, before.records_in),
                            write_bytes: per_second(now.bytes_in, before.bytes_in),
                            read_records: per_second(now.records_out, before.records_out),
                            read_bytes: per_second(now.bytes_out, before.bytes_out),
                        },
                    ))
                })
                .collect(),
        };
        inner.last = samples;
        inner.taken_ms = Some(now_ms);
        inner.rates.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(records_in: u64, records_out: u64) -> Sample {
        Sample {
            records_in,
            bytes_in: records_in * 100,
            records_out,
            bytes_out: records_out * 100,
        }
    }

    #[test]
    fn rates_cover_the_last_second_or_more() {
        let rates = Rates::default();
        assert!(rates.sample(0, [((1, 0), at(0, 0))]).is_empty());
        // Too soon: nothing new.
        assert!(rates.sample(500, [((1, 0), at(10, 0))]).is_empty());
        let two_seconds = rates.sample(2_000, [((1, 0), at(40, 10)), ((1, 1), at(5, 0))]);
        assert_eq!(
            two_seconds[&(1, 0)],
            ShardRates {
                write_records: 20.0,
                write_bytes: 2_000.0,
                read_records: 5.0,
                read_bytes: 500.0
            }
        );
        // A shard seen for the first time has no rate yet.
        assert!(!two_seconds.contains_key(&(1, 1)));
        let kept = rates.sample(2_100, [((1, 0), at(1_000, 0))]);
        assert_eq!(kept, two_seconds);
        let next = rates.sample(3_000, [((1, 0), at(40, 10)), ((1, 1), at(6, 0))]);
        assert_eq!(next[&(1, 0)].write_records, 0.0);
        assert_eq!(next[&(1, 1)].write_records, 1.0);
    }
}

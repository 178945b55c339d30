//! A queue's delivery state: where it pulls new records from in each shard, and every record
//! pulled but not yet acknowledged, with its receive count, visibility and dead-letter state.
//!
//! A record a queue has pulled is tracked until it is acknowledged (then forgotten: positions
//! before a shard's cursor that are not tracked are acknowledged) or until the stream no longer
//! keeps it. Each receive issues a new delivery number; a receipt handle names the delivery, so
//! a handle stops working once its record is received again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A record of the queue's stream: its shard index and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct RecordKey {
    pub(crate) shard: u32,
    pub(crate) seq: u128,
}

impl RecordKey {
    /// The RecordId the model gives a record: the same in every queue and every delivery.
    pub(crate) fn record_id(self) -> String {
        format!("{:08x}{:032x}", self.shard, self.seq)
    }
}

/// A record pulled into the queue and not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tracked {
    /// Receives since the record entered the queue or was last restored.
    pub(crate) receive_count: u32,
    /// When it was first received (kept across a restore, as the model describes it).
    pub(crate) first_receive_ms: Option<i64>,
    /// Until when it is in flight (invisible).
    pub(crate) visible_at_ms: i64,
    /// Whether it is a dead-letter record.
    pub(crate) dead_letter: bool,
    /// The delivery its newest receipt handle names; 0 before its first receive on its path.
    pub(crate) delivery: u64,
}

/// Why an entry of AcknowledgeQueueRecords and its siblings failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryFault {
    /// The record is no longer in the queue (acknowledged, or past the stream's retention).
    Gone,
    /// The record was received again since this handle was issued.
    Stale,
    /// The handle is for the other path (a dead-letter handle on the normal path, or back).
    WrongPath,
}

/// What the queue does with an entry.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Settle {
    Acknowledge,
    /// Makes the record invisible for this many milliseconds from now.
    Visibility(i64),
    /// Turns a dead-letter record back into a normal one, receive count reset.
    Restore,
}

/// One change of a queue's delivery state, as its journal keeps it (see `queues::store`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DeliveryChange {
    /// A record's state once pulled, received, its visibility changed, turned into a dead
    /// letter or restored.
    Track(RecordKey, Tracked),
    /// A record acknowledged, or past the stream's retention.
    Untrack(RecordKey),
    /// A shard's cursor moved to this position.
    Cursor(u32, u128),
    /// The last delivery number issued.
    Deliveries(u64),
}

/// The delivery state of one queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeliveryState {
    /// Per shard index, the position new records are pulled from (shards that appear later, by
    /// resharding, start at 0: their first record).
    cursors: BTreeMap<u32, u128>,
    #[serde(with = "as_list")]
    tracked: BTreeMap<RecordKey, Tracked>,
    /// The last delivery number issued.
    deliveries: u64,
}

impl DeliveryState {
    /// State that pulls each shard from the position given.
    pub(crate) fn starting_at(cursors: impl IntoIterator<Item = (u32, u128)>) -> Self {
        Self {
            cursors: cursors.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Where new records of `shard` are pulled from.
    pub(crate) fn cursor(&self, shard: u32) -> u128 {
        self.cursors.get(&shard).copied().unwrap_or(0)
    }

    /// Tracks the records just pulled from `shard` and moves its cursor to `next`.
    pub(crate) fn pulled(&mut self, shard: u32, seqs: &[u128], next: u128, now_ms: i64) {
        for &seq in seqs {
            self.tracked
                .entry(RecordKey { shard, seq })
                .or_insert(Tracked {
                    receive_count: 0,
                    first_receive_ms: None,
                    visible_at_ms: now_ms,
                    dead_letter: false,
                    delivery: 0,
                });
        }
        if next > self.cursor(shard) {
            self.cursors.insert(shard, next);
        }
    }

    /// Turns every record received `max_receives` times whose visibility timeout has passed
    /// into a dead-letter record (`None`: dead-letter handling off).
    pub(crate) fn turn_dead_letters(&mut self, now_ms: i64, max_receives: Option<u32>) {
        let Some(max) = max_receives else { return };
        for tracked in self.tracked.values_mut() {
            if !tracked.dead_letter
                && tracked.visible_at_ms <= now_ms
                && tracked.receive_count >= max
            {
                tracked.dead_letter = true;
                tracked.visible_at_ms = now_ms;
                tracked.delivery = 0;
            }
        }
    }

    /// The visible records of one path, oldest position first.
    pub(crate) fn visible(&self, now_ms: i64, dead_letter: bool) -> Vec<RecordKey> {
        self.tracked
            .iter()
            .filter(|(_, t)| t.dead_letter == dead_letter && t.visible_at_ms <= now_ms)
            .map(|(key, _)| *key)
            .collect()
    }

    /// Whether `key` is tracked and visible on its path (`dead_letter`).
    pub(crate) fn is_visible(&self, key: RecordKey, now_ms: i64, dead_letter: bool) -> bool {
        self.tracked
            .get(&key)
            .is_some_and(|t| t.dead_letter == dead_letter && t.visible_at_ms <= now_ms)
    }

    /// Forgets a record the stream no longer keeps.
    pub(crate) fn forget(&mut self, key: RecordKey) {
        self.tracked.remove(&key);
    }

    /// Receives a tracked record: it is in flight for `visibility_ms` under a new delivery
    /// number, which is returned with the record's state.
    pub(crate) fn receive(&mut self, key: RecordKey, now_ms: i64, visibility_ms: i64) -> Tracked {
        self.deliveries += 1;
        let delivery = self.deliveries;
        let tracked = self
            .tracked
            .get_mut(&key)
            .expect("only tracked records are received");
        tracked.receive_count += 1;
        tracked.first_receive_ms.get_or_insert(now_ms);
        tracked.visible_at_ms = now_ms.saturating_add(visibility_ms);
        tracked.delivery = delivery;
        tracked.clone()
    }

    /// Applies `settle` to the record a receipt handle names (`delivery` on path `dead_letter`).
    pub(crate) fn settle(
        &mut self,
        key: RecordKey,
        delivery: u64,
        dead_letter: bool,
        settle: Settle,
        now_ms: i64,
    ) -> Result<(), EntryFault> {
        let tracked = self.tracked.get_mut(&key).ok_or(EntryFault::Gone)?;
        if tracked.dead_letter != dead_letter {
            return Err(EntryFault::WrongPath);
        }
        if tracked.delivery != delivery {
            return Err(EntryFault::Stale);
        }
        match settle {
            Settle::Acknowledge => {
                self.tracked.remove(&key);
            }
            Settle::Visibility(ms) => tracked.visible_at_ms = now_ms.saturating_add(ms),
            Settle::Restore => {
                tracked.dead_letter = false;
                tracked.receive_count = 0;
                tracked.visible_at_ms = now_ms;
                tracked.delivery = 0;
            }
        }
        Ok(())
    }

    /// What changed from `before` to this state: applied to `before` in order, the changes
    /// give this state. Costs a pass over the tracked records, no allocation beyond the
    /// changes.
    pub(crate) fn changes_since(&self, before: &Self) -> Vec<DeliveryChange> {
        let mut out = Vec::new();
        for (&shard, &position) in &self.cursors {
            if before.cursors.get(&shard) != Some(&position) {
                out.push(DeliveryChange::Cursor(shard, position));
            }
        }
        for key in before.tracked.keys() {
            if !self.tracked.contains_key(key) {
                out.push(DeliveryChange::Untrack(*key));
            }
        }
        for (key, tracked) in &self.tracked {
            if before.tracked.get(key) != Some(tracked) {
                out.push(DeliveryChange::Track(*key, tracked.clone()));
            }
        }
        if self.deliveries != before.deliveries {
            out.push(DeliveryChange::Deliveries(self.deliveries));
        }
        out
    }

    /// Applies one change (replaying a journal).
    pub(crate) fn apply(&mut self, change: DeliveryChange) {
        match change {
            DeliveryChange::Track(key, tracked) => {
                self.tracked.insert(key, tracked);
            }
            DeliveryChange::Untrack(key) => {
                self.tracked.remove(&key);
            }
            DeliveryChange::Cursor(shard, position) => {
                self.cursors.insert(shard, position);
            }
            DeliveryChange::Deliveries(n) => self.deliveries = n,
        }
    }

    /// The state of a tracked record.
    #[cfg(test)]
    pub(crate) fn tracked(&self, key: RecordKey) -> Option<&Tracked> {
        self.tracked.get(&key)
    }

    /// How many records are tracked (in flight, waiting for redelivery, or dead letters).
    #[cfg(test)]
    pub(crate) fn tracked_len(&self) -> usize {
        self.tracked.len()
    }
}

/// A map with a structured key, kept as a list of pairs (JSON keys are strings only).
mod as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::{RecordKey, Tracked};

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<RecordKey, Tracked>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<RecordKey, Tracked>, D::Error> {
        Ok(Vec::<(RecordKey, Tracked)>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: RecordKey = RecordKey { shard: 1, seq: 42 };

    fn one_record() -> DeliveryState {
        let mut state = DeliveryState::starting_at([(1, 0)]);
        state.pulled(1, &[42], 43, 0);
        state
    }

    #[test]
    fn a_received_record_is_invisible_until_its_timeout_then_visible_again() {
        let mut state = one_record();
        assert_eq!(state.visible(0, false), vec![KEY]);
        let first = state.receive(KEY, 0, 30_000);
        assert_eq!((first.receive_count, first.delivery), (1, 1));
        assert!(state.visible(29_999, false).is_empty());
        assert_eq!(state.visible(30_000, false), vec![KEY]);
        let second = state.receive(KEY, 30_000, 30_000);
        assert_eq!(second.receive_count, 2);
        assert_eq!(second.first_receive_ms, Some(0));
        // The first handle no longer works.
        let stale = state.settle(KEY, 1, false, Settle::Acknowledge, 30_001);
        assert_eq!(stale, Err(EntryFault::Stale));
        state
            .settle(KEY, 2, false, Settle::Acknowledge, 30_001)
            .unwrap();
        assert_eq!(state.tracked_len(), 0);
        assert_eq!(
            state.settle(KEY, 2, false, Settle::Acknowledge, 30_002),
            Err(EntryFault::Gone)
        );
        // Pulling again from the cursor does not bring it back.
        assert_eq!(state.cursor(1), 43);
    }

    #[test]
    fn max_receives_turn_a_record_into_a_dead_letter_until_restored() {
        let mut state = one_record();
        for round in 0..3 {
            state.turn_dead_letters(round * 10, Some(3));
            assert_eq!(state.visible(round * 10, false), vec![KEY]);
            state.receive(KEY, round * 10, 10);
        }
        state.turn_dead_letters(25, Some(3));
        assert!(state.visible(25, true).is_empty(), "still in flight");
        state.turn_dead_letters(30, Some(3));
        assert!(state.visible(30, false).is_empty());
        assert_eq!(state.visible(30, true), vec![KEY]);
        let dead = state.receive(KEY, 30, 10);
        assert_eq!(
            state.settle(KEY, dead.delivery, false, Settle::Acknowledge, 31),
            Err(EntryFault::WrongPath)
        );
        state
            .settle(KEY, dead.delivery, true, Settle::Restore, 31)
            .unwrap();
        state.turn_dead_letters(31, Some(3));
        assert_eq!(state.visible(31, false), vec![KEY]);
        assert_eq!(state.receive(KEY, 31, 10).receive_count, 1);
    }

    #[test]
    fn the_changes_since_a_state_rebuild_the_new_one() {
        let mut state = one_record();
        let other = RecordKey { shard: 0, seq: 7 };
        state.pulled(0, &[7], 8, 0);
        let steps: [&dyn Fn(&mut DeliveryState); 5] = [
            &|s| {
                s.receive(KEY, 0, 10);
            },
            &|s| {
                s.pulled(1, &[50, 51], 52, 1);
                s.receive(RecordKey { shard: 1, seq: 50 }, 1, 10);
            },
            &|s| s.settle(KEY, 1, false, Settle::Visibility(100), 2).unwrap(),
            &|s| s.settle(other, 0, false, Settle::Acknowledge, 3).unwrap(),
            &|s| s.turn_dead_letters(200, Some(1)),
        ];
        for step in steps {
            let before = state.clone();
            step(&mut state);
            let changes = state.changes_since(&before);
            assert!(!changes.is_empty());
            let json = serde_json::to_vec(&changes).unwrap();
            let mut replayed = before;
            for change in serde_json::from_slice::<Vec<DeliveryChange>>(&json).unwrap() {
                replayed.apply(change);
            }
            assert_eq!(replayed, state);
        }
        assert!(state.changes_since(&state.clone()).is_empty());
    }

    #[test]
    fn visibility_changes_and_serialisation_round_trip() {
        let mut state = one_record();
        let got = state.receive(KEY, 0, 30_000);
        state
            .settle(KEY, got.delivery, false, Settle::Visibility(0), 5)
            .unwrap();
        assert_eq!(state.visible(5, false), vec![KEY]);
        let json = serde_json::to_string(&state).unwrap();
        let back: DeliveryState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
    }
}

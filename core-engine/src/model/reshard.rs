//! Resharding: splitting, merging and uniform scaling of a stream's open shards.
//!
//! Every change closes parent shards (their `ending_seq` is set above every record they hold)
//! and opens children that record their parents, so readers can follow the lineage: a split has
//! one parent, a merge has a parent and an adjacent parent. New records go only to open shards;
//! closed ones stay readable until retention drops them.

use super::hash::{HashRange, even_ranges};
use super::shard::Shard;
use super::stream::StreamState;

/// Why a resharding request cannot be applied. The API layer turns these into AWS errors.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReshardError {
    /// No shard has this index.
    UnknownShard(u32),
    /// The shard is closed already.
    Closed(u32),
    /// The split point is not strictly inside the shard's range.
    BadSplitPoint { shard: u32, range: HashRange },
    /// The two shards do not share a range boundary (or are the same shard).
    NotAdjacent(u32, u32),
}

impl StreamState {
    fn open_shard(&self, index: u32) -> Result<&Shard, ReshardError> {
        let shard = self.shard(index).ok_or(ReshardError::UnknownShard(index))?;
        if shard.is_open() {
            Ok(shard)
        } else {
            Err(ReshardError::Closed(index))
        }
    }

    /// Closes shard `index` at `now_ms`.
    fn close(&mut self, index: u32, now_ms: i64) {
        let shard = &mut self.shards[index as usize];
        let end = shard.next_sequence(now_ms).to_u128();
        shard.ending_seq = Some(end);
        // Subscribers of the shard learn at once that it ended.
        shard.appended.notify_waiters();
    }

    fn open_child(&mut self, range: HashRange, parents: (u32, Option<u32>), now_ms: i64) -> u32 {
        let index = self.shards.len() as u32;
        let mut child = Shard::new(index, range, now_ms);
        child.parent = Some(parents.0);
        child.adjacent_parent = parents.1;
        self.shards.push(child);
        index
    }

    /// Splits an open shard at `new_starting_hash_key`; gives the two children's indexes.
    pub(crate) fn split(
        &mut self,
        index: u32,
        new_starting_hash_key: u128,
        now_ms: i64,
    ) -> Result<(u32, u32), ReshardError> {
        let range = self.open_shard(index)?.hash_range;
        // As Kinesis requires: more than one above the start, and below the end.
        if new_starting_hash_key <= range.start.saturating_add(1)
            || new_starting_hash_key >= range.end
        {
            return Err(ReshardError::BadSplitPoint {
                shard: index,
                range,
            });
        }
        let children = self.split_unchecked(index, new_starting_hash_key, now_ms);
        self.rebuild_routing();
        Ok(children)
    }

    fn split_unchecked(&mut self, index: u32, at: u128, now_ms: i64) -> (u32, u32) {
        let range = self.shards[index as usize].hash_range;
        self.close(index, now_ms);
        let low = HashRange {
            start: range.start,
            end: at - 1,
        };
        let high = HashRange {
            start: at,
            end: range.end,
        };
        let low = self.open_child(low, (index, None), now_ms);
        let high = self.open_child(high, (index, None), now_ms);
        (low, high)
    }

    /// Merges two adjacent open shards; gives the child's index.
    pub(crate) fn merge(
        &mut self,
        index: u32,
        adjacent: u32,
        now_ms: i64,
    ) -> Result<u32, ReshardError> {
        let a = self.open_shard(index)?.hash_range;
        let b = self.open_shard(adjacent)?.hash_range;
        let adjacent_ranges =
            a.end.checked_add(1) == Some(b.start) || b.end.checked_add(1) == Some(a.start);
        if index == adjacent || !adjacent_ranges {
            return Err(ReshardError::NotAdjacent(index, adjacent));
        }
        let child = self.merge_unchecked(index, adjacent, now_ms);
        self.rebuild_routing();
        Ok(child)
    }

    fn merge_unchecked(&mut self, index: u32, adjacent: u32, now_ms: i64) -> u32 {
        let (a, b) = (
            self.shards[index as usize].hash_range,
            self.shards[adjacent as usize].hash_range,
        );
        self.close(index, now_ms);
        self.close(adjacent, now_ms);
        let union = HashRange {
            start: a.start.min(b.start),
            end: a.end.max(b.end),
        };
        self.open_child(union, (index, Some(adjacent)), now_ms)
    }

    /// Reshapes the open shards into `target` shards of equal ranges, the way UNIFORM_SCALING
    /// does: by splits and merges, so every new shard has at most two parents. Short-lived
    /// intermediate shards appear in the lineage, as they do in Kinesis.
    pub(crate) fn scale_uniformly(&mut self, target: u32, now_ms: i64) {
        let targets = even_ranges(target);
        // Split every open shard at each target boundary strictly inside it.
        for goal in targets.iter().skip(1) {
            let boundary = goal.start;
            let inside = self
                .shards
                .iter()
                .find(|s| {
                    s.is_open() && s.hash_range.start < boundary && boundary <= s.hash_range.end
                })
                .map(|s| s.index);
            if let Some(index) = inside {
                self.split_unchecked(index, boundary, now_ms);
            }
        }
        // Now each open shard lies within one target range: merge each range's pieces.
        for goal in &targets {
            loop {
                let mut pieces: Vec<(u128, u32)> = self
                    .shards
                    .iter()
                    .filter(|s| {
                        s.is_open()
                            && goal.start <= s.hash_range.start
                            && s.hash_range.end <= goal.end
                    })
                    .map(|s| (s.hash_range.start, s.index))
                    .collect();
                if pieces.len() < 2 {
                    break;
                }
                pieces.sort_unstable();
                self.merge_unchecked(pieces[0].1, pieces[1].1, now_ms);
            }
        }
        self.rebuild_routing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stream::{Stream, StreamMode};

    fn stream(shards: u32) -> Stream {
        Stream::new(
            1,
            "s".into(),
            "arn".into(),
            StreamMode::Provisioned,
            shards,
            1_000,
        )
    }

    fn open_ranges(state: &StreamState) -> Vec<HashRange> {
        let mut ranges: Vec<_> = state
            .shards
            .iter()
            .filter(|s| s.is_open())
            .map(|s| s.hash_range)
            .collect();
        ranges.sort_by_key(|r| r.start);
        ranges
    }

    #[test]
    fn split_closes_the_parent_and_opens_two_children() {
        let stream = stream(1);
        let mut state = stream.state.lock();
        let (low, high) = state.split(0, 1 << 127, 2_000).unwrap();
        assert_eq!((low, high), (1, 2));
        assert!(!state.shards[0].is_open());
        assert_eq!(state.shards[0].closed_ms(), Some(2_000));
        assert_eq!(
            state.shards[1].hash_range,
            HashRange {
                start: 0,
                end: (1 << 127) - 1
            }
        );
        assert_eq!(state.shards[2].parent, Some(0));
        assert_eq!(state.route(u128::MAX), 2);
        assert_eq!(state.split(0, 5, 2_000), Err(ReshardError::Closed(0)));
        assert!(matches!(
            state.split(1, 1, 2_000),
            Err(ReshardError::BadSplitPoint { .. })
        ));
        assert_eq!(state.split(9, 5, 2_000), Err(ReshardError::UnknownShard(9)));
    }

    #[test]
    fn merge_needs_adjacent_open_shards() {
        let stream = stream(3);
        let mut state = stream.state.lock();
        assert_eq!(
            state.merge(0, 2, 2_000),
            Err(ReshardError::NotAdjacent(0, 2))
        );
        assert_eq!(
            state.merge(1, 1, 2_000),
            Err(ReshardError::NotAdjacent(1, 1))
        );
        let child = state.merge(1, 0, 2_000).unwrap();
        let shard = &state.shards[child as usize];
        assert_eq!((shard.parent, shard.adjacent_parent), (Some(1), Some(0)));
        assert_eq!(shard.hash_range.start, 0);
        assert_eq!(open_ranges(&state).len(), 2);
    }

    #[test]
    fn uniform_scaling_ends_with_even_ranges_and_two_parents_at_most() {
        for (from, to) in [
            (1, 2),
            (2, 1),
            (3, 2),
            (5, 3),
            (4, 8),
            (7, 4),
            (3, 5),
            (10, 20),
            (20, 10),
        ] {
            let stream = stream(from);
            let mut state = stream.state.lock();
            state.scale_uniformly(to, 2_000);
            assert_eq!(open_ranges(&state), even_ranges(to), "{from} -> {to}");
            for shard in &state.shards {
                if shard.index >= from {
                    assert!(
                        shard.parent.is_some(),
                        "new shard {} has no parent",
                        shard.index
                    );
                }
            }
            assert_eq!(state.open_shard_count(), to as usize);
        }
    }
}

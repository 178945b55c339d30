//! Which shard owns which hash keys, from ListShards.
//!
//! The map holds every shard ListShards returns (open and recently closed), sorted by the first
//! hash key. New records are routed among open shards only; closed ones stay to check where a
//! record that landed on an unexpected shard really went.

use std::sync::Arc;

use aws_sdk_kinesis::Client;

use crate::producer::StreamTarget;

/// One shard's hash-key range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShardRange {
    pub(crate) id: Arc<str>,
    pub(crate) start: u128,
    pub(crate) end: u128,
    pub(crate) open: bool,
}

impl ShardRange {
    pub(crate) fn contains(&self, hash: u128) -> bool {
        self.start <= hash && hash <= self.end
    }
}

/// The shards of a stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct ShardMap {
    /// Open shards sorted by first hash key.
    open: Vec<ShardRange>,
    /// Every shard listed, by id.
    all: Vec<ShardRange>,
}

impl ShardMap {
    /// Builds a map from shards (open or not).
    pub(crate) fn new(shards: Vec<ShardRange>) -> Self {
        let mut open: Vec<_> = shards.iter().filter(|s| s.open).cloned().collect();
        open.sort_by_key(|s| s.start);
        Self { open, all: shards }
    }

    /// Lists the stream's shards.
    pub(crate) async fn load(client: &Client, stream: &StreamTarget) -> Result<Self, String> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = match &token {
                Some(next) => client.list_shards().next_token(next),
                None => stream.apply_list_shards(client.list_shards()),
            };
            let page = request
                .send()
                .await
                .map_err(|e| crate::producer::describe_sdk_error(&e))?;
            for shard in page.shards.unwrap_or_default() {
                let range = shard.hash_key_range.as_ref();
                let parse = |text: Option<&String>| text.and_then(|t| t.parse::<u128>().ok());
                let (Some(start), Some(end)) = (
                    parse(range.map(|r| &r.starting_hash_key)),
                    parse(range.map(|r| &r.ending_hash_key)),
                ) else {
                    return Err(format!(
                        "shard {} has no valid hash key range",
                        shard.shard_id
                    ));
                };
                let open = shard
                    .sequence_number_range
                    .as_ref()
                    .is_none_or(|r| r.ending_sequence_number.is_none());
                shards.push(ShardRange {
                    id: shard.shard_id.into(),
                    start,
                    end,
                    open,
                });
            }
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        if !shards.iter().any(|s| s.open) {
            return Err("the stream has no open shard".into());
        }
        Ok(Self::new(shards))
    }

    /// The open shard that owns `hash`.
    pub(crate) fn route(&self, hash: u128) -> Option<&ShardRange> {
        let at = self.open.partition_point(|s| s.start <= hash);
        self.open
            .get(at.checked_sub(1)?)
            .filter(|s| s.contains(hash))
    }

    /// The shard with this id, open or closed.
    pub(crate) fn find(&self, id: &str) -> Option<&ShardRange> {
        self.all.iter().find(|s| &*s.id == id)
    }

    /// Number of open shards.
    pub(crate) fn open_count(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(id: &str, start: u128, end: u128, open: bool) -> ShardRange {
        ShardRange {
            id: id.into(),
            start,
            end,
            open,
        }
    }

    #[test]
    fn routes_among_open_shards_and_finds_closed_ones() {
        let map = ShardMap::new(vec![
            range("parent", 0, u128::MAX, false),
            range("high", 1 << 127, u128::MAX, true),
            range("low", 0, (1 << 127) - 1, true),
        ]);
        assert_eq!(&*map.route(5).unwrap().id, "low");
        assert_eq!(&*map.route(u128::MAX).unwrap().id, "high");
        assert_eq!(&*map.route(1 << 127).unwrap().id, "high");
        assert!(map.find("parent").unwrap().contains(42));
        assert_eq!(map.open_count(), 2);
    }

    #[test]
    fn gaps_route_nowhere() {
        let map = ShardMap::new(vec![range("a", 10, 20, true)]);
        assert!(map.route(5).is_none());
        assert!(map.route(21).is_none());
    }
}

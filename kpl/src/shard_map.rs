//! Which shard owns which hash keys, from ListShards.
//!
//! The map holds every shard ListShards returns (open and recently closed), sorted by the first
//! hash key. New records are routed among open shards only; closed ones stay to check where a
//! record that landed on an unexpected shard really went.
//!
//! A stream whose record distribution strategy is AUTO places records itself, whatever their
//! keys: its map is one stream-wide range (see [`ShardMap::stream_wide`]), so the producer
//! aggregates per stream, not per predicted shard.

use std::sync::Arc;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::RecordDistributionStrategy;
use tokio::time::Instant;

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
#[derive(Clone, Debug)]
pub(crate) struct ShardMap {
    /// Open shards sorted by first hash key.
    open: Vec<ShardRange>,
    /// Every shard listed, by id.
    all: Vec<ShardRange>,
    /// For an AUTO stream, how many open shards the one stream-wide range stands for (0 for a
    /// stream that routes by hash key).
    stream_wide_shards: u32,
    /// When the map was read.
    loaded_at: Instant,
}

impl ShardMap {
    /// Builds a map from shards (open or not).
    pub(crate) fn new(shards: Vec<ShardRange>) -> Self {
        let mut open: Vec<_> = shards.iter().filter(|s| s.open).cloned().collect();
        open.sort_by_key(|s| s.start);
        Self {
            open,
            all: shards,
            stream_wide_shards: 0,
            loaded_at: Instant::now(),
        }
    }

    /// The map of an AUTO stream: one open range, [`STREAM_WIDE_ID`], over every hash key,
    /// standing for the stream's open shards. Per-shard buffers of an earlier map are not in it,
    /// so the worker closes them and routes their records here.
    pub(crate) fn stream_wide(self) -> Self {
        let range = ShardRange {
            id: STREAM_WIDE_ID.into(),
            start: 0,
            end: u128::MAX,
            open: true,
        };
        Self {
            stream_wide_shards: u32::try_from(self.open.len()).unwrap_or(u32::MAX).max(1),
            open: vec![range.clone()],
            all: vec![range],
            loaded_at: self.loaded_at,
        }
    }

    /// Whether the map should be read again: nothing tells the producer that an AUTO stream
    /// changed its strategy or shard count, so its map is read again every
    /// [`STREAM_WIDE_RECHECK`].
    pub(crate) fn is_stale(&self, now: Instant) -> bool {
        self.is_stream_wide()
            && now.saturating_duration_since(self.loaded_at) >= STREAM_WIDE_RECHECK
    }

    /// Whether the stream places records itself (AUTO): any shard it answers with is right.
    pub(crate) fn is_stream_wide(&self) -> bool {
        self.stream_wide_shards > 0
    }

    /// The rate limit (percent of one shard's limits) of a buffer of this map: the given one,
    /// times the open shards for the stream-wide buffer of an AUTO stream.
    pub(crate) fn buffer_rate(&self, rate_limit: u32) -> u32 {
        rate_limit.saturating_mul(self.stream_wide_shards.max(1))
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
        let map = Self::new(shards);
        Ok(if distributes_itself(client, stream).await {
            map.stream_wide()
        } else {
            map
        })
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

/// The id of the one range of an AUTO stream's map (no shard has it).
pub(crate) const STREAM_WIDE_ID: &str = "stream-wide";
/// How often an AUTO stream's map is read again.
pub(crate) const STREAM_WIDE_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether DescribeStreamSummary says the stream's record distribution strategy is AUTO. When
/// it cannot be read, the producer routes by hash key: safe on any stream (records that land
/// elsewhere are checked against a fresh map).
async fn distributes_itself(client: &Client, stream: &StreamTarget) -> bool {
    let request = client.describe_stream_summary();
    let request = match stream {
        StreamTarget::Name(name) => request.stream_name(name),
        StreamTarget::Arn(arn) => request.stream_arn(arn),
    };
    match request.send().await {
        Ok(out) => out
            .stream_description_summary
            .and_then(|s| s.record_distribution_strategy)
            .is_some_and(|s| s == RecordDistributionStrategy::Auto),
        Err(error) => {
            let error = crate::producer::describe_sdk_error(&error);
            tracing::debug!(%error, "could not read the record distribution strategy");
            false
        }
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
    fn an_auto_stream_is_one_range_with_its_shards_rate() {
        let shards = (0..4u128)
            .map(|i| {
                let end = if i == 3 {
                    u128::MAX
                } else {
                    ((i + 1) << 126) - 1
                };
                range(&format!("s{i}"), i << 126, end, true)
            })
            .collect();
        let map = ShardMap::new(shards).stream_wide();
        assert!(map.is_stream_wide());
        assert_eq!(&*map.route(5).unwrap().id, STREAM_WIDE_ID);
        assert_eq!(&*map.route(u128::MAX).unwrap().id, STREAM_WIDE_ID);
        assert!(
            map.find("s1").is_none(),
            "per-shard buffers close and move over"
        );
        // The stream-wide buffer's token buckets hold four shards' worth: at 150 %, 6,000
        // records pass at once, where one shard's buckets would stop at 1,500.
        let now = Instant::now();
        let mut limiter = crate::limiter::ShardLimiter::new(map.buffer_rate(150), now);
        let passed = (0..10_000)
            .take_while(|_| limiter.try_take(10, now))
            .count();
        assert_eq!(passed, 6_000);
        let hashed = ShardMap::new(vec![range("a", 0, u128::MAX, true)]);
        assert!(!hashed.is_stream_wide());
        assert_eq!(hashed.buffer_rate(150), 150);
    }

    #[test]
    fn gaps_route_nowhere() {
        let map = ShardMap::new(vec![range("a", 10, 20, true)]);
        assert!(map.route(5).is_none());
        assert!(map.route(21).is_none());
    }
}

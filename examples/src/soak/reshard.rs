//! Splits and merges of the soak's stream, targets drawn from the seeded generator.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_kinesis::Client;
use rand::Rng;
use rand::rngs::StdRng;

/// An open shard and its hash range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenShard {
    /// Shard id.
    pub id: String,
    /// First hash key.
    pub start: u128,
    /// Last hash key.
    pub end: u128,
}

/// What a reshard did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reshard {
    /// Split this shard at this hash key.
    Split(String, u128),
    /// Merged these two adjacent shards.
    Merge(String, String),
}

/// The open shards of `stream`, by starting hash key.
pub async fn open_shards(kinesis: &Client, stream: &str) -> Result<Vec<OpenShard>> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = kinesis.list_shards();
        request = match &token {
            Some(t) => request.next_token(t),
            None => request.stream_name(stream),
        };
        let out = request.send().await.context("ListShards")?;
        for shard in out.shards() {
            let open = shard
                .sequence_number_range()
                .is_none_or(|r| r.ending_sequence_number().is_none());
            let range = shard.hash_key_range();
            if let (true, Some(range)) = (open, range) {
                shards.push(OpenShard {
                    id: shard.shard_id().to_owned(),
                    start: range.starting_hash_key().parse().context("hash key")?,
                    end: range.ending_hash_key().parse().context("hash key")?,
                });
            }
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    shards.sort_by_key(|s| s.start);
    Ok(shards)
}

/// Picks a reshard: a merge above `max` open shards, a split below `min`, otherwise either.
/// Splits cut a random shard in the middle of its range; merges join a random adjacent pair.
pub fn choose(rng: &mut StdRng, open: &[OpenShard], min: usize, max: usize) -> Option<Reshard> {
    let can_split: Vec<&OpenShard> = open.iter().filter(|s| s.end > s.start).collect();
    let pairs: Vec<(&OpenShard, &OpenShard)> = open
        .windows(2)
        .filter(|w| w[0].end.checked_add(1) == Some(w[1].start))
        .map(|w| (&w[0], &w[1]))
        .collect();
    let split = if open.len() >= max {
        false
    } else if open.len() <= min {
        true
    } else {
        rng.random_bool(0.5)
    };
    if split && !can_split.is_empty() {
        let shard = can_split[rng.random_range(0..can_split.len())];
        let middle = shard.start + (shard.end - shard.start) / 2 + 1;
        Some(Reshard::Split(shard.id.clone(), middle))
    } else if !pairs.is_empty() {
        let (a, b) = pairs[rng.random_range(0..pairs.len())];
        Some(Reshard::Merge(a.id.clone(), b.id.clone()))
    } else {
        None
    }
}

/// Waits until `stream` is ACTIVE (10 s at most).
pub async fn wait_active(kinesis: &Client, stream: &str) -> Result<()> {
    use aws_sdk_kinesis::types::StreamStatus;
    for _ in 0..100 {
        let out = kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .context("DescribeStreamSummary")?;
        if out
            .stream_description_summary()
            .is_some_and(|s| s.stream_status() == &StreamStatus::Active)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("stream {stream} not ACTIVE within 10 s")
}

/// Carries out `reshard` and waits for the stream to be ACTIVE again.
pub async fn apply(kinesis: &Client, stream: &str, reshard: &Reshard) -> Result<()> {
    match reshard {
        Reshard::Split(shard, at) => {
            kinesis
                .split_shard()
                .stream_name(stream)
                .shard_to_split(shard)
                .new_starting_hash_key(at.to_string())
                .send()
                .await
                .with_context(|| format!("SplitShard {shard}"))?;
        }
        Reshard::Merge(a, b) => {
            kinesis
                .merge_shards()
                .stream_name(stream)
                .shard_to_merge(a)
                .adjacent_shard_to_merge(b)
                .send()
                .await
                .with_context(|| format!("MergeShards {a} {b}"))?;
        }
    }
    wait_active(kinesis, stream).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn shards(n: u128) -> Vec<OpenShard> {
        let width = u128::MAX / n;
        (0..n)
            .map(|i| OpenShard {
                id: format!("s{i}"),
                start: i * width,
                end: if i == n - 1 {
                    u128::MAX
                } else {
                    (i + 1) * width - 1
                },
            })
            .collect()
    }

    #[test]
    fn reshards_stay_within_bounds() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..20 {
            assert!(matches!(
                choose(&mut rng, &shards(2), 2, 6),
                Some(Reshard::Split(..))
            ));
            assert!(matches!(
                choose(&mut rng, &shards(6), 2, 6),
                Some(Reshard::Merge(..))
            ));
        }
        let open = shards(4);
        if let Some(Reshard::Split(id, at)) = choose(&mut rng, &open[..1], 2, 6) {
            assert_eq!(id, "s0");
            assert!(at > open[0].start && at <= open[0].end);
        } else {
            panic!("one shard is split");
        }
        if let Some(Reshard::Merge(a, b)) = choose(&mut rng, &open, 1, 4) {
            let a: usize = a[1..].parse().unwrap();
            let b: usize = b[1..].parse().unwrap();
            assert_eq!(a + 1, b, "adjacent");
        } else {
            panic!("at the maximum, shards merge");
        }
    }
}

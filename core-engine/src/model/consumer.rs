//! Enhanced fan-out consumers registered on a stream, and their live subscriptions.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// Most consumers one stream may have.
pub(crate) const MAX_CONSUMERS_PER_STREAM: usize = 20;

/// A registered consumer.
#[derive(Debug)]
pub(crate) struct Consumer {
    pub(crate) name: String,
    pub(crate) created_ms: i64,
    /// The live subscription of each shard, at most one per shard.
    pub(crate) subscriptions: HashMap<u32, Subscription>,
    /// Tags set with TagResource (or at registration).
    pub(crate) tags: BTreeMap<String, String>,
    /// The resource policy document, as PutResourcePolicy received it.
    pub(crate) policy: Option<String>,
}

/// A live SubscribeToShard stream, as its consumer sees it.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) started_ms: i64,
    /// Tells the subscription it was taken over; dropping it ends the subscription too.
    pub(crate) end: oneshot::Sender<()>,
    /// Distinguishes this subscription from a later one on the same shard.
    pub(crate) id: u64,
}

impl Consumer {
    pub(crate) fn new(name: String, created_ms: i64) -> Self {
        Self {
            name,
            created_ms,
            subscriptions: HashMap::new(),
            tags: BTreeMap::new(),
            policy: None,
        }
    }

    /// Rebuilds a consumer from its snapshot.
    pub(crate) fn from_meta(meta: ConsumerMeta) -> Self {
        let mut consumer = Self::new(meta.name, meta.created_ms);
        consumer.tags = meta.tags;
        consumer.policy = meta.policy;
        consumer
    }

    /// The persistent description of this consumer.
    pub(crate) fn to_meta(&self) -> ConsumerMeta {
        ConsumerMeta {
            name: self.name.clone(),
            created_ms: self.created_ms,
            tags: self.tags.clone(),
            policy: self.policy.clone(),
        }
    }

    /// The consumer's ARN: the stream's, then `/consumer/<name>:<creation epoch seconds>`.
    pub(crate) fn arn(&self, stream_arn: &str) -> String {
        format!(
            "{stream_arn}/consumer/{}:{}",
            self.name,
            self.created_ms.div_euclid(1000)
        )
    }
}

/// The persistent description of a consumer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ConsumerMeta {
    pub(crate) name: String,
    pub(crate) created_ms: i64,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) policy: Option<String>,
}

/// Splits a consumer ARN into its stream ARN, consumer name and creation seconds.
pub(crate) fn parse_consumer_arn(arn: &str) -> Option<(&str, &str, i64)> {
    let (stream_arn, rest) = arn.split_once("/consumer/")?;
    let (name, created) = rest.rsplit_once(':')?;
    let created = created.parse().ok()?;
    (!name.is_empty()).then_some((stream_arn, name, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_arns_round_trip() {
        let consumer = Consumer::new("app".into(), 1_700_000_000_999);
        let arn = consumer.arn("arn:aws:kinesis:us-east-1:000000000000:stream/s");
        assert_eq!(
            arn,
            "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/app:1700000000"
        );
        assert_eq!(
            parse_consumer_arn(&arn),
            Some((
                "arn:aws:kinesis:us-east-1:000000000000:stream/s",
                "app",
                1_700_000_000
            ))
        );
        assert_eq!(
            parse_consumer_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s"),
            None
        );
        assert_eq!(parse_consumer_arn("x/consumer/:12"), None);
    }
}

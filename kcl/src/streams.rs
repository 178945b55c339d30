//! Multi-stream applications: the [`StreamTracker`] that says which streams to read, and the
//! stream identifiers (`account:stream:creationEpoch`) of the Java KCL's multi-stream leases.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::RecordDistributionStrategy;

use crate::error::{self, Error, Result};
use crate::processor::ProcessorError;
use crate::retrieval::StreamRef;

/// What [`StreamTracker::streams`] returns.
pub type StreamsFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<Vec<String>, ProcessorError>> + Send + 'a>>;

/// The set of streams a multi-stream application reads (the Java KCL's `MultiStreamTracker`),
/// asked at start-up and then every [`Config::shard_sync_interval`](crate::Config::shard_sync_interval).
///
/// A stream that appears is read from its [`Config::initial_position`](crate::Config::initial_position);
/// a stream that disappears stops being read at once (its processors get
/// `shutdown_requested` and may checkpoint) and its leases are deleted once it has stayed away
/// for [`Config::former_stream_lease_retention`](crate::Config::former_stream_lease_retention)
/// (the Java KCL's deferred deletion): a stream added back before then resumes from its
/// checkpoints. An error keeps the previous set. Every worker of an application must return
/// the same set.
///
/// A closure `Fn() -> Vec<String>` is a tracker:
///
/// ```
/// # use std::sync::{Arc, Mutex};
/// let streams = Arc::new(Mutex::new(vec!["orders".to_string(), "payments".to_string()]));
/// let tracker = {
///     let streams = streams.clone();
///     move || streams.lock().unwrap().clone()
/// };
/// # fn is_tracker(_: impl kcl::StreamTracker) {}
/// is_tracker(tracker);
/// ```
pub trait StreamTracker: Send + Sync + 'static {
    /// The streams to read now: names or ARNs.
    fn streams(&self) -> StreamsFuture<'_>;
}

impl<F> StreamTracker for F
where
    F: Fn() -> Vec<String> + Send + Sync + 'static,
{
    fn streams(&self) -> StreamsFuture<'_> {
        let streams = self();
        Box::pin(async move { Ok(streams) })
    }
}

/// A stream of a multi-stream application, resolved.
#[derive(Debug, Clone)]
pub(crate) struct TrackedStream {
    /// As the tracker named it.
    pub name: String,
    pub stream: StreamRef,
    /// `account:stream:creationEpoch`.
    pub identifier: String,
    /// The fan-out consumer registered on it, when reading through fan-out.
    pub consumer_arn: crate::retrieval::ConsumerArn,
    /// Its record distribution strategy, learnt when tracked and at each shard sync.
    pub distribution: crate::retrieval::Distribution,
}

/// The identifier `account:stream:creationEpoch` of `stream` (the Java KCL's
/// `StreamIdentifier.serialize()`) and its record distribution strategy (`None` when the answer
/// has none), from DescribeStreamSummary.
pub(crate) async fn identify(
    client: &Client,
    stream: &StreamRef,
    timeout: Duration,
) -> Result<(String, Option<RecordDistributionStrategy>)> {
    let out = error::kinesis_call(
        timeout,
        "DescribeStreamSummary",
        client
            .describe_stream_summary()
            .set_stream_name(stream.name())
            .set_stream_arn(stream.arn())
            .send(),
    )
    .await?;
    let summary = out
        .stream_description_summary
        .ok_or_else(|| Error::Kinesis {
            op: "DescribeStreamSummary",
            code: None,
            message: "no stream description in the answer".into(),
            retryable: true,
        })?;
    let identifier = identifier(
        &summary.stream_arn,
        &summary.stream_name,
        summary.stream_creation_timestamp.secs(),
    )?;
    Ok((identifier, summary.record_distribution_strategy))
}

/// `account:stream:creationEpoch` from a stream ARN
/// (`arn:aws:kinesis:region:account:stream/name`), its name and creation time in epoch seconds.
pub(crate) fn identifier(arn: &str, name: &str, created: i64) -> Result<String> {
    let account = arn
        .split(':')
        .nth(4)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::Kinesis {
            op: "DescribeStreamSummary",
            code: None,
            message: format!("stream ARN {arn} names no account"),
            retryable: false,
        })?;
    Ok(format!("{account}:{name}:{created}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_java_kcl() {
        assert_eq!(
            identifier(
                "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
                "orders",
                1_700_000_000
            )
            .unwrap(),
            "123456789012:orders:1700000000"
        );
        assert!(identifier("not-an-arn", "orders", 1).is_err());
    }
}

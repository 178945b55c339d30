//! Registering the application's stream consumer for enhanced fan-out.
//!
//! Every worker of an application runs this at start-up, so several may race: whoever finds the
//! consumer missing registers it, and a worker whose RegisterStreamConsumer fails with
//! ResourceInUseException (another worker won, or the stream is being updated) describes it
//! again. The consumer is never deregistered: it belongs to the application, not to a worker,
//! and other workers (or a restart) go on using it.
//!
//! Someone else may deregister it while the application runs. A subscriber that learns so
//! registers it again under the same name through [`ConsumerArn::reregister`]: one at a time
//! per worker (the others then take the new ARN), and across workers by the same race as at
//! start-up (ResourceInUseException, then describe; a consumer still DELETING is waited out).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::ConsumerStatus;
use tokio::time::Instant;

use super::{StreamRef, backoff};
use crate::error::{self, Error, Result};

/// The ARN of a stream's fan-out consumer, shared by the scheduler and every subscriber of the
/// stream, so that a consumer registered again is used by subscriptions started later too.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerArn(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    arn: RwLock<Option<String>>,
    /// Held while registering again, so one subscriber per worker does it.
    reregistering: tokio::sync::Mutex<()>,
}

impl ConsumerArn {
    /// A cell holding `arn`.
    pub(crate) fn new(arn: Option<String>) -> Self {
        let cell = Self::default();
        if let Some(arn) = arn {
            cell.set(arn);
        }
        cell
    }

    /// The ARN now, if the consumer is registered.
    pub(crate) fn get(&self) -> Option<String> {
        self.0.arn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, arn: String) {
        *self.0.arn.write().unwrap_or_else(|e| e.into_inner()) = Some(arn);
    }

    /// The consumer whose ARN was `gone` no longer exists: registers it again as `name` (or
    /// finds it registered again by another worker, or by another subscriber here, which
    /// `gone` being stale shows), waits until it is ACTIVE and returns its ARN, stored for
    /// later subscribers. Logs at warn and counts `ConsumerReregistrations` when this worker
    /// registered it.
    pub(crate) async fn reregister(
        &self,
        client: &Client,
        stream: &StreamRef,
        name: &str,
        gone: &str,
        timeouts: (Duration, Duration),
        metrics: &crate::metrics::Scope,
    ) -> Result<String> {
        let _one_at_a_time = self.0.reregistering.lock().await;
        if let Some(current) = self.get()
            && current != gone
        {
            return Ok(current);
        }
        let (timeout, activation_timeout) = timeouts;
        let (arn, registered) =
            ensure_consumer(client, stream, name, timeout, activation_timeout).await?;
        if registered {
            metrics
                .counter(crate::metrics::CONSUMER_REREGISTRATIONS)
                .increment(1);
            tracing::warn!(consumer = name, arn = %arn, "the stream consumer was deregistered; registered it again");
        } else {
            tracing::info!(consumer = name, arn = %arn, "the stream consumer was registered again elsewhere");
        }
        self.set(arn.clone());
        Ok(arn)
    }
}

/// A consumer and where it stands.
struct Found {
    arn: String,
    active: bool,
}

/// Registers consumer `name` on `stream` unless it exists, waits until it is ACTIVE and returns
/// its ARN. Each call is bounded by `timeout`; the whole wait by `activation_timeout`.
/// Throttling, `LimitExceededException` (too many consumers being created at once) and transport
/// errors are retried with backoff until then; other errors end it.
pub(crate) async fn register_consumer(
    client: &Client,
    stream: &StreamRef,
    name: &str,
    timeout: Duration,
    activation_timeout: Duration,
) -> Result<String> {
    let (arn, _) = ensure_consumer(client, stream, name, timeout, activation_timeout).await?;
    Ok(arn)
}

/// [`register_consumer`], also telling whether this call registered it.
async fn ensure_consumer(
    client: &Client,
    stream: &StreamRef,
    name: &str,
    timeout: Duration,
    activation_timeout: Duration,
) -> Result<(String, bool)> {
    let stream_arn = match stream {
        StreamRef::Arn(arn) => arn.clone(),
        StreamRef::Name(stream_name) => {
            let out = error::kinesis_call(
                timeout,
                "DescribeStreamSummary",
                client
                    .describe_stream_summary()
                    .stream_name(stream_name)
                    .send(),
            )
            .await?;
            out.stream_description_summary
                .map(|s| s.stream_arn)
                .ok_or_else(|| Error::Kinesis {
                    op: "DescribeStreamSummary",
                    code: None,
                    message: "no stream description in the answer".into(),
                    retryable: true,
                })?
        }
    };
    let deadline = Instant::now() + activation_timeout;
    let mut delays = backoff(Duration::from_millis(100), Duration::from_secs(2));
    let mut registered = false;
    loop {
        // CREATING (or DELETING, then gone and registered anew): wait.
        let step = match describe(client, &stream_arn, name, timeout).await {
            Ok(Some(found)) => Ok(found.active.then_some(found.arn)),
            Ok(None) => register(client, &stream_arn, name, timeout)
                .await
                .map(|found| {
                    registered = true;
                    found.active.then_some(found.arn)
                }),
            Err(e) => Err(e),
        };
        match step {
            Ok(Some(arn)) => return Ok((arn, registered)),
            Ok(None) => {}
            Err(e) if e.is_resource_in_use() => {
                tracing::debug!(
                    consumer = name,
                    "consumer being registered elsewhere; describing it again"
                );
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(consumer = name, error = %e, "consumer registration step failed; retrying");
            }
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(Error::ConsumerNotActive(name.to_owned()));
        }
        tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(1))).await;
    }
}

async fn describe(
    client: &Client,
    stream_arn: &str,
    name: &str,
    timeout: Duration,
) -> Result<Option<Found>> {
    let described = error::kinesis_call(
        timeout,
        "DescribeStreamConsumer",
        client
            .describe_stream_consumer()
            .stream_arn(stream_arn)
            .consumer_name(name)
            .send(),
    )
    .await;
    match described {
        Ok(out) => Ok(out.consumer_description.map(|d| Found {
            active: d.consumer_status == ConsumerStatus::Active,
            arn: d.consumer_arn,
        })),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn register(
    client: &Client,
    stream_arn: &str,
    name: &str,
    timeout: Duration,
) -> Result<Found> {
    let out = error::kinesis_call(
        timeout,
        "RegisterStreamConsumer",
        client
            .register_stream_consumer()
            .stream_arn(stream_arn)
            .consumer_name(name)
            .send(),
    )
    .await?;
    tracing::info!(
        consumer = name,
        stream = stream_arn,
        "registered the stream consumer"
    );
    let consumer = out.consumer.ok_or_else(|| Error::Kinesis {
        op: "RegisterStreamConsumer",
        code: None,
        message: "no consumer in the answer".into(),
        retryable: true,
    })?;
    Ok(Found {
        active: consumer.consumer_status == ConsumerStatus::Active,
        arn: consumer.consumer_arn,
    })
}

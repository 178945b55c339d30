//! A user record in the producer's hands, from `put` until its future is settled.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::{PutError, PutFailure};
use crate::metrics::{ProducerMetrics, ShardMetrics};
use crate::record::{Attempt, Delivery, Record};

/// The two permits a buffered record holds: one record, and its size in bytes.
pub(crate) type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// A user record with its routing, timing, history and the sender of its outcome.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) record: Record,
    /// The 128-bit hash key that decides its shard.
    pub(crate) hash: u128,
    pub(crate) put_at: Instant,
    /// When it must leave the buffers.
    pub(crate) deadline: Instant,
    /// When it fails if not delivered (its TTL).
    pub(crate) expires: Instant,
    pub(crate) attempts: Vec<Attempt>,
    /// Built at the first retry: most records never need one, and inline it would be a third
    /// of the size of a `Pending`, which is moved several times on the way to a shard.
    backoff: Option<Box<ExponentialBackoff>>,
    /// Taken when the future is settled. A `Pending` dropped unsettled (a worker that panicked,
    /// a buffer dropped by mistake) settles it in `Drop`, handing the record back.
    reply: Option<oneshot::Sender<Result<Delivery, PutFailure>>>,
    /// Held until settled: this is what bounds the producer's memory.
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    /// The producer's metric handles.
    pub(crate) metrics: Arc<ProducerMetrics>,
}

impl Pending {
    pub(crate) fn new(
        record: Record,
        hash: u128,
        config: &Config,
        reply: oneshot::Sender<Result<Delivery, PutFailure>>,
        permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
        metrics: Arc<ProducerMetrics>,
    ) -> Self {
        let now = Instant::now();
        metrics.user_records_pending.increment(1.0);
        Self {
            record,
            hash,
            put_at: now,
            deadline: now + config.record_max_buffered_time,
            expires: now + config.record_ttl,
            attempts: Vec::new(),
            backoff: None,
            reply: Some(reply),
            _permits: permits,
            metrics,
        }
    }

    /// The record, for a caller that gets it back directly: the future is dropped unsettled.
    pub(crate) fn into_record(mut self) -> Record {
        if self.reply.take().is_some() {
            self.metrics.user_records_pending.decrement(1.0);
        }
        self.take_record()
    }

    fn take_record(&mut self) -> Record {
        std::mem::replace(&mut self.record, Record::new("", bytes::Bytes::new()))
    }

    fn settle(&mut self, outcome: Result<Delivery, PutFailure>) {
        if let Some(reply) = self.reply.take() {
            // Before the reply: a caller that saw its outcome sees the record counted out.
            self.metrics.user_records_pending.decrement(1.0);
            // The caller may have dropped the future: then nobody wants the outcome.
            let _ = reply.send(outcome);
        }
    }

    /// The delay before the next retry: exponential with jitter, capped.
    pub(crate) fn next_backoff(&mut self, config: &Config) -> Option<Duration> {
        self.backoff
            .get_or_insert_with(|| {
                Box::new(
                    ExponentialBuilder::default()
                        .with_min_delay(config.retry_min_delay)
                        .with_max_delay(config.retry_max_delay)
                        .with_jitter()
                        .without_max_times()
                        .build(),
                )
            })
            .next()
    }

    /// Moves this record's permits into `pool`, to be released with those of the other
    /// records of its Kinesis record: releasing takes the semaphores' locks (and wakes a
    /// waiting `put`), so once per Kinesis record rather than once per user record.
    pub(crate) fn pool_permits(&mut self, pool: &mut Option<Permits>) {
        let (records, bytes) = &mut self._permits;
        let taken = (
            records.split(records.num_permits()),
            bytes.split(bytes.num_permits()),
        );
        let (Some(records), Some(bytes)) = taken else {
            return; // `split` of all a permit holds cannot fail
        };
        match pool {
            Some((pooled_records, pooled_bytes)) => {
                pooled_records.merge(records);
                pooled_bytes.merge(bytes);
            }
            None => *pool = Some((records, bytes)),
        }
    }

    /// The last error seen, if any.
    pub(crate) fn last_error(&self) -> Option<&str> {
        self.attempts
            .iter()
            .rev()
            .find_map(|a| a.error_code.as_deref())
    }

    /// Records one attempt.
    pub(crate) fn attempt(
        &mut self,
        sent_at: Instant,
        duration: Duration,
        error: Option<(&str, &str)>,
    ) {
        self.attempts.push(Attempt {
            delay: sent_at.saturating_duration_since(self.put_at),
            duration,
            error_code: error.map(|(code, _)| code.to_owned()),
            error_message: error.map(|(_, message)| message.to_owned()),
        });
        if let Some((code, _)) = error {
            self.metrics.error(code);
        }
    }

    /// Marks the last attempt as failed for a reason found after it succeeded.
    pub(crate) fn note_error(&mut self, code: &str, message: &str) {
        if let Some(last) = self.attempts.last_mut() {
            last.error_code = Some(code.to_owned());
            last.error_message = Some(message.to_owned());
        }
        self.metrics.error(code);
    }

    /// Settles the future with a delivery.
    pub(crate) fn deliver(
        mut self,
        metrics: &ShardMetrics,
        shard_id: &str,
        sequence_number: &str,
        sub_sequence_number: Option<u64>,
    ) {
        metrics.user_records_put.increment(1);
        metrics
            .user_records_data_put
            .increment(self.record.data.len() as u64);
        metrics
            .retries_per_record
            .record(self.attempts.len().saturating_sub(1) as f64);
        let delivery = Delivery {
            shard_id: shard_id.to_owned(),
            sequence_number: sequence_number.to_owned(),
            sub_sequence_number,
            attempts: std::mem::take(&mut self.attempts),
        };
        self.settle(Ok(delivery));
    }

    /// Settles the future as expired: not delivered within its TTL.
    pub(crate) fn expire(self) {
        let error = PutError::Expired {
            attempts: self.attempts.len(),
            last_error: self.last_error().unwrap_or("never sent").to_owned(),
        };
        self.fail(error);
    }

    /// Settles the future with a failure that hands the record back.
    pub(crate) fn fail(self, error: PutError) {
        self.fail_returning(error);
    }

    /// Settles the future with a failure, and gives the record to the caller too.
    pub(crate) fn fail_returning(mut self, error: PutError) -> Record {
        if matches!(error, PutError::Expired { .. }) {
            self.metrics.user_record_expired.increment(1);
        }
        let record = self.take_record();
        let attempts = std::mem::take(&mut self.attempts);
        self.settle(Err(PutFailure {
            error,
            record: record.clone(),
            attempts,
        }));
        record
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.reply.is_some() {
            tracing::error!("a buffered record was dropped unsettled; handing it back");
            let failure = PutFailure {
                error: PutError::Shutdown,
                record: self.take_record(),
                attempts: std::mem::take(&mut self.attempts),
            };
            self.settle(Err(failure));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    fn pending(record: Record) -> (Pending, oneshot::Receiver<Result<Delivery, PutFailure>>) {
        let semaphore = Arc::new(Semaphore::new(10));
        let permits = (
            semaphore.clone().try_acquire_owned().unwrap(),
            semaphore.try_acquire_owned().unwrap(),
        );
        let (reply, receiver) = oneshot::channel();
        let metrics = ProducerMetrics::disabled();
        let pending = Pending::new(record, 7, &Config::default(), reply, permits, metrics);
        (pending, receiver)
    }

    #[tokio::test]
    async fn a_pending_dropped_unsettled_hands_its_record_back() {
        let (pending, receiver) = pending(Record::new("user-1", "payload"));
        drop(pending);
        let failure = receiver.await.unwrap().unwrap_err();
        assert_eq!(failure.error, PutError::Shutdown);
        assert_eq!(failure.record, Record::new("user-1", "payload"));
    }

    #[tokio::test]
    async fn a_settled_pending_settles_once() {
        let (pending, receiver) = pending(Record::new("user-1", "payload"));
        let shard_metrics = pending.metrics.shard("shardId-000000000000");
        pending.deliver(&shard_metrics, "shardId-000000000000", "42", None);
        let delivery = receiver.await.unwrap().unwrap();
        assert_eq!(delivery.sequence_number, "42");
    }

    #[tokio::test]
    async fn a_record_taken_back_directly_leaves_the_future_unsettled() {
        let (pending, receiver) = pending(Record::new("user-1", "payload"));
        assert_eq!(pending.into_record(), Record::new("user-1", "payload"));
        assert!(receiver.await.is_err(), "no second copy of the record");
    }
}

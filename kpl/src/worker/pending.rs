//! A user record in the producer's hands, from `put` until its future is settled.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::{PutError, PutFailure};
use crate::record::{Attempt, Delivery, Record};

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
    backoff: ExponentialBackoff,
    reply: oneshot::Sender<Result<Delivery, PutFailure>>,
    /// Held until settled: this is what bounds the producer's memory.
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl Pending {
    pub(crate) fn new(
        record: Record,
        hash: u128,
        config: &Config,
        reply: oneshot::Sender<Result<Delivery, PutFailure>>,
        permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) -> Self {
        let now = Instant::now();
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.retry_min_delay)
            .with_max_delay(config.retry_max_delay)
            .with_jitter()
            .without_max_times()
            .build();
        Self {
            record,
            hash,
            put_at: now,
            deadline: now + config.record_max_buffered_time,
            expires: now + config.record_ttl,
            attempts: Vec::new(),
            backoff,
            reply,
            _permits: permits,
        }
    }

    /// The record, dropping the outcome sender (whose future then reports a shutdown).
    pub(crate) fn into_record(self) -> Record {
        self.record
    }

    /// The delay before the next retry: exponential with jitter, capped.
    pub(crate) fn next_backoff(&mut self) -> Option<Duration> {
        self.backoff.next()
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
            metrics::counter!("AllErrors").increment(1);
            metrics::counter!("ErrorsByCode", "ErrorCode" => code.to_owned()).increment(1);
        }
    }

    /// Marks the last attempt as failed for a reason found after it succeeded.
    pub(crate) fn note_error(&mut self, code: &str, message: &str) {
        if let Some(last) = self.attempts.last_mut() {
            last.error_code = Some(code.to_owned());
            last.error_message = Some(message.to_owned());
        }
        metrics::counter!("AllErrors").increment(1);
        metrics::counter!("ErrorsByCode", "ErrorCode" => code.to_owned()).increment(1);
    }

    /// Settles the future with a delivery.
    pub(crate) fn deliver(
        self,
        shard_id: &str,
        sequence_number: &str,
        sub_sequence_number: Option<u64>,
    ) {
        metrics::counter!("UserRecordsPut").increment(1);
        metrics::counter!("UserRecordsDataPut").increment(self.record.data.len() as u64);
        metrics::histogram!("RetriesPerRecord")
            .record(self.attempts.len().saturating_sub(1) as f64);
        let delivery = Delivery {
            shard_id: shard_id.to_owned(),
            sequence_number: sequence_number.to_owned(),
            sub_sequence_number,
            attempts: self.attempts,
        };
        let _ = self.reply.send(Ok(delivery));
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
    pub(crate) fn fail_returning(self, error: PutError) -> Record {
        if matches!(error, PutError::Expired { .. }) {
            metrics::counter!("UserRecordExpired").increment(1);
        }
        let record = self.record.clone();
        let _ = self.reply.send(Err(PutFailure {
            error,
            record: self.record,
            attempts: self.attempts,
        }));
        record
    }
}

//! Delivering one fetched batch under the [`FailurePolicy`](crate::FailurePolicy): retries,
//! partial-batch results, bisection, giving up to the sink. See [`crate::failure`].

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use super::{Consumer, Exit, Outcome, Retry, Step, bounded, lost};
use crate::failure::{FailurePolicy, GiveUpReason, GivenUp};
use crate::leases::SequenceNumber;
use crate::processor::{
    PartialFailure, ProcessRecordsInput, ProcessorError, Record, RecordProcessor,
};

impl<P: RecordProcessor> Consumer<P> {
    /// Delivers `records` until every one of them is processed or given up; `Err` when the
    /// consumer must stop (lease lost, shutdown, a stuck call).
    pub(super) async fn deliver(
        &mut self,
        records: Vec<Record>,
        millis_behind_latest: Option<i64>,
    ) -> Result<(), Exit> {
        let config = self.ctx.config.clone();
        let policy = &config.failure_policy;
        let limit = config.max_processing_time;
        // What is left to deliver, in shard order; bisection splits the front piece.
        let mut pieces = VecDeque::from([records]);
        // Failures of the front piece.
        let mut attempts: u32 = 0;
        let mut retry = Retry::new(&config);
        // The last record processed or given up: all earlier batches are.
        let mut done = self.checkpointer.largest_delivered().cloned();
        while let Some(piece) = pieces.front() {
            if self.lease.is_lost() {
                return Err(lost(&mut self.processor).await);
            }
            // A checkpoint inside this call may go no further than this piece.
            if let Some(last) = position(piece.last()) {
                self.checkpointer.delivered(last);
            }
            let input = ProcessRecordsInput {
                records: piece.clone(),
                millis_behind_latest,
            };
            let started = Instant::now();
            // Past the lease's deadline another worker may take the shard: a batch still running
            // then is cancelled (at its next await point), so it never overlaps with the next
            // owner's.
            let outcome = bounded(
                &self.lease,
                limit,
                self.processor
                    .process_records(input, &mut self.checkpointer),
            )
            .await;
            let result = match outcome {
                Outcome::Done(r) => r,
                other => return Err(self.interrupted(other, "process_records").await),
            };
            self.handles
                .process_records_time
                .record(started.elapsed().as_secs_f64() * 1000.0);
            let error = match result {
                Ok(()) => {
                    if let Some(piece) = pieces.pop_front() {
                        self.processed(&piece);
                        done = position(piece.last()).or(done);
                    }
                    attempts = 0;
                    retry = Retry::new(&config);
                    continue;
                }
                Err(e) => e,
            };
            self.handles.process_records_failures.increment(1);
            let Some(piece) = pieces.front_mut() else {
                break;
            };
            // Until delivered again, a checkpoint may not cover the failed records.
            self.checkpointer.done_up_to(done.clone());
            if let Some(count) = partial_done(&error, piece) {
                // The records before the reported one are done; deliver the rest at once.
                let rest = piece.split_off(count);
                tracing::info!(error = %error, done = count, rest = rest.len(), "process_records reported a partial failure; delivering the rest again");
                self.processed(piece);
                done = position(piece.last()).or(done);
                self.checkpointer.done_up_to(done.clone());
                *piece = rest;
                attempts = 0;
                retry = Retry::new(&config);
                continue;
            }
            attempts = attempts.saturating_add(1);
            if policy.bisect_on_error && piece.len() > 1 {
                let second = piece.split_off(piece.len() / 2);
                tracing::warn!(error = %error, first = piece.len(), second = second.len(), "process_records failed; bisecting the batch");
                self.handles.bisected_batches.increment(1);
                pieces.insert(1, second);
                attempts = 0;
                continue;
            }
            if let Some(reason) = give_up_reason(policy, attempts, piece) {
                let records = pieces.pop_front().unwrap_or_default();
                let last = position(records.last());
                self.give_up(
                    policy,
                    GivenUp {
                        shard_id: self.shard.clone(),
                        records,
                        error: error.to_string(),
                        attempts,
                        reason,
                    },
                    &mut retry,
                )
                .await?;
                // Taken by the sink: a checkpoint may now cover them.
                done = last.or(done);
                self.checkpointer.done_up_to(done.clone());
                attempts = 0;
                retry = Retry::new(&config);
                continue;
            }
            // Never skip the batch unless the policy says so (the Java KCL does): deliver it again.
            tracing::warn!(error = %error, records = piece.len(), attempts, "process_records failed; retrying the batch");
            if let Step::Stop(exit) = self.wait(&mut retry).await {
                return Err(exit);
            }
        }
        Ok(())
    }

    fn processed(&self, records: &[Record]) {
        let bytes: usize = records.iter().map(|r| r.data.len()).sum();
        self.handles
            .records_processed
            .increment(records.len() as u64);
        self.handles.data_bytes_processed.increment(bytes as u64);
    }

    /// Hands `given_up` to the sink until it takes it (or logs it when there is none).
    async fn give_up<I: Iterator<Item = std::time::Duration>>(
        &mut self,
        policy: &FailurePolicy,
        given_up: GivenUp,
        retry: &mut Retry<I>,
    ) -> Result<(), Exit> {
        let count = given_up.records.len();
        let (first, last) = match (given_up.records.first(), given_up.records.last()) {
            (Some(f), Some(l)) => (
                format!("{}/{}", f.sequence_number, f.sub_sequence_number),
                format!("{}/{}", l.sequence_number, l.sub_sequence_number),
            ),
            _ => return Ok(()),
        };
        match &policy.sink {
            None => tracing::error!(
                records = count, %first, %last, reason = given_up.reason.as_str(),
                attempts = given_up.attempts, error = %given_up.error,
                "giving records up; no failure sink configured, dropping them"
            ),
            Some(sink) => loop {
                let taken = tokio::select! {
                    biased;
                    _ = self.lease.lost() => None,
                    r = sink.give_up(&given_up) => Some(r),
                };
                match taken {
                    None => return Err(lost(&mut self.processor).await),
                    Some(Ok(())) => {
                        tracing::warn!(
                            records = count, %first, %last, reason = given_up.reason.as_str(),
                            attempts = given_up.attempts, error = %given_up.error,
                            "gave records up to the failure sink"
                        );
                        break;
                    }
                    Some(Err(e)) => {
                        self.handles.failure_sink_errors.increment(1);
                        tracing::warn!(error = %e, records = count, "the failure sink refused given-up records; trying again");
                        if let Step::Stop(exit) = self.wait(retry).await {
                            return Err(exit);
                        }
                    }
                }
            },
        }
        self.handles.records_given_up.increment(count as u64);
        Ok(())
    }
}

fn position(record: Option<&Record>) -> Option<SequenceNumber> {
    record.map(|r| SequenceNumber::new(&*r.sequence_number, r.sub_sequence_number))
}

/// How many records of `piece` a [`PartialFailure`] says are done; `None` unless it names a
/// record of the piece after its first.
fn partial_done(error: &ProcessorError, piece: &[Record]) -> Option<usize> {
    let partial = error.downcast_ref::<PartialFailure>()?;
    let at = piece.iter().position(|r| {
        r.sequence_number == partial.sequence_number
            && r.sub_sequence_number == partial.sub_sequence_number
    })?;
    (at > 0).then_some(at)
}

/// Whether a piece that failed `attempts` times is given up, and why.
fn give_up_reason(policy: &FailurePolicy, attempts: u32, piece: &[Record]) -> Option<GiveUpReason> {
    if policy.max_retries.is_some_and(|max| attempts > max) {
        return Some(GiveUpReason::RetriesExhausted);
    }
    let max_age = policy.max_record_age?;
    let oldest = piece
        .iter()
        .filter_map(|r| r.approximate_arrival_timestamp)
        .min()?;
    let age = SystemTime::now().duration_since(oldest).ok()?;
    (age > max_age).then_some(GiveUpReason::RecordTooOld)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(seq: &str, sub: u64, age: Duration) -> Record {
        Record {
            partition_key: "k".into(),
            explicit_hash_key: None,
            data: bytes::Bytes::from_static(b"x"),
            sequence_number: seq.into(),
            sub_sequence_number: sub,
            approximate_arrival_timestamp: Some(SystemTime::now() - age),
            aggregated: false,
        }
    }

    #[test]
    fn a_partial_failure_counts_only_a_later_record_of_the_batch() {
        let piece = vec![
            record("1", 0, Duration::ZERO),
            record("2", 0, Duration::ZERO),
            record("2", 1, Duration::ZERO),
        ];
        let at = |seq: &str, sub| -> ProcessorError { PartialFailure::new(seq, sub, "x").into() };
        assert_eq!(partial_done(&at("2", 1), &piece), Some(2));
        assert_eq!(
            partial_done(&at("1", 0), &piece),
            None,
            "first record: all failed"
        );
        assert_eq!(
            partial_done(&at("9", 0), &piece),
            None,
            "unknown record: all failed"
        );
        assert_eq!(partial_done(&"plain".into(), &piece), None);
    }

    #[test]
    fn retries_and_age_give_up_and_the_default_never_does() {
        let old = vec![record("1", 0, Duration::from_secs(120))];
        assert_eq!(give_up_reason(&FailurePolicy::default(), 1_000, &old), None);
        let retries = FailurePolicy {
            max_retries: Some(2),
            ..FailurePolicy::default()
        };
        assert_eq!(give_up_reason(&retries, 2, &old), None);
        assert_eq!(
            give_up_reason(&retries, 3, &old),
            Some(GiveUpReason::RetriesExhausted)
        );
        let age = FailurePolicy {
            max_record_age: Some(Duration::from_secs(60)),
            ..FailurePolicy::default()
        };
        assert_eq!(
            give_up_reason(&age, 1, &old),
            Some(GiveUpReason::RecordTooOld)
        );
        let young = vec![record("1", 0, Duration::from_secs(1))];
        assert_eq!(give_up_reason(&age, 1, &young), None);
    }
}

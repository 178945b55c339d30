//! Per-user features computed by a fleet of `kcl` workers, and the ledger that checks the run.
//!
//! The state is in memory, shared by every processor of every worker through [`Shared`]. A
//! feature is updated only by an event newer than the last one applied for that user, so the
//! replays that follow a crash (records after the last checkpoint are delivered again) do not
//! count twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use kcl::{
    Checkpointer, ProcessRecordsInput, ProcessorError, RecordProcessor, RecordProcessorFactory,
};

use crate::clickstream::Event;
use crate::verdict::{self, BatchActivity, ShardActivity, Verdict};

/// Features of one user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFeatures {
    /// Distinct events seen.
    pub events: u64,
    /// Last page viewed.
    pub last_page: String,
    /// Times the user reached `/checkout`.
    pub checkouts: u64,
    /// Sequence number of the last event applied.
    pub last_seq: Option<u64>,
}

/// Everything the processors saw, and everything the producer got acknowledged.
#[derive(Debug, Default)]
pub struct State {
    /// Features by user.
    pub users: HashMap<String, UserFeatures>,
    /// Each user's sequence numbers in the order processors received them (replays included),
    /// each with whether its batch overlapped another processor's work on the shard.
    pub arrivals: HashMap<String, Vec<(u64, bool)>>,
    /// Each user's sequence numbers the producer got acknowledged.
    pub acked: HashMap<String, Vec<u64>>,
    /// Records handed to processors (replays included).
    pub processed: u64,
    /// Distinct (user, seq) processed, with the processor instance that processed it first.
    pub distinct: HashMap<(String, u64), u64>,
    /// Records the processor instance that first processed them was handed again: only a
    /// failed batch explains that; replays after a lease moved go to a new instance.
    pub self_repeats: u64,
    /// Records whose data did not parse (kept, never dropped silently).
    pub malformed: Vec<String>,
    /// Records the producer finally failed to deliver, each counted once.
    pub producer_failures: u64,
    /// Which processor handles each shard's batches, to catch two at once.
    pub activity: ShardActivity,
}

/// The shared state: clone it into every processor.
#[derive(Clone, Debug, Default)]
pub struct Shared(Arc<Mutex<State>>);

impl Shared {
    /// Locks the state. A processor that panicked while holding it left consistent data
    /// (every update is a few assignments), so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the producer delivered `event`.
    pub fn acked(&self, user: String, seq: u64) {
        self.lock().acked.entry(user).or_default().push(seq);
    }

    /// Counts of acknowledged and distinct processed records.
    pub fn progress(&self) -> (u64, u64, u64) {
        let s = self.lock();
        let acked = s.acked.values().map(|v| v.len() as u64).sum();
        (acked, s.distinct.len() as u64, s.processed)
    }

    /// Whether every acknowledged record was processed.
    pub fn caught_up(&self) -> bool {
        let s = self.lock();
        s.acked.iter().all(|(user, seqs)| {
            seqs.iter()
                .all(|&q| s.distinct.contains_key(&(user.clone(), q)))
        })
    }

    /// Checks the run; see [`Report`].
    pub fn report(&self) -> Report {
        let s = self.lock();
        let mut report = Report {
            acked: 0,
            processed: s.processed,
            distinct: s.distinct.len() as u64,
            lost: 0,
            order_violations: 0,
            duplicates: 0,
            overlapping_shards: s.activity.overlapping_shards(),
            overlapping_batches: s.activity.overlapping_batches(),
            self_repeats: s.self_repeats,
            unacked_processed: 0,
            malformed: s.malformed.len() as u64,
            producer_failures: s.producer_failures,
            users: s.users.len() as u64,
        };
        let empty = Vec::new();
        for (user, acked) in &s.acked {
            let mut expected = acked.clone();
            expected.sort_unstable();
            report.acked += expected.len() as u64;
            let position: HashMap<u64, usize> =
                expected.iter().enumerate().map(|(i, &q)| (q, i)).collect();
            let mut seen = HashSet::new();
            // Copies handed over outside overlapping batches: a second one is a replay.
            let mut replayed = HashSet::new();
            let mut next = 0;
            for &(q, overlapping) in s.arrivals.get(user).unwrap_or(&empty) {
                let first = seen.insert(q);
                if !overlapping && !replayed.insert(q) {
                    // A replay of something already processed: allowed, counted. Copies from
                    // overlapping batches are counted with the overlap instead.
                    report.duplicates += 1;
                }
                if !first {
                    continue;
                }
                match position.get(&q) {
                    // Delivered although the producer reported a failure (a timed-out call
                    // that succeeded): not an order question.
                    None => report.unacked_processed += 1,
                    // In order (a gap is a loss, counted below).
                    Some(&i) if i >= next => next = i + 1,
                    // Arrived after a later event of the same user.
                    Some(_) => report.order_violations += 1,
                }
            }
            report.lost += expected.iter().filter(|q| !seen.contains(q)).count() as u64;
        }
        // Users the producer never got acknowledged but whose records arrived anyway.
        for (user, arrivals) in &s.arrivals {
            if !s.acked.contains_key(user) {
                report.unacked_processed +=
                    arrivals.iter().map(|a| a.0).collect::<HashSet<_>>().len() as u64;
            }
        }
        report
    }
}

/// The verdict of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Records the producer got acknowledged.
    pub acked: u64,
    /// Records handed to processors, replays included.
    pub processed: u64,
    /// Distinct records processed.
    pub distinct: u64,
    /// Acknowledged records never processed. Must be 0.
    pub lost: u64,
    /// Records of a user processed before an earlier one of the same user. Must be 0.
    pub order_violations: u64,
    /// Records processed more than once (allowed: work after the last checkpoint is redone),
    /// not counting the copies handed over in overlapping batches.
    pub duplicates: u64,
    /// Shards two processors processed at the same time. Must be 0.
    pub overlapping_shards: u64,
    /// Batches handed to a processor while another processed the same shard.
    pub overlapping_batches: u64,
    /// Duplicates handed to the same processor instance (see [`State::self_repeats`]).
    pub self_repeats: u64,
    /// Records processed although the producer reported them failed.
    pub unacked_processed: u64,
    /// Records whose data did not parse. Must be 0.
    pub malformed: u64,
    /// Records the producer failed to deliver.
    pub producer_failures: u64,
    /// Users with features.
    pub users: u64,
}

impl Report {
    /// The checks: something acknowledged, no producer failure, nothing lost, reordered,
    /// processed by two workers at once, or unreadable.
    pub fn verdict(&self) -> Verdict {
        let mut verdict = verdict::Delivery {
            acknowledged: self.acked,
            producer_failures: self.producer_failures,
            expected_failures: 0,
            lost: self.lost,
            order_violations: self.order_violations,
            overlapping_shards: self.overlapping_shards,
        }
        .verdict();
        verdict.require_none(self.malformed, "malformed records");
        verdict
    }

    /// Whether every check of [`Report::verdict`] passed.
    pub fn ok(&self) -> bool {
        self.verdict().ok()
    }
}

/// Computes features for the records of one shard, and checkpoints after each batch.
#[derive(Debug)]
pub struct FeatureProcessor {
    shared: Shared,
    /// The shard it processes.
    shard: String,
    /// Unique per processor instance, to tell replays after a lease move from repeats.
    instance: u64,
}

impl FeatureProcessor {
    /// A processor writing into `shared`.
    pub fn new(shared: Shared) -> Self {
        Self::for_shard(shared, "")
    }

    /// A processor of `shard` writing into `shared`.
    pub fn for_shard(shared: Shared, shard: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let instance = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            shared,
            shard: shard.to_owned(),
            instance,
        }
    }

    /// Notes that a batch of this processor's shard starts; it ends when the returned guard is
    /// dropped, which also happens when a crash drops the processor mid-batch.
    pub fn begin_batch(&self) -> BatchActivity {
        let overlapping = self
            .shared
            .lock()
            .activity
            .begin(&self.shard, self.instance);
        let (shared, shard, instance) = (self.shared.clone(), self.shard.clone(), self.instance);
        BatchActivity::new(overlapping, move || {
            shared.lock().activity.end(&shard, instance)
        })
    }

    /// Applies a batch to the shared state (without checkpointing).
    pub fn apply(&self, records: &[kcl::Record]) {
        self.apply_batch(records, false);
    }

    /// Applies a batch, noting whether it overlapped another processor's work on the shard
    /// (see [`ShardActivity`]).
    pub fn apply_batch(&self, records: &[kcl::Record], overlapping: bool) {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        for record in records {
            state.processed += 1;
            let event = match Event::parse(&record.data) {
                Ok(event) => event,
                Err(e) => {
                    // Kept and reported: the summary fails on any malformed record.
                    state.malformed.push(format!(
                        "{} {}: {e}",
                        record.sequence_number, record.sub_sequence_number
                    ));
                    continue;
                }
            };
            state
                .arrivals
                .entry(event.user.clone())
                .or_default()
                .push((event.seq, overlapping));
            let first = *state
                .distinct
                .entry((event.user.clone(), event.seq))
                .or_insert(self.instance);
            let seen_before = state.arrivals[&event.user]
                .iter()
                .filter(|&&(q, _)| q == event.seq)
                .count()
                > 1;
            if first == self.instance && seen_before {
                state.self_repeats += 1;
            }
            let features = state.users.entry(event.user).or_default();
            // Only newer events change features, so replays are harmless.
            if features.last_seq.is_none_or(|last| event.seq > last) {
                features.events += 1;
                features.checkouts += u64::from(event.page == "/checkout");
                features.last_page = event.page;
                features.last_seq = Some(event.seq);
            }
        }
    }
}

impl RecordProcessor for FeatureProcessor {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let batch = self.begin_batch();
        self.apply_batch(&input.records, batch.overlapping());
        // The state is updated before the checkpoint, so a crash in between only replays.
        checkpointer.checkpoint().await?;
        Ok(())
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

/// Creates a [`FeatureProcessor`] per shard, all writing into the same [`Shared`] state.
#[derive(Clone, Debug, Default)]
pub struct FeatureFactory(pub Shared);

impl RecordProcessorFactory for FeatureFactory {
    type Processor = FeatureProcessor;

    fn create(&self, shard_id: &str) -> FeatureProcessor {
        FeatureProcessor::for_shard(self.0.clone(), shard_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrive(shared: &Shared, user: &str, seqs: &[u64]) {
        let mut s = shared.lock();
        for &q in seqs {
            s.arrivals.entry(user.into()).or_default().push((q, false));
            s.distinct.insert((user.into(), q), 0);
        }
    }

    #[test]
    fn replays_are_duplicates_and_gaps_are_losses() {
        let shared = Shared::default();
        for q in 0..5 {
            shared.acked("a".into(), q);
        }
        arrive(&shared, "a", &[0, 1, 2, 1, 2, 3]);
        let r = shared.report();
        assert_eq!((r.lost, r.order_violations, r.duplicates), (1, 0, 2));
        assert!(!r.ok());
    }

    fn record(user: &str, seq: u64) -> kcl::Record {
        let event = crate::clickstream::Event {
            user: user.into(),
            seq,
            page: "/home".into(),
            at_ms: 0,
        };
        kcl::Record {
            partition_key: user.into(),
            explicit_hash_key: None,
            data: event.to_bytes().into(),
            sequence_number: "1".into(),
            sub_sequence_number: 0,
            approximate_arrival_timestamp: None,
            aggregated: false,
        }
    }

    #[test]
    fn replays_count_once_and_repeats_to_the_same_processor_are_told_apart() {
        let shared = Shared::default();
        shared.acked("a".into(), 0);
        shared.acked("a".into(), 1);
        let (first, next_owner) = (
            FeatureProcessor::new(shared.clone()),
            FeatureProcessor::new(shared.clone()),
        );
        first.apply(&[record("a", 0), record("a", 1)]);
        next_owner.apply(&[record("a", 1)]);
        assert_eq!(shared.lock().self_repeats, 0);
        first.apply(&[record("a", 1)]);
        assert_eq!(shared.lock().self_repeats, 1);
        let r = shared.report();
        assert_eq!((r.lost, r.order_violations, r.duplicates), (0, 0, 2));
        assert_eq!(
            shared.lock().users["a"].events,
            2,
            "replays do not count twice"
        );
    }

    #[test]
    fn a_run_with_nothing_acknowledged_or_a_failed_put_fails() {
        let nothing = Shared::default().report();
        assert!(!nothing.ok(), "zero acknowledgements prove nothing");
        let shared = Shared::default();
        shared.acked("a".into(), 0);
        arrive(&shared, "a", &[0]);
        assert!(shared.report().ok());
        shared.lock().producer_failures += 1;
        let failed = shared.report();
        assert_eq!(
            failed.verdict().reasons,
            ["1 unexpected producer failures (must be 0)"]
        );
    }

    #[test]
    fn two_processors_of_one_shard_at_once_are_an_overlap_not_duplicates() {
        let shared = Shared::default();
        for q in 0..4 {
            shared.acked("a".into(), q);
        }
        let old = FeatureProcessor::for_shard(shared.clone(), "shard-0");
        let new = FeatureProcessor::for_shard(shared.clone(), "shard-0");
        let batch = |processor: &FeatureProcessor, seqs: &[u64]| {
            let records: Vec<_> = seqs.iter().map(|&q| record("a", q)).collect();
            let batch = processor.begin_batch();
            processor.apply_batch(&records, batch.overlapping());
        };
        batch(&old, &[0, 1]);
        // The new owner replays from the last checkpoint: duplicates, allowed.
        batch(&new, &[0, 1, 2]);
        // The old owner has not noticed it lost the shard.
        batch(&old, &[2, 3]);
        batch(&new, &[3]);
        let r = shared.report();
        assert_eq!(
            (r.lost, r.order_violations, r.duplicates),
            (0, 0, 2),
            "the old owner's copies are not counted as duplicates"
        );
        assert_eq!((r.overlapping_shards, r.overlapping_batches), (1, 1));
        assert_eq!(
            r.verdict().reasons,
            ["1 shards processed by two workers at the same time (must be 0)"]
        );
    }

    #[test]
    fn reordering_is_a_violation() {
        let shared = Shared::default();
        for q in 0..3 {
            shared.acked("a".into(), q);
        }
        arrive(&shared, "a", &[0, 2, 1]);
        let r = shared.report();
        assert_eq!((r.lost, r.order_violations), (0, 1));
        assert!(shared.caught_up());
    }
}

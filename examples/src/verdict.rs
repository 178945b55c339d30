//! The verdict of a run: the checks every example and scenario shares, as pure functions of
//! what the run counted, so each failing case is tested without running anything.
//!
//! - [`Verdict`]: the failed checks of a run, with their reasons; it passes when there are none.
//! - [`Delivery`]: the end-to-end counts (acknowledged, producer failures, lost, out of order,
//!   overlapping processing) and the checks they must pass.
//! - [`ShardActivity`]: tells, batch by batch, when two record processors handle one shard at
//!   the same time (an overlap, which kcl promises never happens), so it is reported as such and
//!   not mistaken for the replays at-least-once delivery allows; [`SharedActivity`] shares one
//!   among an application's processors.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The checks of a run that failed, each with its reason. Passes when none failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Why the run failed, one reason per failed check; empty when it passed.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// A verdict with no failed check yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails with `reason` unless `ok`.
    pub fn require(&mut self, ok: bool, reason: impl Into<String>) -> &mut Self {
        if !ok {
            self.reasons.push(reason.into());
        }
        self
    }

    /// Fails if `count` of `what` is not zero.
    pub fn require_none(&mut self, count: u64, what: &str) -> &mut Self {
        self.require(count == 0, format!("{count} {what} (must be 0)"))
    }

    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.reasons.is_empty()
    }
}

impl fmt::Display for Verdict {
    /// `OK`, or `FAILED: reason; reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ok() {
            write!(f, "OK")
        } else {
            write!(f, "FAILED: {}", self.reasons.join("; "))
        }
    }
}

/// What a produce-and-consume run counted, end to end. Each record counts once in each field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Records the producer got acknowledged.
    pub acknowledged: u64,
    /// Records the producer failed to deliver (each once, however it was told).
    pub producer_failures: u64,
    /// Producer failures the run provoked on purpose, and so allows.
    pub expected_failures: u64,
    /// Acknowledged records never processed.
    pub lost: u64,
    /// Records of a key processed after a later record of the same key.
    pub order_violations: u64,
    /// Shards that two record processors processed at the same time.
    pub overlapping_shards: u64,
}

impl Delivery {
    /// The checks: something was acknowledged (a run where every put failed proves nothing),
    /// no unexpected producer failure, nothing lost, nothing out of order, no shard processed
    /// by two processors at once.
    pub fn verdict(&self) -> Verdict {
        let mut verdict = Verdict::new();
        verdict.require(
            self.acknowledged > 0,
            "no record was acknowledged by the producer",
        );
        let unexpected = self
            .producer_failures
            .saturating_sub(self.expected_failures);
        verdict
            .require_none(unexpected, "unexpected producer failures")
            .require_none(self.lost, "acknowledged records lost")
            .require_none(self.order_violations, "per-key order violations")
            .require_none(
                self.overlapping_shards,
                "shards processed by two workers at the same time",
            );
        verdict
    }
}

/// Which record processor handles each shard's batches, to catch two processing one shard at
/// the same time: a batch that starts while another processor's batch of that shard is running,
/// or that is handed to a processor after a newer processor of the shard had started (the old
/// one had lost the lease without noticing). Processors are numbered in creation order.
#[derive(Clone, Debug, Default)]
pub struct ShardActivity {
    shards: HashMap<String, Shard>,
    overlapping_shards: HashSet<String>,
    overlapping_batches: u64,
}

#[derive(Clone, Debug, Default)]
struct Shard {
    /// The newest processor that has had a batch of this shard.
    newest: Option<u64>,
    /// Batches running, by processor.
    running: HashMap<u64, u32>,
}

impl ShardActivity {
    /// A batch of `shard` starts in `processor`; returns whether it overlaps another
    /// processor's work on the shard. Pair with [`ShardActivity::end`].
    pub fn begin(&mut self, shard: &str, processor: u64) -> bool {
        let state = self.shards.entry(shard.to_owned()).or_default();
        let concurrent = state
            .running
            .iter()
            .any(|(&other, &batches)| other != processor && batches > 0);
        let superseded = state.newest.is_some_and(|newest| processor < newest);
        state.newest = state.newest.max(Some(processor));
        *state.running.entry(processor).or_default() += 1;
        let overlapping = concurrent || superseded;
        if overlapping {
            self.overlapping_batches += 1;
            self.overlapping_shards.insert(shard.to_owned());
        }
        overlapping
    }

    /// The batch of `shard` that `processor` began is done (processed and checkpointed, or
    /// failed).
    pub fn end(&mut self, shard: &str, processor: u64) {
        if let Some(batches) = self
            .shards
            .get_mut(shard)
            .and_then(|state| state.running.get_mut(&processor))
        {
            *batches = batches.saturating_sub(1);
        }
    }

    /// Shards two processors processed at the same time.
    pub fn overlapping_shards(&self) -> u64 {
        self.overlapping_shards.len() as u64
    }

    /// Batches that overlapped another processor's work on their shard.
    pub fn overlapping_batches(&self) -> u64 {
        self.overlapping_batches
    }
}

/// A [`ShardActivity`] shared by the record processors of one application.
#[derive(Clone, Debug, Default)]
pub struct SharedActivity {
    activity: Arc<Mutex<ShardActivity>>,
    next: Arc<AtomicU64>,
}

impl SharedActivity {
    /// The watch of a new processor of `shard`, numbered after every earlier one.
    pub fn processor(&self, shard: &str) -> ProcessorActivity {
        ProcessorActivity {
            shared: self.clone(),
            shard: shard.into(),
            processor: self.next.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ShardActivity> {
        // Plain counters: a panic elsewhere cannot leave them half-updated.
        self.activity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shards two processors processed at the same time.
    pub fn overlapping_shards(&self) -> u64 {
        self.lock().overlapping_shards()
    }
}

/// One record processor's watch on its shard: call [`begin`](Self::begin) when a batch
/// arrives and keep the returned [`BatchActivity`] until the batch is processed and
/// checkpointed (or failed).
#[derive(Clone, Debug)]
pub struct ProcessorActivity {
    shared: SharedActivity,
    shard: Arc<str>,
    processor: u64,
}

impl ProcessorActivity {
    /// A batch starts; it ends when the returned guard is dropped.
    pub fn begin(&self) -> BatchActivity {
        let overlapping = self.shared.lock().begin(&self.shard, self.processor);
        let watch = self.clone();
        BatchActivity::new(overlapping, move || {
            watch.shared.lock().end(&watch.shard, watch.processor)
        })
    }
}

/// A batch a record processor is working on, from [`ProcessorActivity::begin`] (or built
/// around [`ShardActivity::begin`]): the batch ends when this is dropped.
///
/// Ending on drop matters when a worker crashes: its processor's future is dropped in the
/// middle of a batch (at the checkpoint, say) and never resumes. That processing has stopped
/// as surely as if it had finished, so the next owner of the shard must not be counted as
/// overlapping it.
#[must_use = "the batch ends when this is dropped"]
pub struct BatchActivity {
    overlapping: bool,
    end: Option<Box<dyn FnOnce() + Send>>,
}

impl BatchActivity {
    /// A batch that began overlapping (or not) another processor's work; `end` records its end.
    pub fn new(overlapping: bool, end: impl FnOnce() + Send + 'static) -> Self {
        Self {
            overlapping,
            end: Some(Box::new(end)),
        }
    }

    /// Whether the batch overlaps another processor's work on the shard.
    pub fn overlapping(&self) -> bool {
        self.overlapping
    }
}

impl fmt::Debug for BatchActivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchActivity")
            .field("overlapping", &self.overlapping)
            .finish_non_exhaustive()
    }
}

impl Drop for BatchActivity {
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> Delivery {
        Delivery {
            acknowledged: 100,
            ..Delivery::default()
        }
    }

    #[test]
    fn a_clean_run_passes() {
        let verdict = clean().verdict();
        assert!(verdict.ok(), "{verdict}");
        assert_eq!(verdict.to_string(), "OK");
    }

    #[test]
    fn zero_acknowledgements_fail_even_with_nothing_else_wrong() {
        let verdict = Delivery::default().verdict();
        assert!(!verdict.ok());
        assert_eq!(
            verdict.reasons,
            ["no record was acknowledged by the producer"]
        );
    }

    #[test]
    fn a_run_where_every_put_failed_fails_on_both_counts() {
        let every_put_failed = Delivery {
            producer_failures: 500,
            ..Delivery::default()
        };
        let verdict = every_put_failed.verdict();
        assert_eq!(verdict.reasons.len(), 2, "{verdict}");
        assert!(verdict.reasons[1].starts_with("500 unexpected producer failures"));
    }

    #[test]
    fn unexpected_producer_failures_fail_and_expected_ones_do_not() {
        let failed = Delivery {
            producer_failures: 3,
            ..clean()
        };
        assert_eq!(
            failed.verdict().reasons,
            ["3 unexpected producer failures (must be 0)"]
        );
        let provoked = Delivery {
            expected_failures: 3,
            ..failed
        };
        assert!(provoked.verdict().ok());
        let more_than_provoked = Delivery {
            producer_failures: 4,
            ..provoked
        };
        assert_eq!(
            more_than_provoked.verdict().reasons,
            ["1 unexpected producer failures (must be 0)"]
        );
    }

    #[test]
    fn losses_order_violations_and_overlaps_each_fail_with_their_reason() {
        for (counts, reason) in [
            (
                Delivery { lost: 2, ..clean() },
                "2 acknowledged records lost (must be 0)",
            ),
            (
                Delivery {
                    order_violations: 1,
                    ..clean()
                },
                "1 per-key order violations (must be 0)",
            ),
            (
                Delivery {
                    overlapping_shards: 1,
                    ..clean()
                },
                "1 shards processed by two workers at the same time (must be 0)",
            ),
        ] {
            assert_eq!(counts.verdict().reasons, [reason]);
        }
    }

    #[test]
    fn one_processor_after_another_is_not_an_overlap() {
        let mut activity = ShardActivity::default();
        for processor in [1, 1, 2, 2] {
            assert!(!activity.begin("shard-0", processor));
            activity.end("shard-0", processor);
        }
        // Other shards are independent.
        assert!(!activity.begin("shard-1", 1));
        assert_eq!(activity.overlapping_shards(), 0);
    }

    #[test]
    fn a_batch_while_another_processor_runs_one_is_an_overlap() {
        let mut activity = ShardActivity::default();
        assert!(!activity.begin("shard-0", 1));
        assert!(activity.begin("shard-0", 2), "processor 1 is still running");
        activity.end("shard-0", 1);
        activity.end("shard-0", 2);
        assert_eq!(
            (
                activity.overlapping_shards(),
                activity.overlapping_batches()
            ),
            (1, 1)
        );
    }

    #[test]
    fn a_batch_to_a_superseded_processor_is_an_overlap() {
        let mut activity = ShardActivity::default();
        assert!(!activity.begin("shard-0", 1));
        activity.end("shard-0", 1);
        assert!(!activity.begin("shard-0", 2));
        activity.end("shard-0", 2);
        // Processor 1 lost the shard to 2 but is still handed batches.
        assert!(activity.begin("shard-0", 1));
        activity.end("shard-0", 1);
        assert!(activity.begin("shard-0", 1));
        assert_eq!(
            (
                activity.overlapping_shards(),
                activity.overlapping_batches()
            ),
            (1, 2)
        );
    }

    #[test]
    fn processors_sharing_an_activity_are_numbered_in_creation_order() {
        let shared = SharedActivity::default();
        let (old, new) = (shared.processor("shard-0"), shared.processor("shard-0"));
        assert!(!new.begin().overlapping());
        assert!(
            old.begin().overlapping(),
            "the older processor was superseded"
        );
        assert_eq!(shared.overlapping_shards(), 1);
    }

    #[test]
    fn a_batch_dropped_unfinished_ends_so_the_next_owner_does_not_overlap_it() {
        let shared = SharedActivity::default();
        let (crashed, next) = (shared.processor("shard-0"), shared.processor("shard-0"));
        let unfinished = async move {
            let _batch = crashed.begin();
            std::future::pending::<()>().await;
        };
        // The worker crashes mid-batch: the runtime drops the processor's future.
        let mut unfinished = Box::pin(unfinished);
        let waker = std::task::Waker::noop();
        let polled = unfinished
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
        assert!(polled.is_pending());
        drop(unfinished);
        assert!(!next.begin().overlapping());
        assert_eq!(shared.overlapping_shards(), 0);
    }

    #[test]
    fn a_batch_still_running_overlaps_the_next_owner() {
        let shared = SharedActivity::default();
        let (stuck, next) = (shared.processor("shard-0"), shared.processor("shard-0"));
        let _running = stuck.begin();
        assert!(next.begin().overlapping());
        assert_eq!(shared.overlapping_shards(), 1);
    }
}

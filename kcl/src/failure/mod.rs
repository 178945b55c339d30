//! What happens to a batch that keeps failing: the [`FailurePolicy`] (retry limit, record age,
//! bisection) and the [`FailureSink`] that receives what is given up.
//!
//! The semantics follow Lambda's Kinesis event-source mapping (`MaximumRetryAttempts`,
//! `MaximumRecordAgeInSeconds`, `BisectBatchOnFunctionError`, `ReportBatchItemFailures`, an
//! on-failure destination), applied to one shard's batches in order:
//!
//! 1. A batch is delivered to [`RecordProcessor::process_records`](crate::RecordProcessor).
//!    Success moves on to the next batch.
//! 2. A [`PartialFailure`](crate::PartialFailure) naming a record of the batch says that the
//!    records before it are done: they are never delivered again by this worker, and the rest
//!    (from the named record on) is delivered again at once. A partial failure at the first
//!    record, or naming a record not in the batch, is a failure of the whole batch.
//! 3. On any other error, with [`FailurePolicy::bisect_on_error`], a batch of more than one
//!    record is split in two halves, delivered in order (no backoff, no attempt counted), until
//!    the failing record is alone.
//! 4. Otherwise the batch (a single record when bisecting) is retried after a backoff
//!    ([`Config::processing_retry`](crate::Config::processing_retry)) until it has failed
//!    [`FailurePolicy::max_retries`] + 1 times, or its oldest record is older than
//!    [`FailurePolicy::max_record_age`] (by `ApproximateArrivalTimestamp`) when it fails; then
//!    it is given up.
//! 5. Given-up records go to the [`FailureSink`] before the processor is handed anything after
//!    them, so before any checkpoint can move past them. A sink that fails is called again with
//!    backoff, forever (until the lease is lost or the worker stops): nothing is skipped that the
//!    sink has not taken. Without a sink, given-up records are logged (error level, with their
//!    sequence numbers) and dropped.
//!
//! `kcl` never checkpoints on its own: the processor's next checkpoint covers the given-up and
//! the partially done records. A worker that dies before that checkpoint leaves them to be
//! delivered (and possibly given up, so sent to the sink) again by the next owner: the sink gets
//! each given-up record at least once.
//!
//! The default policy retries forever and gives nothing up, which loses nothing.

mod kinesis;

pub use kinesis::KinesisFailureSink;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::processor::{ProcessorError, Record};

/// How `kcl` treats a batch that `process_records` keeps failing (see the [module
/// docs](crate::failure)). The default retries forever.
#[derive(Clone, Default)]
pub struct FailurePolicy {
    /// Retries of a failing batch (a single record with [`bisect_on_error`](Self::bisect_on_error))
    /// before it is given up; `None` (the default) retries forever. `Some(0)` gives up after the
    /// first failure. Lambda's `MaximumRetryAttempts`.
    pub max_retries: Option<u32>,
    /// A failing batch whose oldest record arrived longer ago than this is given up; `None` (the
    /// default) never. Checked when the batch fails, so a record that is processed successfully
    /// is never dropped for its age. Lambda's `MaximumRecordAgeInSeconds`.
    pub max_record_age: Option<Duration>,
    /// Split a failing batch into halves, delivered in order, until the failing record is alone;
    /// only that record then counts against the limits and is given up (default false). Lambda's
    /// `BisectBatchOnFunctionError`. With a failure that hits every record (a downstream outage)
    /// and a retry limit, every record ends up given up one by one.
    pub bisect_on_error: bool,
    /// Where given-up records go; `None` logs and drops them.
    pub sink: Option<Arc<dyn FailureSink>>,
}

impl std::fmt::Debug for FailurePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailurePolicy")
            .field("max_retries", &self.max_retries)
            .field("max_record_age", &self.max_record_age)
            .field("bisect_on_error", &self.bisect_on_error)
            .field("sink", &self.sink.as_ref().map(|_| "<sink>"))
            .finish()
    }
}

impl FailurePolicy {
    /// Whether anything can ever be given up.
    pub fn gives_up(&self) -> bool {
        self.max_retries.is_some() || self.max_record_age.is_some()
    }

    /// This policy with `sink` receiving what it gives up.
    #[must_use]
    pub fn with_sink(mut self, sink: impl FailureSink) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }
}

/// Why records were given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// They failed [`FailurePolicy::max_retries`] + 1 times.
    RetriesExhausted,
    /// They failed while older than [`FailurePolicy::max_record_age`].
    RecordTooOld,
}

impl GiveUpReason {
    /// A stable name: `RetriesExhausted` or `RecordTooOld`.
    pub fn as_str(&self) -> &'static str {
        match self {
            GiveUpReason::RetriesExhausted => "RetriesExhausted",
            GiveUpReason::RecordTooOld => "RecordTooOld",
        }
    }
}

/// Records given up, as the [`FailureSink`] receives them.
#[derive(Debug, Clone)]
pub struct GivenUp {
    /// The shard they were read from.
    pub shard_id: String,
    /// The records, in shard order (one record when the batch was bisected down to it).
    pub records: Vec<Record>,
    /// The last error `process_records` returned for them.
    pub error: String,
    /// How many times they were delivered and failed.
    pub attempts: u32,
    /// Why they were given up.
    pub reason: GiveUpReason,
}

/// The future a [`FailureSink`] returns.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ProcessorError>> + Send + 'a>>;

/// Receives the records a [`FailurePolicy`] gives up (Lambda's on-failure destination). Called
/// before the shard's processor sees any later record; an error makes `kcl` call it again with
/// the same records after a backoff, so the records are skipped only once the sink took them.
///
/// ```
/// use kcl::failure::{FailureSink, GivenUp, SinkFuture};
///
/// struct LogSink;
///
/// impl FailureSink for LogSink {
///     fn give_up<'a>(&'a self, given_up: &'a GivenUp) -> SinkFuture<'a> {
///         Box::pin(async move {
///             eprintln!("{} records of {} given up: {}", given_up.records.len(),
///                 given_up.shard_id, given_up.error);
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait FailureSink: Send + Sync + 'static {
    /// Takes `given_up`; an error means "not taken, call again".
    fn give_up<'a>(&'a self, given_up: &'a GivenUp) -> SinkFuture<'a>;
}

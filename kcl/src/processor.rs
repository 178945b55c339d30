//! The record-processor contract.

use std::future::Future;
use std::time::SystemTime;

use bytes::Bytes;

use crate::checkpointer::Checkpointer;
use crate::leases::Checkpoint;

/// The error a processor returns. The scheduler logs it and delivers the batch again, or, as
/// the [`FailurePolicy`](crate::FailurePolicy) says, bisects it or gives it up. Return a
/// [`PartialFailure`] (boxed, with `.into()`) to say that the records before one are done.
pub type ProcessorError = Box<dyn std::error::Error + Send + Sync>;

/// A partial-batch result of `process_records` (Lambda's `ReportBatchItemFailures`): every
/// record of the batch before the named one is done and is not delivered again; the named record
/// and those after it are delivered again at once, without a backoff and without counting an
/// attempt. Naming the batch's first record, or a record not in the batch, fails the whole batch
/// (with `cause`). Return it as `Err(PartialFailure::at(&record, cause).into())`.
///
/// `kcl` does not checkpoint the done records itself; the processor may, with
/// [`Checkpointer::checkpoint_at`] at the record before the named one, or later as usual.
#[derive(Debug)]
pub struct PartialFailure {
    /// Sequence number of the first record not done.
    pub sequence_number: String,
    /// Its sub-sequence number (0 for a plain record).
    pub sub_sequence_number: u64,
    /// Why it failed.
    pub cause: ProcessorError,
}

impl PartialFailure {
    /// `record` and those after it failed with `cause`; those before it are done.
    pub fn at(record: &Record, cause: impl Into<ProcessorError>) -> Self {
        Self::new(
            record.sequence_number.clone(),
            record.sub_sequence_number,
            cause,
        )
    }

    /// The record at (`sequence_number`, `sub_sequence_number`) and those after it failed.
    pub fn new(
        sequence_number: impl Into<String>,
        sub_sequence_number: u64,
        cause: impl Into<ProcessorError>,
    ) -> Self {
        Self {
            sequence_number: sequence_number.into(),
            sub_sequence_number,
            cause: cause.into(),
        }
    }
}

impl std::fmt::Display for PartialFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed from record {}/{}: {}",
            self.sequence_number, self.sub_sequence_number, self.cause
        )
    }
}

impl std::error::Error for PartialFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

/// One user record (a KPL aggregate is delivered as its user records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partition key (the user record's own key inside an aggregate).
    pub partition_key: String,
    /// Explicit hash key, if the producer set one.
    pub explicit_hash_key: Option<String>,
    /// Payload.
    pub data: Bytes,
    /// Kinesis sequence number of the (possibly aggregated) record.
    pub sequence_number: String,
    /// Index inside the aggregate; 0 for a plain record.
    pub sub_sequence_number: u64,
    /// When Kinesis accepted the record.
    pub approximate_arrival_timestamp: Option<SystemTime>,
    /// Whether this came out of a KPL aggregate.
    pub aggregated: bool,
}

/// What `initialize` is told.
#[derive(Debug, Clone)]
pub struct InitializationInput {
    /// The stream the shard belongs to, as the application named it (a name or an ARN); in a
    /// multi-stream application, as the [`StreamTracker`](crate::StreamTracker) returned it.
    pub stream: String,
    /// The shard.
    pub shard_id: String,
    /// Where processing resumes (records after this are delivered).
    pub checkpoint: Checkpoint,
    /// A prepared but uncommitted checkpoint, if any.
    pub pending_checkpoint: Option<Checkpoint>,
    /// Application state saved with the prepared checkpoint.
    pub pending_checkpoint_state: Option<Vec<u8>>,
}

/// One batch for `process_records`.
#[derive(Debug, Clone)]
pub struct ProcessRecordsInput {
    /// Records in shard order.
    pub records: Vec<Record>,
    /// How far the read position is behind the tip of the shard.
    pub millis_behind_latest: Option<i64>,
}

/// An application's per-shard logic. The scheduler creates one instance per lease it holds and
/// calls it serially, in shard order, at least once per record.
///
/// Lifecycle: `initialize`, then `process_records` for each batch, then exactly one of
/// `shard_ended` (the shard was read to its end: call [`Checkpointer::checkpoint`]),
/// `lease_lost` (another worker has the shard, or this worker gave it up because a call ran
/// longer than [`Config::max_processing_time`](crate::Config::max_processing_time): do not
/// checkpoint), `read_failed` (the shard cannot be read: non-retryable error; by default the
/// same as `lease_lost`), or `shutdown_requested` (the worker stops, or another worker asked
/// for the lease in a graceful handoff: a final checkpoint is allowed, and the next owner starts
/// from it).
pub trait RecordProcessor: Send + 'static {
    /// Called once before the first batch.
    fn initialize(
        &mut self,
        input: InitializationInput,
    ) -> impl Future<Output = Result<(), ProcessorError>> + Send {
        let _ = input;
        async { Ok(()) }
    }

    /// Processes a batch. An error makes the scheduler deliver the same batch again after a
    /// backoff (see [`crate::RetryPolicy`]).
    fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> impl Future<Output = Result<(), ProcessorError>> + Send;

    /// Another worker took the lease (or this worker gave it up); checkpointing is no longer
    /// possible.
    fn lease_lost(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Reading the shard failed with an error trying again cannot fix (access denied, the
    /// stream deleted, an argument Kinesis refuses); the worker stops this shard's consumer and
    /// gives the lease up, and checkpointing is no longer possible. The default calls
    /// [`lease_lost`](Self::lease_lost).
    fn read_failed(&mut self, error: &crate::Error) -> impl Future<Output = ()> + Send {
        let _ = error;
        self.lease_lost()
    }

    /// The shard was read to its end. Must call `checkpointer.checkpoint()`, which records
    /// `SHARD_END` so the child shards can start; it is called again until it does. The default
    /// does just that; override it to flush what the processor holds first.
    fn shard_ended(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> impl Future<Output = Result<(), ProcessorError>> + Send {
        async move {
            checkpointer.checkpoint().await?;
            Ok(())
        }
    }

    /// The worker is shutting down gracefully, or another worker asked for the lease (see
    /// [`Config::graceful_handoff_timeout`](crate::Config::graceful_handoff_timeout)); a final
    /// checkpoint may be written, and the next owner starts right after it.
    fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> impl Future<Output = Result<(), ProcessorError>> + Send {
        let _ = checkpointer;
        async { Ok(()) }
    }
}

/// Creates a processor for a shard.
pub trait RecordProcessorFactory: Send + Sync + 'static {
    /// The processor type.
    type Processor: RecordProcessor;
    /// A processor for the lease `shard_id`: the shard id, or in a multi-stream application the
    /// lease key `account:stream:creationEpoch:shardId` (the processor's
    /// [`InitializationInput`] then names the stream and the plain shard id).
    fn create(&self, shard_id: &str) -> Self::Processor;
}

impl<F, P> RecordProcessorFactory for F
where
    F: Fn(&str) -> P + Send + Sync + 'static,
    P: RecordProcessor,
{
    type Processor = P;
    fn create(&self, shard_id: &str) -> P {
        self(shard_id)
    }
}

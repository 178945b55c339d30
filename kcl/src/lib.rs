//! `kcl`: the Shardline consumer framework for Amazon Kinesis Data Streams.
//!
//! A consumer application is a fleet of workers. Each worker runs a [`Scheduler`]; the fleet
//! shares one DynamoDB **lease table** (named after the application) and decides through it who
//! reads which shard and how far each shard was read.
//!
//! # Leases
//!
//! There is one lease item per shard, in the Java KCL 2.x schema (`leaseKey`, `leaseOwner`,
//! `leaseCounter`, `checkpoint`, ...; see [`leases`]), so a fleet can move between the Java KCL
//! and `kcl` and carry on from the same checkpoints. A worker holding a lease renews it every
//! [`Config::renewal_interval`] by bumping `leaseCounter`. Every other worker measures, on its own
//! clock, how long a lease's counter has stood still; past [`Config::failover_time`] the lease is
//! expired and any worker may take it with a write conditioned on the counter it saw, so exactly
//! one wins. Workers take their fair share (leases / workers, capped by
//! [`Config::max_leases_for_worker`]) and, when nothing is free, steal from the most loaded worker
//! a few leases at a time. A crashed worker's shards are resumed by the others within failover
//! time plus one renewal interval.
//!
//! Each held lease is renewed by its own task, so nothing else the worker does (taking leases,
//! shard sync, processors, checkpoints) delays a renewal, and no lock is held across a call.
//! The holder counts its lease valid until the moment it *sent* its last acknowledged write
//! (take, renewal or checkpoint) plus failover time minus [`Config::lease_safety_margin`]; other
//! workers count from when they first saw the resulting counter, which is later, and wait the
//! whole failover time. Past its deadline the holder stops the shard (a running
//! `process_records` is cancelled at its next await point, the processor gets `lease_lost`, and
//! nothing more is checkpointed). A worker that takes a lease another worker held (expired or
//! stolen) starts processing only once that lease would have expired by its own observation. So,
//! assuming clocks that run at the same rate to within the margin, no two workers process one
//! shard at the same time.
//!
//! Planned moves are handed over gracefully, with the KCL 3.x protocol
//! ([`Config::graceful_handoff_timeout`]): a worker balancing the fleet does not steal a lease
//! but writes itself as `leaseOwner` and the holder as `checkpointOwner`. The holder's next
//! renewal is refused; it calls [`RecordProcessor::shutdown_requested`] after the batch in
//! progress (the processor may checkpoint), then clears `checkpointOwner`, and the new owner
//! starts at once from that checkpoint: no record the processor checkpointed is processed twice
//! and nobody waits for failover time. A holder that does not hand over in time (a Java KCL 2.x
//! worker, a hung processor) loses the lease by force as before. A worker shutting down calls
//! `shutdown_requested` and gives its leases up, which others take at once.
//!
//! Every Kinesis and DynamoDB call is bounded ([`Config::kinesis_timeout`],
//! [`Config::dynamodb_timeout`]); a call without an answer fails with the retryable
//! [`Error::Timeout`]. A checkpoint write whose answer was lost is written again (on the adopted
//! counter when the first attempt did land) and reported successful only once acknowledged.
//!
//! # Checkpoints
//!
//! A [`RecordProcessor`] gets the records of one shard, serially and in order, at least once. It
//! records progress with its [`Checkpointer`] at a (sequence, sub-sequence) position: the
//! sub-sequence number addresses a user record inside a KPL aggregate, so a checkpoint can fall in
//! the middle of one. Every checkpoint write is fenced on `leaseCounter`: once another worker owns
//! the lease, the old owner's writes fail with [`Error::LeaseLost`]. Work after the last checkpoint
//! is delivered again to the next owner. A batch whose processing fails is delivered again (after
//! a backoff, see [`RetryPolicy`]); by default it is never skipped (see [Failures](#failures)).
//!
//! # Shard lifecycle
//!
//! A lease starts at the [`InitialPosition`] (or, for a child shard, at its beginning). When a
//! shard is closed by a split or a merge and read to its end, the worker creates the children's
//! leases (with their parent links), calls [`RecordProcessor::shard_ended`], which must checkpoint (that writes
//! `SHARD_END`), and stops. A child is taken only when every parent is at `SHARD_END` (or gone),
//! so records of one partition key stay in order across the reshard. Finished leases are deleted
//! after [`Config::finished_lease_retention`] once their children have leases. Shard sync
//! (ListShards) writes every lease with all its parents (`ParentShardId`,
//! `AdjacentParentShardId`) and creates a parent's lease before its children's, deciding from
//! the shard graph alone, so workers starting together on a resharded stream never leave a child
//! readable before its parent.
//!
//! # Retrieval: polling or enhanced fan-out
//!
//! [`Config::retrieval`] chooses how a held shard is read (see [`Retrieval`]):
//!
//! * [`Retrieval::Polling`] (the default): GetRecords in a loop, [`Config::max_prefetch_batches`]
//!   ahead of the processor, pausing [`Config::idle_time_between_reads`] after an empty read. All
//!   applications reading the stream share each shard's 2 MiB/s and 5 reads/s.
//! * [`Retrieval::FanOut`]: enhanced fan-out. At start-up the worker registers the stream
//!   consumer ([`FanOutConfig::consumer_name`], default the application name) unless it exists,
//!   waits until it is ACTIVE, and never deregisters it; workers registering at once end with one
//!   consumer. Each held lease gets one SubscribeToShard subscription, and records arrive as they
//!   are written, through the application's own 2 MiB/s per shard. The first subscription starts
//!   at the checkpoint (AT_SEQUENCE_NUMBER, dropping what the checkpoint covers, also inside a KPL
//!   aggregate) or at [`Config::initial_position`]; each later one starts AFTER_SEQUENCE_NUMBER the
//!   `ContinuationSequenceNumber` of the last event handed on, so a subscription that ends (every
//!   5 minutes) or breaks (ResourceInUseException, LimitExceededException, InternalFailure, a
//!   dropped connection, silence past [`FanOutConfig::silence_timeout`]) is followed, after a
//!   jittered backoff, by one that neither skips nor repeats a record. The next event is read
//!   only when one of [`FanOutConfig::max_buffered_events`] slots is free, so a slow processor
//!   holds the connection's flow-control window shut instead of filling memory. A fan-out worker
//!   calls neither GetRecords nor GetShardIterator.
//!
//! Both feed the same consumer: deaggregation, the [`RecordProcessor`] lifecycle, fenced
//! checkpoints, shard ends (children start after all parents reach `SHARD_END`), failover,
//! stealing and shutdown (which closes the subscription) are the same.
//!
//! On AWS, SubscribeToShard is answered only over HTTP/2 (with TLS), so the Kinesis client given
//! to the [`Scheduler`] must be able to speak HTTP/2 for fan-out. Against the Shardline engine
//! over `http://` it runs over HTTP/1.1.
//!
//! # Multi-stream applications
//!
//! [`SchedulerBuilder::streams`] (a fixed set) or [`SchedulerBuilder::stream_tracker`] (a
//! [`StreamTracker`] asked every [`Config::shard_sync_interval`], so streams are added and
//! removed while running) make one scheduler read several streams, with the Java KCL's
//! multi-stream lease keys `account:stream:creationEpoch:shardId`. A removed stream's processors
//! get `shutdown_requested`, and its leases are deleted after
//! [`Config::former_stream_lease_retention`]. Processors learn their stream from
//! [`InitializationInput::stream`]. With fan-out a consumer is registered on every stream. A
//! single stream ([`SchedulerBuilder::stream`], [`Scheduler::new`]) keeps plain shard ids as
//! lease keys.
//!
//! # Failures
//!
//! [`Config::failure_policy`] decides what happens to a batch `process_records` keeps failing,
//! with the semantics of Lambda's Kinesis trigger (see [`failure`]): a retry limit
//! ([`FailurePolicy::max_retries`]), a record age limit ([`FailurePolicy::max_record_age`]),
//! bisection down to the failing record ([`FailurePolicy::bisect_on_error`]), partial-batch
//! results ([`PartialFailure`]: the records before one are done, only the rest is delivered
//! again), and a [`FailureSink`] that takes given-up records before anything after them reaches
//! the processor ([`KinesisFailureSink`] puts them to a dead-letter stream through `kpl`). The
//! default retries forever and loses nothing.
//!
//! Reads that cannot succeed (access denied, a deleted stream, an argument Kinesis refuses) stop
//! the shard's consumer instead of looping: the processor gets
//! [`RecordProcessor::read_failed`], `ReadFailures.NonRetryable` is counted, the lease is given
//! up and not taken back by this worker; once no shard is left to read, [`Scheduler::run`]
//! returns [`Error::ReadFailed`]. Throttling, 5xx, timeouts and transport errors are retried.
//!
//! A processor call running longer than [`Config::max_processing_time`] (off by default) is
//! cancelled at its next await point, the processor gets `lease_lost`, and the lease is given up
//! so another worker takes the shard at once (`ProcessingTimeouts`, and a warning): a hung
//! processor does not hold its shard while its worker keeps renewing the lease.
//!
//! # Example
//!
//! ```no_run
//! use kcl::{Checkpointer, Config, ProcessRecordsInput, ProcessorError, RecordProcessor, Scheduler};
//!
//! struct Printer;
//!
//! impl RecordProcessor for Printer {
//!     async fn process_records(
//!         &mut self,
//!         input: ProcessRecordsInput,
//!         checkpointer: &mut Checkpointer,
//!     ) -> Result<(), ProcessorError> {
//!         for record in &input.records {
//!             println!("{} {:?}", record.partition_key, record.data);
//!         }
//!         checkpointer.checkpoint().await?;
//!         Ok(())
//!     }
//!
//!     async fn shard_ended(&mut self, checkpointer: &mut Checkpointer) -> Result<(), ProcessorError> {
//!         checkpointer.checkpoint().await?;
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), kcl::Error> {
//! let aws = aws_config::load_from_env().await;
//! // Every setting is named; `build` checks them and the config, naming the field that is wrong
//! // (`Error::InvalidConfig`). `Scheduler::new` is the positional short form.
//! let scheduler = std::sync::Arc::new(
//!     Scheduler::builder()
//!         .application("my-application")
//!         .stream("my-stream")
//!         .worker_id("worker-1")
//!         .kinesis(aws_sdk_kinesis::Client::new(&aws))
//!         .dynamodb(aws_sdk_dynamodb::Client::new(&aws))
//!         .processor_factory(|_shard: &str| Printer)
//!         .config(Config::default())
//!         .build()?,
//! );
//! let worker = tokio::spawn({
//!     let scheduler = scheduler.clone();
//!     async move { scheduler.run().await }
//! });
//! // ... later: stop gracefully, letting processors write a final checkpoint.
//! scheduler.shutdown();
//! worker.await.expect("worker task")?;
//! # Ok(())
//! # }
//! ```
//!
//! # Metrics
//!
//! Through the [`metrics`](https://docs.rs/metrics) facade, with the Java KCL's names:
//! `MillisBehindLatest`, `RecordsProcessed`, `DataBytesProcessed`,
//! `RecordProcessor.processRecords.Time` and `ExpiredIterator` per shard (the Java KCL reports
//! the same per-shard names whatever the retrieval); with fan-out also `SubscribeToShard.Success`,
//! `SubscribeToShard.Failure` and `SubscribeToShard.Silent` (counters), and for both retrievals
//! `RecordsBuffered` (gauge: records read from Kinesis that wait for the processor); the failure
//! counters `ProcessRecordsFailures`, `BisectedBatches`, `RecordsGivenUp`, `FailureSinkErrors`,
//! `ReadFailures.NonRetryable` and `ProcessingTimeouts` per shard; `CurrentLeases`,
//! `TakenLeases`, `StolenLeases`, `LostLeases`, `ExpiredLeases`, `NumWorkers`, `TotalLeases`,
//! `NeededLeases`, `LeaseSpillover`, `HandoffsInitiated` and `HandoffsRequested` for lease
//! management. Every metric carries the label `application`; the per-shard ones `stream` and
//! `shard` too, the per-worker ones (`CurrentLeases`, `TakenLeases`, `StolenLeases`,
//! `LostLeases`, `HandoffsInitiated`, `HandoffsRequested`) `worker`. [`Config::metrics_level`]
//! decides which are emitted ([`MetricsLevel`], the KCL's levels). Install the recorder (an
//! exporter) before the scheduler runs. Each shard consumer runs in a `shard` tracing span.

mod builder;
pub mod checkpointer;
pub mod config;
mod consumer;
pub mod error;
pub mod failure;
pub mod leases;
mod metrics;
pub mod processor;
pub mod retrieval;
mod scheduler;
mod shard_sync;
pub mod streams;

pub use builder::SchedulerBuilder;
pub use checkpointer::{Checkpointer, PreparedCheckpoint};
pub use config::{Config, FanOutConfig, InitialPosition, Retrieval, RetryPolicy};
pub use error::{Error, Result};
pub use failure::{FailurePolicy, FailureSink, GiveUpReason, GivenUp, KinesisFailureSink};
pub use metrics::MetricsLevel;
pub use processor::{
    InitializationInput, PartialFailure, ProcessRecordsInput, ProcessorError, Record,
    RecordProcessor, RecordProcessorFactory,
};
pub use retrieval::StreamRef;
pub use scheduler::Scheduler;
pub use streams::StreamTracker;

//! The producer handle: cheap to clone, backed by one worker task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::aggregation::hash_key;
use crate::config::Config;
use crate::error::{PutError, PutFailure, StartError};
use crate::metrics::ProducerMetrics;
use crate::record::{Delivery, Record};
use crate::shard_map::ShardMap;
use crate::worker::{Command, Pending, Worker};

/// The stream a producer writes to, by name or ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamTarget {
    /// A stream name.
    Name(String),
    /// A stream ARN.
    Arn(String),
}

impl StreamTarget {
    /// Takes an ARN if `stream` looks like one, else a name.
    pub fn parse(stream: impl Into<String>) -> Self {
        let stream = stream.into();
        if stream.starts_with("arn:") {
            Self::Arn(stream)
        } else {
            Self::Name(stream)
        }
    }

    /// A label for logs and metrics.
    pub fn label(&self) -> &str {
        match self {
            Self::Name(name) => name,
            Self::Arn(arn) => arn.rsplit('/').next().unwrap_or(arn),
        }
    }

    pub(crate) fn apply_list_shards(
        &self,
        request: aws_sdk_kinesis::operation::list_shards::builders::ListShardsFluentBuilder,
    ) -> aws_sdk_kinesis::operation::list_shards::builders::ListShardsFluentBuilder {
        match self {
            Self::Name(name) => request.stream_name(name),
            Self::Arn(arn) => request.stream_arn(arn),
        }
    }

    pub(crate) fn apply_put_records(
        &self,
        request: aws_sdk_kinesis::operation::put_records::builders::PutRecordsFluentBuilder,
    ) -> aws_sdk_kinesis::operation::put_records::builders::PutRecordsFluentBuilder {
        match self {
            Self::Name(name) => request.stream_name(name),
            Self::Arn(arn) => request.stream_arn(arn),
        }
    }
}

/// A one-line description of an SDK error: its AWS code and message, or what failed.
pub(crate) fn describe_sdk_error<E, R>(error: &aws_sdk_kinesis::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("Unknown"),
            service.message().unwrap_or_default()
        ),
        None => format!("{}", aws_sdk_kinesis::error::DisplayErrorContext(error)),
    }
}

/// Puts records into one Kinesis stream: aggregates, batches, rate-limits and retries them.
///
/// Clones share the same buffers and worker. See the [crate docs](crate) for the model.
#[derive(Clone, Debug)]
pub struct Producer {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) stream: StreamTarget,
    /// Its metric handles, labelled with the stream.
    pub(crate) metrics: Arc<ProducerMetrics>,
    records: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    /// Largest record the stream accepts (data plus partition key).
    max_record_bytes: usize,
}

/// The eventual outcome of one put: where the record landed, or the record handed back.
#[must_use = "the outcome of a put is only known by awaiting it"]
#[derive(Debug)]
pub struct DeliveryFuture {
    reply: oneshot::Receiver<Result<Delivery, PutFailure>>,
}

impl Future for DeliveryFuture {
    type Output = Result<Delivery, PutFailure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.reply).poll(cx).map(|result| {
            // A buffered record settles its future even when dropped (`Pending`'s `Drop`), so
            // the sender only vanishes unsent if the process is going down with it.
            result.unwrap_or_else(|_| {
                Err(PutFailure {
                    error: PutError::Shutdown,
                    record: Record::new("", bytes::Bytes::new()),
                    attempts: Vec::new(),
                })
            })
        })
    }
}

impl Producer {
    /// Starts a producer for `stream` (a name or an ARN), reading its shards first (each call
    /// bounded by `request_timeout`).
    pub async fn new(
        client: Client,
        stream: impl Into<String>,
        config: Config,
    ) -> Result<Self, StartError> {
        config.validate()?;
        let stream = StreamTarget::parse(stream);
        let timeout = config.request_timeout;
        let map = tokio::time::timeout(timeout, ShardMap::load(&client, &stream))
            .await
            .unwrap_or_else(|_| Err(format!("ListShards: no answer within {timeout:?}")))
            .map_err(|message| StartError::ShardMap {
                stream: stream.label().to_owned(),
                message,
            })?;
        let max_record_bytes = tokio::time::timeout(timeout, max_record_bytes(&client, &stream))
            .await
            .unwrap_or(DEFAULT_MAX_RECORD_BYTES);
        let (commands, receiver) = mpsc::unbounded_channel();
        let metrics = ProducerMetrics::new(
            stream.label(),
            config.metrics_level,
            config.metrics_granularity,
        );
        let shared = Arc::new(Shared {
            metrics,
            records: Arc::new(Semaphore::new(config.max_outstanding_records)),
            bytes: Arc::new(Semaphore::new(config.max_outstanding_bytes)),
            config,
            stream,
            max_record_bytes,
        });
        tokio::spawn(Worker::new(client, shared.clone(), map).run(receiver));
        Ok(Self { commands, shared })
    }

    /// Puts a record, waiting while the producer already holds its maximum of records or bytes.
    /// The returned future resolves once the record is delivered or has failed.
    ///
    /// Fails at once, handing the record back, with [`PutError::InvalidRecord`] for a record
    /// Kinesis would refuse, with [`PutError::LargerThanBuffer`] for one bigger than
    /// `max_outstanding_bytes` (it could never fit), and with [`PutError::Shutdown`] once the
    /// producer is shut down.
    pub async fn put(&self, record: Record) -> Result<DeliveryFuture, PutFailure> {
        let (hash, size) = self.check(&record)?;
        let records = self.shared.records.clone().acquire_owned().await;
        let bytes = self.shared.bytes.clone().acquire_many_owned(size).await;
        match (records, bytes) {
            (Ok(records), Ok(bytes)) => self.enqueue(record, hash, (records, bytes)),
            _ => Err(failure(PutError::Shutdown, record)),
        }
    }

    /// Puts a record, failing at once with [`PutError::Full`] when the producer holds its
    /// maximum of records or bytes (and with the errors of [`put`](Self::put)).
    pub fn try_put(&self, record: Record) -> Result<DeliveryFuture, PutFailure> {
        let (hash, size) = self.check(&record)?;
        let full = |what: &str| {
            failure(
                PutError::Full(format!("{what} limit reached")),
                record.clone(),
            )
        };
        let records = self
            .shared
            .records
            .clone()
            .try_acquire_owned()
            .map_err(|_| full("outstanding records"))?;
        let bytes = self
            .shared
            .bytes
            .clone()
            .try_acquire_many_owned(size)
            .map_err(|_| full("outstanding bytes"))?;
        self.enqueue(record, hash, (records, bytes))
    }

    fn check(&self, record: &Record) -> Result<(u128, u32), PutFailure> {
        let invalid = |message: String| failure(PutError::InvalidRecord(message), record.clone());
        let key_chars = record.partition_key.chars().count();
        if !(1..=256).contains(&key_chars) {
            return Err(invalid(format!(
                "the partition key has {key_chars} characters; 1 to 256 are allowed"
            )));
        }
        let hash = hash_key(&record.partition_key, record.explicit_hash_key.as_deref())
            .ok_or_else(|| {
                invalid("the explicit hash key is not a decimal in 0..2^128-1".into())
            })?;
        if record.size() > self.shared.max_record_bytes {
            return Err(invalid(format!(
                "the record is {} bytes (data plus partition key); the stream allows {}",
                record.size(),
                self.shared.max_record_bytes
            )));
        }
        // Its permits could never all be free at once: `put` would wait forever.
        let max_outstanding_bytes = self.shared.config.max_outstanding_bytes;
        if record.size() > max_outstanding_bytes {
            return Err(failure(
                PutError::LargerThanBuffer {
                    size: record.size(),
                    max_outstanding_bytes,
                },
                record.clone(),
            ));
        }
        // Records are at most 10 MiB, so their size fits a permit count.
        Ok((hash, record.size().max(1) as u32))
    }

    fn enqueue(
        &self,
        record: Record,
        hash: u128,
        permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) -> Result<DeliveryFuture, PutFailure> {
        let (reply, receiver) = oneshot::channel();
        let metrics = self.shared.metrics.clone();
        let pending = Pending::new(record, hash, &self.shared.config, reply, permits, metrics);
        self.shared.metrics.user_records_received.increment(1);
        self.commands
            .send(Command::Put(pending))
            .map_err(|rejected| match rejected.0 {
                Command::Put(pending) => failure(PutError::Shutdown, pending.into_record()),
                _ => unreachable!("only puts are sent here"),
            })?;
        Ok(DeliveryFuture { reply: receiver })
    }

    /// Sends everything buffered now instead of waiting for `record_max_buffered_time`.
    pub fn flush(&self) {
        let _ = self.commands.send(Command::Flush);
    }

    /// Flushes, then waits until every record put so far is delivered or failed, for at most
    /// `timeout`. Returns whether everything was settled in time.
    pub async fn flush_all(&self, timeout: Duration) -> bool {
        self.flush();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.outstanding() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.flush();
        }
    }

    /// User records put but not yet delivered or failed.
    pub fn outstanding(&self) -> usize {
        self.shared.config.max_outstanding_records - self.shared.records.available_permits()
    }

    /// Stops taking records, delivers what it can within `timeout`, and returns exactly the
    /// records it could not deliver (each of their futures also fails with
    /// [`PutError::Shutdown`]).
    pub async fn shutdown(self, timeout: Duration) -> Vec<Record> {
        let (reply, undelivered) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { timeout, reply })
            .is_err()
        {
            return Vec::new();
        }
        let records = undelivered.await.unwrap_or_default();
        self.shared.records.close();
        self.shared.bytes.close();
        records
    }
}

/// Kinesis' default maximum record size.
const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// The stream's maximum record size, or Kinesis' default of 1 MiB if it cannot be read.
async fn max_record_bytes(client: &Client, stream: &StreamTarget) -> usize {
    let request = client.describe_stream_summary();
    let request = match stream {
        StreamTarget::Name(name) => request.stream_name(name),
        StreamTarget::Arn(arn) => request.stream_arn(arn),
    };
    request
        .send()
        .await
        .ok()
        .and_then(|out| out.stream_description_summary)
        .and_then(|summary| summary.max_record_size_in_kib)
        .map_or(DEFAULT_MAX_RECORD_BYTES, |kib| kib.max(1) as usize * 1024)
}

fn failure(error: PutError, record: Record) -> PutFailure {
    PutFailure {
        error,
        record,
        attempts: Vec::new(),
    }
}

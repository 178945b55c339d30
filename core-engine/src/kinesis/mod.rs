//! The Kinesis service: one file per family of operations, each with its request and response
//! shapes, validation, and the work itself.

mod account;
mod capacity;
mod channels;
mod consumers;
mod encryption;
mod get_records;
mod iterator;
mod kept;
mod limits;
mod monitoring;
mod on_demand;
mod page_token;
mod policy;
pub(crate) mod put;
mod queues;
mod reshard;
mod resource;
mod resource_tags;
mod retention;
mod shards;
#[cfg(test)]
pub(crate) mod sim_service;
mod streams;
mod subscribe;

pub(crate) use channels::deliver_due;
pub(crate) use subscribe::EventFrames;
mod tags;
mod validate;

use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::faults::{Fault, FaultInjector};
use crate::model::records::RecordBacking;
use crate::model::registry::{Pending, Registry};
use crate::model::stream::{Stream, StreamState};
use crate::protocol::DropConnection;
use crate::protocol::json;
use crate::storage::{Lsn, RecoveryEvent, Storage, StorageError, StreamId, wait_durable};

/// Settings of the Kinesis service that the engine builder controls.
#[derive(Clone, Debug)]
pub(crate) struct ServiceConfig {
    pub(crate) region: String,
    pub(crate) account_id: String,
    /// How long a new stream stays CREATING.
    pub(crate) create_delay_ms: i64,
    /// How long a new consumer stays CREATING.
    pub(crate) consumer_create_delay_ms: i64,
    /// How long a stream stays UPDATING after SplitShard, MergeShards or UpdateShardCount.
    pub(crate) reshard_delay_ms: i64,
    /// Most open shards across all streams (DescribeLimits' ShardLimit).
    pub(crate) shard_limit: u32,
    /// Most on-demand streams.
    pub(crate) on_demand_stream_limit: u32,
    /// Whether appends go to persistent storage (and reads wait for durability).
    pub(crate) durable: bool,
    /// Whether per-shard throughput limits are enforced.
    pub(crate) throughput_limits: bool,
    /// How long a SubscribeToShard stream lasts.
    pub(crate) subscription_lifetime: std::time::Duration,
    /// Signs shard iterators and NextTokens.
    pub(crate) token_key: crate::model::iterator::TokenKey,
    /// Wraps the data keys of streams encrypted at rest.
    pub(crate) master_key: Arc<crate::storage::crypto::MasterKeySlot>,
    /// Durable: the most bytes of record bodies cached in memory (the rest is read back from
    /// the log).
    pub(crate) cache_bytes: u64,
    /// In memory: the most bytes of records held before puts are refused.
    pub(crate) max_memory_bytes: Option<u64>,
}

/// The Kinesis service state shared by every connection.
#[derive(Debug)]
pub(crate) struct Kinesis {
    pub(crate) config: ServiceConfig,
    pub(crate) registry: Registry,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Least time between two fan-out events with records (see `subscribe`).
    pub(crate) fan_out_batch_window: std::time::Duration,
    /// Serialises control-plane changes so that metadata snapshots are saved in order.
    control: Mutex<()>,
    /// Numbers fan-out subscriptions.
    subscriptions: std::sync::atomic::AtomicU64,
    /// Injected faults.
    pub(crate) faults: Arc<FaultInjector>,
    /// Channels and the directory they deliver to.
    channels: channels::Channels,
    /// Queues and where a durable engine keeps them.
    queues: queues::Queues,
    /// Serialises checkpoints; holds the log's appended bytes at the last one and its size.
    checkpointing: Mutex<(u64, u64)>,
    /// Least log growth between periodic checkpoints: [`CHECKPOINT_BYTES`], lowered by tests.
    pub(crate) checkpoint_bytes: u64,
}

/// Log growth after which retention's periodic check saves an index checkpoint.
pub(crate) const CHECKPOINT_BYTES: u64 = 256 * 1024 * 1024;

impl Kinesis {
    pub(crate) fn new(
        config: ServiceConfig,
        registry: Registry,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        faults: Arc<FaultInjector>,
    ) -> Self {
        Self {
            config,
            registry,
            storage,
            clock,
            fan_out_batch_window: std::time::Duration::from_millis(2),
            control: Mutex::new(()),
            subscriptions: Default::default(),
            faults,
            channels: Default::default(),
            queues: Default::default(),
            checkpointing: Mutex::new((0, 0)),
            checkpoint_bytes: CHECKPOINT_BYTES,
        }
    }

    /// Sets the least time between two fan-out events with records.
    pub(crate) fn with_fan_out_batch_window(mut self, window: std::time::Duration) -> Self {
        self.fan_out_batch_window = window;
        self
    }

    /// Rebuilds the service from what `storage` recovers; `metadata_path` names the metadata in
    /// errors.
    pub(crate) fn recover(
        config: ServiceConfig,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        faults: Arc<FaultInjector>,
        metadata_path: std::path::PathBuf,
    ) -> Result<Self, StorageError> {
        let (region, account) = (config.region.clone(), config.account_id.clone());
        let arn = |name: &str| format!("arn:aws:kinesis:{region}:{account}:stream/{name}");
        let master = config.master_key.get();
        let backing = Arc::new(match config.durable {
            true => RecordBacking::durable(storage.clone(), config.cache_bytes),
            false => RecordBacking::memory(config.max_memory_bytes),
        });
        let mut restore = Registry::restore(backing, clock.now_ms(), &metadata_path);
        let mut batches = 0usize;
        let recovery = storage.recover_each(&mut |event| match event {
            RecoveryEvent::Metadata(snapshot) => {
                restore.metadata(snapshot.as_deref(), arn, master.as_ref())
            }
            RecoveryEvent::Checkpoint { index, .. } => restore.checkpoint(&index),
            RecoveryEvent::Batch(lsn, batch) => {
                batches += 1;
                restore.batch(lsn, batch)
            }
        })?;
        if recovery.truncated_bytes > 0 {
            tracing::warn!(
                bytes = recovery.truncated_bytes,
                "cut a torn tail off the log"
            );
        }
        let registry = restore.finish();
        if config.durable {
            let streams = registry.list().len();
            tracing::info!(streams, batches, "recovered data directory");
        }
        Ok(Self::new(config, registry, storage, clock, faults))
    }

    pub(crate) fn next_subscription_id(&self) -> u64 {
        self.subscriptions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn stream_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kinesis:{}:{}:stream/{name}",
            self.config.region, self.config.account_id
        )
    }

    /// The stream with this name, or AWS's not-found error.
    pub(crate) fn stream(&self, name: &str) -> Result<Arc<Stream>, ApiError> {
        self.registry
            .get(name)
            .ok_or_else(|| self.stream_not_found(name))
    }

    /// The stream, which must be ACTIVE (data-plane operations do not see CREATING streams).
    pub(crate) fn active_stream(&self, name: &str) -> Result<Arc<Stream>, ApiError> {
        let stream = self.stream(name)?;
        if self.is_creating(&stream) {
            return Err(self.stream_not_found(name));
        }
        Ok(stream)
    }

    /// The error for a request over a shard's throughput.
    pub(crate) fn rate_exceeded(&self, shard: u32, stream: &str) -> ApiError {
        ApiError::ProvisionedThroughputExceeded(self.rate_exceeded_message(shard, stream))
    }

    pub(crate) fn rate_exceeded_message(&self, shard: u32, stream: &str) -> String {
        self.count_throttled(shard, stream);
        format!(
            "Rate exceeded for shard {} in stream {stream} under account {}.",
            crate::model::shard::shard_id(shard),
            self.config.account_id
        )
    }

    pub(crate) fn stream_not_found(&self, name: &str) -> ApiError {
        ApiError::ResourceNotFound(format!(
            "Stream {name} under account {} not found.",
            self.config.account_id
        ))
    }

    pub(crate) fn is_creating(&self, stream: &Stream) -> bool {
        self.now_ms() < stream.created_ms + self.config.create_delay_ms
    }

    pub(crate) fn status(&self, stream: &Stream) -> &'static str {
        let state = stream.state.lock();
        self.status_of(stream, &state)
    }

    /// [`Kinesis::status`] when the caller holds the stream's state.
    pub(crate) fn status_of(&self, stream: &Stream, state: &StreamState) -> &'static str {
        if self.is_creating(stream) {
            "CREATING"
        } else if state.encryption.is_updating(self.now_ms())
            || self.now_ms() < state.reshard_until_ms
        {
            "UPDATING"
        } else {
            "ACTIVE"
        }
    }

    /// Runs a settings change (tags, retention, consumers, capacity mode) and saves the metadata
    /// snapshot before answering, so that an acknowledged change survives a crash. Changes that
    /// decide where records go use [`Kinesis::reshape`], [`Kinesis::add_stream`] and
    /// [`Kinesis::remove_stream`], which save first.
    pub(crate) fn change<T>(
        &self,
        apply: impl FnOnce() -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _guard = self.control.lock();
        let value = apply()?;
        self.save_metadata(Pending::None)?;
        Ok(value)
    }

    /// Changes the shards of `stream` by planning on a [draft](StreamState::draft): the metadata
    /// with the draft is saved before the draft takes effect, and puts to the stream wait from
    /// the draft until then (see the ordering rule in [`crate::storage::wal`]).
    pub(crate) fn reshape<T>(
        &self,
        stream: &Stream,
        plan: impl FnOnce(&mut StreamState) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _guard = self.control.lock();
        let _pause = Pause::new(stream);
        let mut draft = {
            let state = stream.state.lock();
            if state.deleted {
                return Err(self.stream_not_found(&stream.name));
            }
            state.draft()
        };
        let value = plan(&mut draft)?;
        self.save_metadata(Pending::Reshape(stream.id, &draft))?;
        stream.state.lock().adopt(draft);
        Ok(value)
    }

    /// Adds the stream `build` makes with a fresh id, once `check` passed. The metadata with
    /// the stream, and the id high-water mark above its id, is saved before the stream is in the
    /// registry, so no put reaches a stream the disk does not know and no id is used twice.
    pub(crate) fn add_stream(
        &self,
        check: impl FnOnce() -> Result<(), ApiError>,
        build: impl FnOnce(StreamId) -> Stream,
    ) -> Result<(), ApiError> {
        let _guard = self.control.lock();
        check()?;
        let stream = build(self.registry.allocate_id());
        self.save_metadata(Pending::Create(&stream))?;
        self.registry
            .insert(stream)
            .map(drop)
            .map_err(|name| ApiError::ResourceInUse(format!("Stream {name} already exists.")))
    }

    /// Deletes a stream: saved in the metadata first, with its puts paused meanwhile; puts that
    /// still hold the stream are refused afterwards.
    pub(crate) fn remove_stream(&self, name: &str) -> Result<(), ApiError> {
        let _guard = self.control.lock();
        let stream = self.stream(name)?;
        let _pause = Pause::new(&stream);
        self.save_metadata(Pending::Delete(stream.id))?;
        stream.state.lock().deleted = true;
        self.registry.remove(name);
        Ok(())
    }

    fn save_metadata(&self, pending: Pending<'_>) -> Result<(), StorageError> {
        if self.config.durable {
            self.storage
                .save_metadata(&self.registry.snapshot(pending))?;
        }
        Ok(())
    }

    /// Waits until the log holds everything up to `lsn` durably.
    pub(crate) async fn wait_durable(&self, lsn: Lsn) -> Result<(), ApiError> {
        if self.config.durable {
            wait_durable(&mut self.storage.durability(), lsn).await?;
        }
        Ok(())
    }

    /// Refuses a put while the records held exceed the in-memory cap
    /// (`--max-memory-bytes`) with LimitExceededException; reads keep working.
    pub(crate) fn check_memory_cap(&self) -> Result<(), ApiError> {
        self.registry
            .backing
            .check_cap()
            .map_err(ApiError::LimitExceeded)
    }

    /// The highest LSN readers may see.
    pub(crate) fn durable_lsn(&self) -> Lsn {
        if self.config.durable {
            self.storage.durability().borrow().durable_lsn
        } else {
            Lsn::MAX
        }
    }

    /// Saves an index checkpoint of every stream's records up to the durable LSN, so that a
    /// restart replays only the log after it; a durable engine does so when the log has grown by
    /// [`CHECKPOINT_BYTES`], and by four times the last checkpoint's size, since the last one
    /// (checked with retention), and when it stops.
    pub(crate) fn checkpoint(&self) -> Result<(), StorageError> {
        if !self.config.durable {
            return Ok(());
        }
        let mut last = self.checkpointing.lock();
        let appended = self.storage.appended_bytes();
        let covered = self.storage.durability().borrow().durable_lsn;
        let index = self.registry.encode_index(covered);
        self.storage.save_checkpoint(covered, &index)?;
        *last = (appended, index.len() as u64);
        tracing::debug!(covered, bytes = index.len(), "saved an index checkpoint");
        Ok(())
    }

    /// Drops expired records from memory and releases log space retention no longer needs.
    pub(crate) fn enforce_retention(&self) -> Result<usize, StorageError> {
        let now = self.now_ms();
        let trimmed = self
            .registry
            .list()
            .iter()
            .map(|s| s.state.lock().trim(now))
            .sum();
        if self.config.durable {
            // Save the shards' last sequence numbers before the log holding them can go.
            let _guard = self.control.lock();
            self.save_metadata(Pending::None)?;
            let freed = self.storage.release(&self.registry.retention_view(now))?;
            if freed > 0 {
                tracing::info!(freed, "released expired log segments");
            }
            let (at, index_len) = *self.checkpointing.lock();
            let since = self.storage.appended_bytes().saturating_sub(at);
            // At least four times the index's size, so that checkpoints of a large index write
            // at most a quarter as much again as the log.
            if since >= self.checkpoint_bytes.max(4 * index_len) {
                self.checkpoint()?;
            }
        }
        Ok(trimmed)
    }
}

/// Pauses the puts of a stream until dropped (see [`StreamState::paused`]).
struct Pause<'a>(&'a Stream);

impl<'a> Pause<'a> {
    fn new(stream: &'a Stream) -> Self {
        stream.state.lock().paused.send_replace(true);
        Self(stream)
    }
}

impl Drop for Pause<'_> {
    fn drop(&mut self) {
        self.0.state.lock().paused.send_replace(false);
    }
}

/// Starts a SubscribeToShard stream; its frames follow on the returned channel. With
/// `end_early` (an injected fault) it ends after its first event.
pub(crate) fn subscribe(
    kinesis: &Arc<Kinesis>,
    body: &[u8],
    end_early: bool,
    cbor: bool,
) -> Result<subscribe::EventFrames, ApiError> {
    kinesis.subscribe_to_shard(json::decode(body)?, end_early, cbor)
}

/// The injected faults that hit a call as a whole. PutRecords' throttling and internal failures
/// hit records one by one instead, in the put itself.
pub(crate) fn call_faults(kinesis: &Kinesis, operation: &str, body: &[u8]) -> Vec<Fault> {
    if kinesis.faults.is_empty() {
        return Vec::new();
    }
    let stream = stream_named_in(body, &kinesis.config.token_key);
    kinesis.faults.draw(operation, stream.as_deref(), |fault| {
        operation != "PutRecords" || !fault.is_per_record()
    })
}

/// Applies call-level faults: waits for added latency, then gives the error to answer with, or
/// asks for the connection to be dropped.
pub(crate) async fn apply_call_faults(
    faults: &[Fault],
) -> Result<Option<ApiError>, DropConnection> {
    for fault in faults {
        if let Fault::Latency { ms } = fault {
            tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
        }
    }
    for fault in faults {
        match fault {
            Fault::DropConnection => return Err(DropConnection),
            Fault::Throttle => {
                return Ok(Some(ApiError::ProvisionedThroughputExceeded(
                    "Rate exceeded (injected fault).".into(),
                )));
            }
            Fault::InternalFailure => {
                return Ok(Some(ApiError::InternalFailure(
                    "Internal service failure (injected fault).".into(),
                )));
            }
            Fault::ExpireIterator => {
                return Ok(Some(ApiError::ExpiredIterator(
                    "Iterator expired (injected fault).".into(),
                )));
            }
            // DropAfterApply acts once the call is done (in `protocol::handle`).
            Fault::Latency { .. } | Fault::EndSubscription | Fault::DropAfterApply => {}
        }
    }
    Ok(None)
}

/// The stream a request body names, by name, ARN, consumer ARN, resource ARN or shard iterator.
fn stream_named_in(body: &[u8], key: &crate::model::iterator::TokenKey) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |key: &str| value.get(key).and_then(|v| v.as_str());
    if let Some(name) = text("StreamName") {
        return Some(name.to_owned());
    }
    let arn = text("StreamARN")
        .or_else(|| text("ConsumerARN"))
        .or_else(|| text("ResourceARN"));
    if let Some(arn) = arn {
        let after = arn.split_once(":stream/")?.1;
        return Some(after.split('/').next().unwrap_or(after).to_owned());
    }
    let iterator = crate::model::iterator::ShardIterator::decode(text("ShardIterator")?, key)?;
    Some(iterator.stream_name)
}

/// Runs one of the operations served over CBOR directly (`protocol::cbor::is_direct`) on the
/// CBOR `body`, and gives its CBOR answer.
pub(crate) async fn dispatch_cbor(
    kinesis: &Kinesis,
    operation: &str,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    use crate::protocol::cbor;
    match operation {
        "PutRecord" => {
            kinesis.check_memory_cap()?;
            let input = cbor::requests::put_record(body)?;
            Ok(kinesis.put_record(input).await?.to_cbor())
        }
        "PutRecords" => {
            kinesis.check_memory_cap()?;
            let input = cbor::requests::put_records(body)?;
            Ok(kinesis.put_records(input).await?.to_cbor())
        }
        "GetRecords" => {
            // A small request: the translation costs little, unlike the records of the answer.
            let json = cbor::cbor_request_to_json(body, cbor::input_shape(operation))?;
            Ok(kinesis.get_records(json::decode(&json)?).await?.to_cbor())
        }
        other => Err(ApiError::InternalFailure(format!(
            "{other} is not served over CBOR directly"
        ))),
    }
}

/// Runs `operation` on `body`.
pub(crate) async fn dispatch(
    kinesis: &Kinesis,
    operation: &str,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    match operation {
        "CreateStream" => unit(kinesis.create_stream(json::decode(body)?)),
        "DeleteStream" => unit(kinesis.delete_stream(json::decode(body)?)),
        "DescribeStream" => reply(kinesis.describe_stream(json::decode(body)?)),
        "DescribeStreamSummary" => reply(kinesis.describe_stream_summary(json::decode(body)?)),
        "ListStreams" => reply(kinesis.list_streams(json::decode(body)?)),
        "ListShards" => reply(kinesis.list_shards(json::decode(body)?)),
        // The hot paths write their answers by hand (see `protocol::json::writer`).
        "PutRecord" => {
            kinesis.check_memory_cap()?;
            Ok(kinesis.put_record(json::decode(body)?).await?.to_json())
        }
        "PutRecords" => {
            kinesis.check_memory_cap()?;
            Ok(kinesis
                .put_records(json::decode_borrowed(body)?)
                .await?
                .to_json())
        }
        "GetShardIterator" => reply(kinesis.get_shard_iterator(json::decode(body)?)),
        "GetRecords" => Ok(kinesis.get_records(json::decode(body)?).await?.to_json()),
        "IncreaseStreamRetentionPeriod" => unit(kinesis.increase_retention(json::decode(body)?)),
        "DecreaseStreamRetentionPeriod" => unit(kinesis.decrease_retention(json::decode(body)?)),
        "AddTagsToStream" => unit(kinesis.add_tags(json::decode(body)?)),
        "RemoveTagsFromStream" => unit(kinesis.remove_tags(json::decode(body)?)),
        "ListTagsForStream" => reply(kinesis.list_tags(json::decode(body)?)),
        "DescribeLimits" => reply(kinesis.describe_limits()),
        "SplitShard" => unit(kinesis.split_shard(json::decode(body)?)),
        "MergeShards" => unit(kinesis.merge_shards(json::decode(body)?)),
        "UpdateShardCount" => reply(kinesis.update_shard_count(json::decode(body)?)),
        "UpdateStreamMode" => unit(kinesis.update_stream_mode(json::decode(body)?)),
        "UpdateMaxRecordSize" => unit(kinesis.update_max_record_size(json::decode(body)?)),
        "RegisterStreamConsumer" => reply(kinesis.register_consumer(json::decode(body)?)),
        "DescribeStreamConsumer" => reply(kinesis.describe_consumer(json::decode(body)?)),
        "ListStreamConsumers" => reply(kinesis.list_consumers(json::decode(body)?)),
        "DeregisterStreamConsumer" => unit(kinesis.deregister_consumer(json::decode(body)?)),
        "EnableEnhancedMonitoring" => reply(kinesis.enable_monitoring(json::decode(body)?)),
        "DisableEnhancedMonitoring" => reply(kinesis.disable_monitoring(json::decode(body)?)),
        "PutResourcePolicy" => unit(kinesis.put_resource_policy(json::decode(body)?)),
        "GetResourcePolicy" => reply(kinesis.get_resource_policy(json::decode(body)?)),
        "DeleteResourcePolicy" => unit(kinesis.delete_resource_policy(json::decode(body)?)),
        "TagResource" => unit(kinesis.tag_resource(json::decode(body)?)),
        "UntagResource" => unit(kinesis.untag_resource(json::decode(body)?)),
        "ListTagsForResource" => reply(kinesis.list_tags_for_resource(json::decode(body)?)),
        "DescribeAccountSettings" => reply(kinesis.describe_account_settings(json::decode(body)?)),
        "UpdateAccountSettings" => reply(kinesis.update_account_settings(json::decode(body)?)),
        "UpdateStreamWarmThroughput" => reply(kinesis.update_warm_throughput(json::decode(body)?)),
        "CreateChannel" => reply(kinesis.create_channel(json::decode(body)?)),
        "DescribeChannel" => reply(kinesis.describe_channel(json::decode(body)?)),
        "ListChannels" => reply(kinesis.list_channels(json::decode(body)?)),
        "UpdateChannel" => reply(kinesis.update_channel(json::decode(body)?)),
        "DeleteChannel" => unit(kinesis.delete_channel(json::decode(body)?)),
        "UpdateStreamRecordDistributionStrategy" => {
            unit(kinesis.update_distribution_strategy(json::decode(body)?))
        }
        "StartStreamEncryption" => unit(kinesis.start_encryption(json::decode(body)?)),
        "StopStreamEncryption" => unit(kinesis.stop_encryption(json::decode(body)?)),
        other if other.contains("Queue") => queues::dispatch(kinesis, other, body).await,
        other => Err(ApiError::UnknownOperation(format!(
            "Operation {other} is not supported by this engine"
        ))),
    }
}

fn reply<T: Serialize>(result: Result<T, ApiError>) -> Result<Vec<u8>, ApiError> {
    result.map(|output| json::encode(&output))
}

/// Operations without output answer with an empty body, as AWS does.
fn unit(result: Result<(), ApiError>) -> Result<Vec<u8>, ApiError> {
    result.map(|()| Vec::new())
}

//! The `kcl` record processor that folds clicks into the feature table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kcl::{
    Checkpointer, ProcessRecordsInput, ProcessorError, RecordProcessor, RecordProcessorFactory,
};

use super::model::{Click, Features};
use super::store;
use crate::verdict::{ProcessorActivity, SharedActivity};

/// What the processors of one application did, summed over shards.
#[derive(Debug, Default)]
pub struct Counters {
    /// Clicks that changed a user's features.
    pub applied: u64,
    /// Clicks already applied (replays or producer retries), skipped.
    pub skipped: u64,
    /// Writes refused because the item had changed since it was read; retried after a reread.
    pub conflicts: u64,
    /// Records that were not clicks.
    pub malformed: u64,
    /// Highest `seq` seen per user, to tell when a replay has read everything.
    pub seen: HashMap<String, u64>,
}

/// Shared [`Counters`].
pub type SharedCounters = Arc<Mutex<Counters>>;

/// Locks the counters; a panicking processor cannot leave them half-updated (plain additions).
pub fn lock(counters: &SharedCounters) -> std::sync::MutexGuard<'_, Counters> {
    counters.lock().unwrap_or_else(|e| e.into_inner())
}

/// Folds each batch into the feature table, one conditional write per user per batch, then
/// checkpoints.
#[derive(Debug)]
pub struct FeatureWriter {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    recent: usize,
    /// The items as this processor last wrote them, to save a read per batch.
    cache: HashMap<String, Features>,
    counters: SharedCounters,
    /// Tells when another processor works on this shard at the same time.
    activity: ProcessorActivity,
}

/// Writes that keep conflicting this often mean something is wrong, not a race.
const MAX_ATTEMPTS: usize = 10;

impl FeatureWriter {
    async fn write_user(&mut self, user: &str, clicks: &[Click]) -> Result<(), ProcessorError> {
        for _ in 0..MAX_ATTEMPTS {
            let base = match self.cache.get(user) {
                Some(cached) => Some(cached.clone()),
                None => store::load(&self.ddb, &self.table, user).await?,
            };
            let mut next = base.clone();
            let (mut applied, mut skipped) = (0, 0);
            for click in clicks {
                let changed = match &mut next {
                    Some(features) => features.apply(click, self.recent),
                    None => {
                        next = Some(Features::first(click));
                        true
                    }
                };
                if changed { applied += 1 } else { skipped += 1 }
            }
            let Some(next) = next.filter(|_| applied > 0) else {
                lock(&self.counters).skipped += skipped;
                return Ok(());
            };
            let expected = base.as_ref().map(|b| b.last_seq);
            if store::put_if_unchanged(&self.ddb, &self.table, &next, expected).await? {
                let mut counters = lock(&self.counters);
                counters.applied += applied;
                counters.skipped += skipped;
                self.cache.insert(user.to_owned(), next);
                return Ok(());
            }
            // Someone else wrote this user since our read: read again and redo the fold.
            self.cache.remove(user);
            lock(&self.counters).conflicts += 1;
        }
        Err(format!("features of {user} kept changing under {MAX_ATTEMPTS} writes").into())
    }
}

impl RecordProcessor for FeatureWriter {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let _batch = self.activity.begin();
        self.process(input, checkpointer).await
    }

    async fn lease_lost(&mut self) {
        // The next owner may write; our cache would be stale.
        self.cache.clear();
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

impl FeatureWriter {
    /// Folds a batch into the table, then checkpoints.
    async fn process(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        // Group by user, keeping each user's clicks in shard order.
        let mut by_user: HashMap<String, Vec<Click>> = HashMap::new();
        for record in &input.records {
            match serde_json::from_slice::<Click>(&record.data) {
                Ok(click) => by_user.entry(click.user.clone()).or_default().push(click),
                // Retrying cannot fix a bad record; it is counted and the report fails.
                Err(_) => lock(&self.counters).malformed += 1,
            }
        }
        for (user, clicks) in &by_user {
            self.write_user(user, clicks).await?;
            let last = clicks.iter().map(|c| c.seq).max().unwrap_or(0);
            let mut counters = lock(&self.counters);
            let seen = counters.seen.entry(user.clone()).or_insert(last);
            *seen = (*seen).max(last);
        }
        // Only after every write: a crash before this line replays the batch, which the
        // `last_seq` guard turns into skips.
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

/// Creates a [`FeatureWriter`] per shard.
#[derive(Clone, Debug)]
pub struct WriterFactory {
    /// DynamoDB client for the feature table.
    pub ddb: aws_sdk_dynamodb::Client,
    /// The feature table.
    pub table: String,
    /// How many recent pages each user keeps.
    pub recent: usize,
    /// Where the processors count what they did.
    pub counters: SharedCounters,
    /// Which processor handles each shard, to catch two at once.
    pub activity: SharedActivity,
}

impl RecordProcessorFactory for WriterFactory {
    type Processor = FeatureWriter;

    fn create(&self, shard_id: &str) -> FeatureWriter {
        FeatureWriter {
            ddb: self.ddb.clone(),
            table: self.table.clone(),
            recent: self.recent,
            cache: HashMap::new(),
            counters: self.counters.clone(),
            activity: self.activity.processor(shard_id),
        }
    }
}

//! A DynamoDB-compatible store, enough for lease tables: served on the engine's port over
//! awsJson1.0 with `X-Amz-Target: DynamoDB_20120810.<Operation>`.
//!
//! # Model
//! - Tables have a partition key and an optional sort key, and global secondary indexes; a new
//!   table (and a new index) is `CREATING` for the engine's `table_create_delay`, then `ACTIVE`.
//! - Items are maps of [`value::AttributeValue`]s; numbers are exact decimals of 38 digits.
//! - Every write is atomic per item: the table's lock is held while the condition is checked,
//!   the change logged (and synced) and applied, so concurrent conditional writes on one item
//!   serialise and exactly one of two racing writers conditioned on the same state wins.
//!   Transactions and batches lock each table they touch in name order and log one frame.
//! - Conditions and updates come as expressions ([`expr`]) or as the legacy `Expected` and
//!   `AttributeUpdates` parameters ([`legacy`]), which are translated into the same forms.
//!
//! # Layout
//! `tables.rs`, `items.rs`, `query_scan.rs`, `batch.rs`, `transact.rs` and `control.rs` (tags,
//! TTL, backups, limits, endpoints) hold one family of operations each; `expiry.rs` deletes
//! items whose time to live has passed; `table.rs` the item storage and indexes; `store.rs` persistence.

mod batch;
mod control;
pub(crate) mod error;
mod expiry;
pub mod expr;
mod faults;
mod items;
pub(crate) mod legacy;
pub(crate) mod number;
mod query_scan;
pub(crate) mod store;
pub(crate) mod table;
mod tables;
mod transact;
pub(crate) mod value;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use parking_lot::{Condvar, Mutex, RwLock};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::clock::Clock;
use crate::faults::FaultInjector;
use crate::protocol::DropConnection;
use crate::storage::StorageError;
use crate::storage::wal::SyncMode;
use error::DdbError;
use faults::Injected;
use store::{FileStore, LogEntry, MemoryStore, Store};
use table::Table;

const JSON_1_0: &str = "application/x-amz-json-1.0";

/// The operations [`DynamoDb::dispatch`] serves (fault rules are checked against them).
pub(crate) const OPERATIONS: &[&str] = &[
    "CreateTable",
    "DescribeTable",
    "UpdateTable",
    "DeleteTable",
    "ListTables",
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
    // Appended, so fuzz seeds that select operations by index stay valid.
    "DescribeContinuousBackups",
    "TagResource",
    "UntagResource",
    "ListTagsOfResource",
    "DescribeLimits",
    "DescribeEndpoints",
    "DescribeTimeToLive",
    "UpdateTimeToLive",
];

/// Settings the engine builder controls.
#[derive(Clone, Debug)]
pub(crate) struct DdbConfig {
    pub(crate) region: String,
    pub(crate) account_id: String,
    /// How long a new table or index stays CREATING.
    pub(crate) create_delay_ms: i64,
}

/// The DynamoDB service state shared by every connection.
#[derive(Debug)]
pub(crate) struct DynamoDb {
    config: DdbConfig,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
    tables: Arc<Tables>,
    /// Wakes the compaction thread, if the store is durable.
    compactor: Option<Compactor>,
}

/// Every table by name.
type Tables = RwLock<BTreeMap<String, Arc<Mutex<Table>>>>;

/// The thread that compacts the log, off the request path.
#[derive(Debug)]
struct Compactor {
    signal: Arc<(Mutex<CompactorState>, Condvar)>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct CompactorState {
    requested: bool,
    stop: bool,
}

/// A locked table, shared with the map of tables.
pub(crate) type TableRef = Arc<Mutex<Table>>;

impl DynamoDb {
    /// In memory, or durable in `dir` (the `dynamodb` folder of the data directory), replaying
    /// what the log holds.
    pub(crate) fn open(
        config: DdbConfig,
        clock: Arc<dyn Clock>,
        dir: Option<&Path>,
        sync: SyncMode,
    ) -> Result<Self, StorageError> {
        let Some(dir) = dir else {
            return Ok(Self::with_store(
                config,
                clock,
                Arc::new(MemoryStore),
                BTreeMap::new(),
            ));
        };
        let opened = FileStore::open(dir, sync)?;
        if opened.truncated_bytes > 0 {
            tracing::warn!(
                bytes = opened.truncated_bytes,
                "cut a torn tail off the DynamoDB log"
            );
        }
        let mut tables = BTreeMap::new();
        let frames = opened.frames.len();
        for entry in opened.frames.into_iter().flatten() {
            replay(&mut tables, entry);
        }
        tracing::info!(tables = tables.len(), frames, "recovered DynamoDB tables");
        let mut service = Self::with_store(config, clock, Arc::new(opened.store), tables);
        // Start from a compact log, so replay time stays proportional to the live data.
        if frames > 1000 {
            compact(&service.tables, &*service.store)?;
        }
        service.compactor = Some(Compactor::spawn(&service.tables, &service.store)?);
        Ok(service)
    }

    fn with_store(
        config: DdbConfig,
        clock: Arc<dyn Clock>,
        store: Arc<dyn Store>,
        tables: BTreeMap<String, Table>,
    ) -> Self {
        let tables = tables
            .into_iter()
            .map(|(name, table)| (name, Arc::new(Mutex::new(table))))
            .collect();
        Self {
            config,
            clock,
            store,
            tables: Arc::new(RwLock::new(tables)),
            compactor: None,
        }
    }

    /// Stops compaction, then flushes and closes the log.
    pub(crate) fn close(&self) -> Result<(), StorageError> {
        if let Some(compactor) = &self.compactor {
            compactor.stop();
        }
        self.store.close()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn table_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{name}",
            self.config.region, self.config.account_id
        )
    }

    fn is_creating(&self, created_ms: i64) -> bool {
        self.now_ms() < created_ms.saturating_add(self.config.create_delay_ms)
    }

    /// The table, whatever its status, or the control-plane not-found error.
    fn table(&self, name: &str) -> Result<TableRef, DdbError> {
        self.tables.read().get(name).cloned().ok_or_else(|| {
            DdbError::ResourceNotFound(format!(
                "Requested resource not found: Table: {name} not found"
            ))
        })
    }

    /// The table for a data-plane operation: it must exist and be ACTIVE.
    fn active_table(&self, name: &str) -> Result<TableRef, DdbError> {
        let table = self
            .tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(DdbError::not_found)?;
        if self.is_creating(table.lock().meta.created_ms) {
            return Err(DdbError::not_found());
        }
        Ok(table)
    }

    /// Every table, in name order (for `/metrics` and the page).
    pub(crate) fn table_list(&self) -> Vec<TableRef> {
        self.tables.read().values().cloned().collect()
    }

    /// Makes `entries` durable; called with the tables they touch locked, before applying them.
    /// Asks for a compaction once the log has grown enough.
    fn commit(&self, entries: &[LogEntry]) -> Result<(), DdbError> {
        self.store.append(entries)?;
        if let Some(compactor) = &self.compactor
            && self.store.wants_compaction()
        {
            compactor.request();
        }
        Ok(())
    }

    /// Runs `operation` on a JSON `body`.
    pub(crate) fn dispatch(&self, operation: &str, body: &[u8]) -> Result<Vec<u8>, DdbError> {
        match operation {
            "CreateTable" => reply(self.create_table(decode(body)?)),
            "DescribeTable" => reply(self.describe_table(decode(body)?)),
            "UpdateTable" => reply(self.update_table(decode(body)?)),
            "DeleteTable" => reply(self.delete_table(decode(body)?)),
            "ListTables" => reply(self.list_tables(decode(body)?)),
            "GetItem" => reply(self.get_item(decode(body)?)),
            "PutItem" => reply(self.put_item(decode(body)?)),
            "UpdateItem" => reply(self.update_item(decode(body)?)),
            "DeleteItem" => reply(self.delete_item(decode(body)?)),
            "Query" => reply(self.query(decode(body)?)),
            "Scan" => reply(self.scan(decode(body)?)),
            "BatchGetItem" => reply(self.batch_get_item(decode(body)?)),
            "BatchWriteItem" => reply(self.batch_write_item(decode(body)?)),
            "TransactWriteItems" => reply(self.transact_write_items(decode(body)?)),
            "TransactGetItems" => reply(self.transact_get_items(decode(body)?)),
            "DescribeContinuousBackups" => reply(self.describe_continuous_backups(decode(body)?)),
            "TagResource" => reply(self.tag_resource(decode(body)?)),
            "UntagResource" => reply(self.untag_resource(decode(body)?)),
            "ListTagsOfResource" => reply(self.list_tags_of_resource(decode(body)?)),
            "DescribeLimits" => reply(decode::<Value>(body).map(|_| self.describe_limits())),
            "DescribeEndpoints" => reply(decode::<Value>(body).map(|_| self.describe_endpoints())),
            "DescribeTimeToLive" => reply(self.describe_time_to_live(decode(body)?)),
            "UpdateTimeToLive" => reply(self.update_time_to_live(decode(body)?)),
            other => Err(DdbError::UnknownOperation(format!(
                "Operation {other} is not supported by this engine"
            ))),
        }
    }
}

/// Rewrites the log as a snapshot of every table and item. The snapshot is encoded with every
/// table locked (in name order, as transactions take them), so that it matches the log position
/// read with it; the file is written after the locks are released.
fn compact(tables: &Tables, store: &dyn Store) -> Result<(), StorageError> {
    let mut snapshot = Vec::new();
    let (position, entries) = {
        let tables = tables.read();
        let guards: Vec<_> = tables.values().map(|t| t.lock()).collect();
        let position = store.position();
        let mut count = 0;
        let entries = guards.iter().flat_map(|table| {
            let items = table::walk(&table.items, None).map(|(_, _, item)| LogEntry::Put {
                table: table.meta.name.clone(),
                item: item.clone(),
            });
            std::iter::once(LogEntry::CreateTable(table.meta.clone())).chain(items)
        });
        store::encode_snapshot(entries.inspect(|_| count += 1), &mut snapshot).map_err(|len| {
            StorageError::Unavailable(
                format!("a snapshot entry of {len} bytes exceeds the log frame limit").into(),
            )
        })?;
        (position, count)
    };
    store.rewrite(&snapshot, position)?;
    tracing::info!(
        entries,
        bytes = snapshot.len(),
        "compacted the DynamoDB log"
    );
    Ok(())
}

impl Compactor {
    /// Starts the thread; it compacts whenever [`Compactor::request`] asks, until stopped.
    fn spawn(tables: &Arc<Tables>, store: &Arc<dyn Store>) -> Result<Self, StorageError> {
        let signal: Arc<(Mutex<CompactorState>, Condvar)> = Arc::default();
        let (tables, store, wake) = (tables.clone(), store.clone(), signal.clone());
        let thread = std::thread::Builder::new()
            .name("dynamodb-compactor".into())
            .spawn(move || {
                loop {
                    {
                        let mut state = wake.0.lock();
                        while !state.requested && !state.stop {
                            wake.1.wait(&mut state);
                        }
                        if state.stop {
                            return;
                        }
                        state.requested = false;
                    }
                    if store.wants_compaction()
                        && let Err(error) = compact(&tables, &*store)
                    {
                        tracing::error!(%error, "compacting the DynamoDB log failed");
                    }
                }
            })
            .map_err(|source| StorageError::Io {
                path: "dynamodb-compactor".into(),
                source,
            })?;
        Ok(Self {
            signal,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn request(&self) {
        self.signal.0.lock().requested = true;
        self.signal.1.notify_one();
    }

    /// Stops the thread, letting a compaction under way finish.
    fn stop(&self) {
        if self.thread.lock().is_none() {
            return;
        }
        self.signal.0.lock().stop = true;
        self.signal.1.notify_one();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Applies one logged change during recovery.
fn replay(tables: &mut BTreeMap<String, Table>, entry: LogEntry) {
    match entry {
        LogEntry::CreateTable(meta) => {
            tables.insert(meta.name.clone(), Table::new(meta));
        }
        LogEntry::UpdateTable(meta) => {
            if let Some(table) = tables.get_mut(&meta.name) {
                table.set_meta(meta);
            }
        }
        LogEntry::DeleteTable(name) => {
            tables.remove(&name);
        }
        LogEntry::Put { table, item } => {
            // Only the table key is checked: index key types were checked when the item was
            // written, and an index added later may not cover it.
            if let Some(table) = tables.get_mut(&table)
                && let Ok(key) = table.key_of(&Table::key_attributes(&table.meta.key, &item))
            {
                table.put(key, item);
            }
        }
        LogEntry::Delete { table, key } => {
            if let Some(table) = tables.get_mut(&table)
                && let Ok(key) = table.key_of(&key)
            {
                table.delete(&key);
            }
        }
    }
}

/// Parses a request body; an empty body reads as `{}`.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, DdbError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| DdbError::Serialization(e.to_string()))
}

fn reply<T: Serialize>(result: Result<T, DdbError>) -> Result<Vec<u8>, DdbError> {
    result.and_then(|output| {
        serde_json::to_vec(&output).map_err(|e| DdbError::InternalServerError(e.to_string()))
    })
}

/// Answers one DynamoDB request, after any injected `faults`. The work is blocking (a durable
/// write syncs a file), so it runs on the blocking pool.
pub(crate) async fn serve(
    service: &Arc<DynamoDb>,
    faults: &FaultInjector,
    operation: &str,
    body: Bytes,
) -> Result<Response<crate::protocol::Body>, DropConnection> {
    let injected = faults::inject(faults, operation, &body).await;
    let drop_after = injected == Injected::DropAfterApply;
    let result = match injected {
        Injected::Drop => return Err(DropConnection),
        Injected::Refuse(error) => Err(error),
        Injected::Nothing | Injected::DropAfterApply => {
            let service = service.clone();
            let operation_name = operation.to_owned();
            tokio::task::spawn_blocking(move || service.dispatch(&operation_name, &body))
                .await
                .unwrap_or_else(|e| {
                    Err(DdbError::InternalServerError(format!(
                        "request failed: {e}"
                    )))
                })
        }
    };
    if drop_after {
        return Err(DropConnection);
    }
    let (status, body, error_type) = match result {
        Ok(body) => (StatusCode::OK, body, None),
        Err(error) => {
            crate::protocol::log_error(error.code(), error.status(), &error);
            let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, error.body(), Some(error.code()))
        }
    };
    let crc = crc32fast::hash(&body);
    let mut response = crate::protocol::response(status, JSON_1_0, body, error_type);
    response
        .headers_mut()
        .insert("x-amz-crc32", HeaderValue::from(crc));
    Ok(response)
}

//! A durable Kinesis service on a simulated disk, for the crash-point tests (the write-ahead
//! log's, the kept settings', the queues').

use std::path::Path;
use std::sync::Arc;

use crate::clock::ManualClock;
use crate::faults::FaultInjector;
use crate::kinesis::{Kinesis, ServiceConfig};
use crate::storage::crypto::{MasterKey, MasterKeySlot};
use crate::storage::wal::sim_fs::SimFs;
use crate::storage::wal::{FileStorage, SyncMode, WalOptions};

/// Where the service keeps its data on the simulated disk.
pub(crate) const DATA_DIR: &str = "/data";

/// The service recovered from what `fs` holds, or `None` when the disk does not open (a failed
/// operation of the simulated disk during recovery).
pub(crate) fn durable_service(
    fs: &SimFs,
    sync: SyncMode,
    clock: Arc<ManualClock>,
) -> Option<Kinesis> {
    let options = WalOptions {
        sync,
        segment_bytes: 4096,
    };
    let storage = FileStorage::open_in(Arc::new(fs.clone()), Path::new(DATA_DIR), options).ok()?;
    let config = ServiceConfig {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        create_delay_ms: 0,
        consumer_create_delay_ms: 0,
        reshard_delay_ms: 0,
        shard_limit: 10_000,
        on_demand_stream_limit: 50,
        durable: true,
        throughput_limits: true,
        subscription_lifetime: std::time::Duration::from_secs(300),
        token_key: crate::model::iterator::TokenKey::random(),
        // A tiny cache, so that the checks read records back from the segments.
        cache_bytes: 1024,
        max_memory_bytes: None,
        // The key file lives outside the simulated disk, as a key given to the engine does.
        master_key: Arc::new(MasterKeySlot::given(MasterKey::from_bytes([9; 32]))),
    };
    let faults = Arc::new(FaultInjector::new(0, Vec::new()));
    let metadata = Path::new(DATA_DIR).join("metadata");
    Kinesis::recover(config, Arc::new(storage), clock, faults, metadata).ok()
}

//! Crash points: a queue scenario (create, receive, acknowledge, change visibility, receive
//! again, restart, acknowledge) runs on a simulated disk that fails, or crashes at, each of its operations in turn,
//! with the journal never compacted, compacted every few changes, and compacted after every
//! change, so every write, sync, rename and directory sync of the journal and of compaction is
//! a crash point. A queue change that failed is not visible on the running engine; after
//! recovery from what the disk kept, every acknowledged change is there: the queue exists,
//! receipt handles that were answered still name their records in flight, and an acknowledged
//! record is gone. The recovered engine then takes one more change, and a second recovery
//! shows it with all the others (a torn journal tail is never appended to). The scenario
//! itself restarts the engine on the same disk once (recovery, then a first change that
//! writes a snapshot), so those operations are crash points too.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::handle::ReceiptHandle;
use super::store::{Compaction, QueueStore};
use crate::clock::ManualClock;
use crate::error::ApiError;
use crate::kinesis::{Kinesis, dispatch};
use crate::storage::wal::SyncMode;
use crate::storage::wal::fs::FileSystem;
use crate::storage::wal::sim_fs::{CrashImage, SimFs};

use crate::kinesis::sim_service::{DATA_DIR, durable_service};

/// Journals never compacted in the scenario (the default bound is far above its size).
const NEVER: Compaction = Compaction {
    min_bytes: 64 * 1024,
    ratio: 4,
};
/// Compacted every few changes.
const SOMETIMES: Compaction = Compaction {
    min_bytes: 700,
    ratio: 0,
};
/// Compacted after every change.
const ALWAYS: Compaction = Compaction {
    min_bytes: 0,
    ratio: 0,
};

fn service(fs: &SimFs, compaction: Compaction) -> Option<Kinesis> {
    let kinesis = durable_service(
        fs,
        SyncMode::Fsync,
        Arc::new(ManualClock::new(1_750_000_000_000)),
    )?;
    let fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let store =
        QueueStore::on(Some((fs, Path::new(DATA_DIR).join("queues")))).compacting(compaction);
    kinesis.open_queue_store(store).ok()?;
    Some(kinesis)
}

async fn call(kinesis: &Kinesis, operation: &str, body: Value) -> Result<Value, ApiError> {
    let out = dispatch(kinesis, operation, body.to_string().as_bytes()).await;
    out.map(|bytes| serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// What the scenario saw acknowledged.
#[derive(Debug, Default)]
struct Acked {
    queue: Option<String>,
    /// The handles of the first receive (three records, in flight for 300 s).
    first: Vec<String>,
    /// Whether the acknowledgement of `first[0]` was answered.
    acknowledged: bool,
    /// The handle of the second receive of `first[1]` (after its visibility was set to 0).
    second: Option<String>,
    /// Whether the acknowledgement of `second`, after a restart, was sent (it may have taken
    /// effect on disk even if it failed) and whether it was answered.
    second_ack_sent: bool,
    second_acknowledged: bool,
}

/// Whether the record a handle names is tracked under that very delivery (in flight).
fn holds(kinesis: &Kinesis, queue: &str, handle: &str) -> bool {
    let handle = ReceiptHandle::decode(handle).expect("a handle the engine made");
    let Ok(queue) = kinesis.queue(queue) else {
        return false;
    };
    let inner = queue.inner.lock();
    inner
        .delivery
        .tracked(handle.key)
        .is_some_and(|t| t.delivery == handle.delivery && !t.dead_letter)
}

/// Whether the record a handle names is no longer in the queue (acknowledged).
fn gone(kinesis: &Kinesis, queue: &str, handle: &str) -> bool {
    let handle = ReceiptHandle::decode(handle).expect("a handle the engine made");
    kinesis.queue(queue).is_ok_and(|queue| {
        let inner = queue.inner.lock();
        inner.delivery.tracked(handle.key).is_none()
            && inner.delivery.cursor(handle.key.shard) > handle.key.seq
    })
}

fn handles(reply: &Value) -> Vec<String> {
    reply["QueueRecords"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["ReceiptHandle"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs the scenario until a call fails; a failed queue change must not be visible.
async fn run(fs: &SimFs, compaction: Compaction, context: &str) -> Acked {
    let mut acked = Acked::default();
    let Some(kinesis) = service(fs, compaction) else {
        return acked;
    };
    let create = json!({"StreamName": "jobs", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}});
    if call(&kinesis, "CreateStream", create).await.is_err() {
        return acked;
    }
    let entries: Vec<Value> = (0..3)
        .map(|i| json!({"PartitionKey": format!("k{i}"), "Data": "AA=="}))
        .collect();
    let put = json!({"StreamName": "jobs", "Records": entries});
    match call(&kinesis, "PutRecords", put).await {
        Ok(out) if out["FailedRecordCount"] == 0 => {}
        _ => return acked,
    }
    let stream = "arn:aws:kinesis:us-east-1:000000000000:stream/jobs";
    let create = json!({
        "QueueName": "work",
        "StreamConfigurationList": [{"StreamARN": stream, "StartingPosition": {"Type": "TRIM_HORIZON"}}],
        "QueueAttributes": {"VisibilityTimeoutSeconds": 300},
    });
    let Ok(created) = call(&kinesis, "CreateQueue", create).await else {
        assert!(
            kinesis.queues.by_arn.lock().is_empty(),
            "{context}: CreateQueue failed but the queue is listed"
        );
        return acked;
    };
    let queue = created["QueueDescription"]["QueueARN"]
        .as_str()
        .unwrap()
        .to_owned();
    acked.queue = Some(queue.clone());
    let receive = json!({"QueueARN": queue, "WaitTimeSeconds": 1});
    let Ok(first) = call(&kinesis, "ReceiveQueueRecords", receive.clone()).await else {
        return acked;
    };
    acked.first = handles(&first);
    assert_eq!(acked.first.len(), 3, "{context}");
    let ack = json!({"QueueARN": queue, "Entries": [{"ReceiptHandle": acked.first[0]}]});
    if call(&kinesis, "AcknowledgeQueueRecords", ack)
        .await
        .is_err()
    {
        assert!(
            holds(&kinesis, &queue, &acked.first[0]),
            "{context}: the acknowledgement failed but took effect"
        );
        return acked;
    }
    acked.acknowledged = true;
    let release = json!({"QueueARN": queue, "Entries": [
        {"ReceiptHandle": acked.first[1], "VisibilityTimeoutSeconds": 0}
    ]});
    if call(&kinesis, "UpdateQueueRecordsVisibility", release)
        .await
        .is_err()
    {
        return acked;
    }
    match call(&kinesis, "ReceiveQueueRecords", receive).await {
        Ok(second) => {
            let second = handles(&second);
            assert_eq!(second.len(), 1, "{context}");
            acked.second = second.into_iter().next();
        }
        Err(_) => {
            assert!(
                holds(&kinesis, &queue, &acked.first[1]),
                "{context}: the second receive failed but took effect"
            );
            return acked;
        }
    }
    // A restart on the same disk: recovery replays the journal, and the first change after it
    // writes a snapshot.
    drop(kinesis);
    let Some(kinesis) = service(fs, compaction) else {
        return acked;
    };
    check(&kinesis, &acked, &format!("{context}, restart"));
    let second = acked.second.clone().expect("set above");
    let ack = json!({"QueueARN": queue, "Entries": [{"ReceiptHandle": second}]});
    acked.second_ack_sent = true;
    match call(&kinesis, "AcknowledgeQueueRecords", ack).await {
        Ok(out) => {
            assert_eq!(
                out["Successful"].as_array().map(Vec::len),
                Some(1),
                "{context}"
            );
            acked.second_acknowledged = true;
        }
        Err(_) => assert!(
            holds(&kinesis, &queue, &second),
            "{context}: the acknowledgement after the restart failed but took effect"
        ),
    }
    acked
}

/// Checks that a service recovered from the disk shows every acknowledged change.
fn check(kinesis: &Kinesis, acked: &Acked, context: &str) {
    let Some(queue) = &acked.queue else { return };
    assert!(
        kinesis.queue(queue).is_ok(),
        "{context}: acknowledged queue lost"
    );
    if let Some(last) = acked.first.get(2) {
        assert!(
            holds(kinesis, queue, last),
            "{context}: a record received is no longer in flight"
        );
    }
    if acked.acknowledged {
        assert!(
            gone(kinesis, queue, &acked.first[0]),
            "{context}: an acknowledged record is back"
        );
    }
    if let Some(second) = &acked.second {
        if acked.second_acknowledged {
            assert!(
                gone(kinesis, queue, second),
                "{context}: a record acknowledged after the restart is back"
            );
        } else {
            // An acknowledgement that failed may have reached the disk.
            assert!(
                holds(kinesis, queue, second)
                    || (acked.second_ack_sent && gone(kinesis, queue, second)),
                "{context}: the second receive is lost"
            );
        }
    }
}

/// The recovered engine takes one more change (the acknowledgement of the third record of the
/// first receive); a second recovery keeps it and everything before it.
async fn continue_after_recovery(
    image: &SimFs,
    compaction: Compaction,
    acked: &Acked,
    context: &str,
) {
    let (Some(queue), Some(last)) = (&acked.queue, acked.first.get(2)) else {
        return;
    };
    let recovered = service(image, compaction).expect("opens");
    let ack = json!({"QueueARN": queue, "Entries": [{"ReceiptHandle": last}]});
    let out = call(&recovered, "AcknowledgeQueueRecords", ack)
        .await
        .unwrap_or_else(|e| panic!("{context}: acknowledgement after recovery: {e:?}"));
    assert_eq!(
        out["Successful"].as_array().map(Vec::len),
        Some(1),
        "{context}: {out}"
    );
    drop(recovered);
    let again = service(&image.image(CrashImage::PowerLoss), compaction)
        .unwrap_or_else(|| panic!("{context}: the second recovery does not open"));
    assert!(
        gone(&again, queue, last),
        "{context}: acknowledged after recovery, back after the second"
    );
    if acked.acknowledged {
        assert!(
            gone(&again, queue, &acked.first[0]),
            "{context}: an acknowledged record is back after the second recovery"
        );
    }
    if let Some(second) = &acked.second {
        let kept = if acked.second_acknowledged {
            gone(&again, queue, second)
        } else {
            holds(&again, queue, second) || (acked.second_ack_sent && gone(&again, queue, second))
        };
        assert!(
            kept,
            "{context}: the second receive changed after the second recovery"
        );
    }
}

/// Fails and crashes the scenario at each disk operation in turn, with the given compaction.
async fn every_crash_point(compaction: Compaction, name: &str) {
    let clean = SimFs::new(None, None);
    let all = run(&clean, compaction, "clean run").await;
    assert!(all.second_acknowledged, "the clean run completes: {all:?}");
    check(
        &service(&clean, compaction).expect("opens"),
        &all,
        "clean restart",
    );
    let total = clean.ops();
    println!("queues ({name}): failed and crashed at each of {total} operations");
    for k in 1..=total {
        for (fs, images) in [
            (
                SimFs::new(None, Some(k)),
                vec![CrashImage::PowerLoss, CrashImage::ProcessCrash],
            ),
            (
                SimFs::new(Some(k), None),
                vec![
                    CrashImage::PowerLoss,
                    CrashImage::TornWrite,
                    CrashImage::ProcessCrash,
                ],
            ),
        ] {
            let context = format!("{name}, op {k}/{total}");
            let acked = run(&fs, compaction, &context).await;
            for image in images {
                let context = format!("{context}, {image:?}");
                let image = fs.image(image);
                let Some(recovered) = service(&image, compaction) else {
                    panic!("{context}: the data directory does not open");
                };
                check(&recovered, &acked, &context);
                drop(recovered);
                continue_after_recovery(&image, compaction, &acked, &context).await;
            }
        }
    }
}

#[tokio::test]
async fn queue_changes_at_every_crash_point() {
    every_crash_point(NEVER, "journal only").await;
}

#[tokio::test]
async fn queue_changes_at_every_crash_point_with_compaction_every_few_changes() {
    every_crash_point(SOMETIMES, "compaction every few changes").await;
}

#[tokio::test]
async fn queue_changes_at_every_crash_point_with_compaction_after_every_change() {
    every_crash_point(ALWAYS, "compaction after every change").await;
}

/// A file system that counts the bytes written through it (to measure what a queue change
/// costs on disk, without timing anything).
#[derive(Clone, Debug)]
struct Counting {
    inner: SimFs,
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl Counting {
    fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct CountingFile {
    inner: Box<dyn crate::storage::wal::fs::WritableFile>,
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl crate::storage::wal::fs::WritableFile for CountingFile {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.written
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.inner.write_all(buf)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.inner.sync()
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.inner.truncate(len)
    }
}

impl FileSystem for Counting {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
        self.inner.list(dir)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.inner.read_at(path, offset, len)
    }
    fn create(
        &self,
        path: &Path,
    ) -> std::io::Result<Box<dyn crate::storage::wal::fs::WritableFile>> {
        Ok(Box::new(CountingFile {
            inner: self.inner.create(path)?,
            written: self.written.clone(),
        }))
    }
    fn open_append(
        &self,
        path: &Path,
    ) -> std::io::Result<Box<dyn crate::storage::wal::fs::WritableFile>> {
        Ok(Box::new(CountingFile {
            inner: self.inner.open_append(path)?,
            written: self.written.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn Send + Sync>> {
        self.inner.lock(path)
    }
}

/// Bytes the queue store writes for one receive of 10 records and for their acknowledgement,
/// with `in_flight` other records in flight.
async fn bytes_per_change(in_flight: usize) -> (u64, u64) {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let kinesis = durable_service(&fs, SyncMode::Fsync, clock.clone()).expect("opens");
    let counting = Counting {
        inner: fs.clone(),
        written: Arc::default(),
    };
    let store = QueueStore::on(Some((
        Arc::new(counting.clone()) as Arc<dyn FileSystem>,
        Path::new(DATA_DIR).join("queues"),
    )));
    kinesis.open_queue_store(store).expect("opens");
    let create = json!({"StreamName": "jobs", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}});
    call(&kinesis, "CreateStream", create).await.unwrap();
    let total = in_flight + 10;
    for start in (0..total).step_by(500) {
        let entries: Vec<Value> = (start..total.min(start + 500))
            .map(|i| json!({"PartitionKey": format!("k{i}"), "Data": "AA=="}))
            .collect();
        let put = json!({"StreamName": "jobs", "Records": entries});
        let out = call(&kinesis, "PutRecords", put).await.unwrap();
        assert_eq!(out["FailedRecordCount"], 0, "{out}");
        clock.advance(2_000);
    }
    let stream = "arn:aws:kinesis:us-east-1:000000000000:stream/jobs";
    let create = json!({
        "QueueName": "work",
        "StreamConfigurationList": [{"StreamARN": stream, "StartingPosition": {"Type": "TRIM_HORIZON"}}],
        "QueueAttributes": {"VisibilityTimeoutSeconds": 3600},
    });
    let created = call(&kinesis, "CreateQueue", create).await.unwrap();
    let queue = created["QueueDescription"]["QueueARN"].clone();
    let receive = json!({"QueueARN": queue, "WaitTimeSeconds": 1, "Limit": 10});
    for _ in 0..in_flight / 10 {
        let got = call(&kinesis, "ReceiveQueueRecords", receive.clone())
            .await
            .unwrap();
        assert_eq!(handles(&got).len(), 10);
    }
    let before = counting.written();
    let got = call(&kinesis, "ReceiveQueueRecords", receive)
        .await
        .unwrap();
    let received = counting.written() - before;
    let entries: Vec<Value> = handles(&got)
        .into_iter()
        .map(|h| json!({"ReceiptHandle": h}))
        .collect();
    assert_eq!(entries.len(), 10);
    let before = counting.written();
    let ack = json!({"QueueARN": queue, "Entries": entries});
    let out = call(&kinesis, "AcknowledgeQueueRecords", ack)
        .await
        .unwrap();
    assert_eq!(
        out["Successful"].as_array().map(Vec::len),
        Some(10),
        "{out}"
    );
    (received, counting.written() - before)
}

#[tokio::test]
async fn bytes_written_per_change_do_not_grow_with_the_records_in_flight() {
    let (receive_10, ack_10) = bytes_per_change(10).await;
    let (receive_1000, ack_1000) = bytes_per_change(1000).await;
    println!(
        "queue store bytes written: receive of 10 with 10 in flight {receive_10}, with 1000 \
         {receive_1000}; acknowledgement of 10 with 10 in flight {ack_10}, with 1000 {ack_1000}"
    );
    // Not exactly equal: numbers (delivery numbers, deadlines) may take a digit more.
    assert!(
        receive_1000 < receive_10 * 3 / 2,
        "{receive_1000} vs {receive_10}"
    );
    assert!(ack_1000 < ack_10 * 3 / 2, "{ack_1000} vs {ack_10}");
}

/// The measurement with 10,000 records in flight (slow in a debug build, so on demand:
/// `cargo test -p core-engine --lib bytes_written_with_10000 -- --ignored --nocapture`).
#[tokio::test]
#[ignore = "a measurement, run on demand"]
async fn bytes_written_with_10000_in_flight() {
    let (receive, ack) = bytes_per_change(10_000).await;
    println!(
        "queue store bytes written with 10000 in flight: receive of 10 {receive}, \
         acknowledgement of 10 {ack}"
    );
}

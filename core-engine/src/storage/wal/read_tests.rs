//! Records no longer cached are read back from the log without the stream's lock, by
//! GetRecords, SubscribeToShard's events, queue receives and channel delivery alike: a put to
//! the stream completes while such a read is held on the disk, and a read that races retention
//! releasing its segments answers with exactly the records put, as if it had come before or
//! after the trim. A record that does not read back ends a subscription with an
//! `InternalFailureException` event, fails a queue receive with `InternalFailure`, and holds a
//! channel's delivery of its shard there, round after round.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::SyncMode;
use super::checkpoint_tests::call;
use super::fs::FileSystem;
use super::sim_fs::SimFs;
use crate::clock::ManualClock;
use crate::error::ApiError;
use crate::kinesis::sim_service::{DATA_DIR, durable_service};
use crate::kinesis::{Kinesis, dispatch};

const HOUR_MS: i64 = 3_600_000;

fn encode(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn decode(record: &Value) -> String {
    let data = record["Data"].as_str().unwrap_or_default();
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    String::from_utf8(data).expect("utf-8")
}

/// Puts five records of about 100 bytes to stream `s`, tagged `tag`; returns their data.
async fn put(kinesis: &Kinesis, tag: &str) -> Vec<String> {
    let data: Vec<String> = (0..5).map(|i| format!("{tag}-{i:<96}")).collect();
    let records: Vec<Value> = data
        .iter()
        .map(|d| json!({"PartitionKey": "k", "Data": encode(d)}))
        .collect();
    let out = call(
        kinesis,
        "PutRecords",
        json!({"StreamName": "s", "Records": records}),
    )
    .await;
    assert_eq!(out["FailedRecordCount"], 0, "{out}");
    data
}

async fn trim_horizon(kinesis: &Kinesis) -> String {
    let out = call(
        kinesis,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await;
    out["ShardIterator"].as_str().expect("iterator").to_owned()
}

/// A durable service on `fs` (cache of 1 KiB) with stream `s` of one shard.
async fn service(fs: &SimFs, clock: &Arc<ManualClock>) -> Arc<Kinesis> {
    let kinesis = durable_service(fs, SyncMode::Fsync, clock.clone()).expect("service");
    call(
        &kinesis,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 1}),
    )
    .await;
    Arc::new(kinesis)
}

/// Starts a GetRecords of `iterator` and waits until it is held reading the log (see
/// [`await_held`]).
async fn held_read(
    kinesis: &Arc<Kinesis>,
    fs: &SimFs,
    iterator: String,
) -> tokio::task::JoinHandle<Value> {
    fs.hold_reads();
    let reader = tokio::spawn({
        let kinesis = kinesis.clone();
        async move { call(&kinesis, "GetRecords", json!({"ShardIterator": iterator})).await }
    });
    await_held(fs);
    reader
}

/// Waits until a read is held on `fs` (after [`SimFs::hold_reads`]). The read is let go after
/// ten seconds in any case (by a thread of its own: with the stream's lock held by a held
/// read, the runtime's workers, and so its timers, may all be stuck), so that a test whose
/// code holds the lock through the read fails instead of hanging.
fn await_held(fs: &SimFs) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs.held_reads() == 0 {
        assert!(Instant::now() < deadline, "the read never reached the log");
        std::thread::sleep(Duration::from_millis(1));
    }
    let watchdog = fs.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(10));
        watchdog.release_reads();
    });
}

/// Truncates the oldest segment of the log: its records no longer read back.
fn truncate_oldest_segment(fs: &SimFs) {
    let wal = Path::new(DATA_DIR).join("wal");
    let oldest = fs
        .list(&wal)
        .expect("list")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .min()
        .expect("a segment");
    fs.open_append(&oldest)
        .expect("open")
        .truncate(0)
        .expect("truncate");
}

/// Registers consumer `c` on stream `s` and subscribes it to the shard from TRIM_HORIZON;
/// gives its frames once the `initial-response` is taken (so the pump may read the shard).
async fn subscribe(kinesis: &Arc<Kinesis>) -> tokio::sync::mpsc::Receiver<bytes::Bytes> {
    let out = call(
        kinesis,
        "RegisterStreamConsumer",
        json!({"StreamARN": kinesis.stream_arn("s"), "ConsumerName": "c"}),
    )
    .await;
    let consumer = out["Consumer"]["ConsumerARN"]
        .as_str()
        .expect("consumer ARN");
    let body = json!({
        "ConsumerARN": consumer,
        "ShardId": "shardId-000000000000",
        "StartingPosition": {"Type": "TRIM_HORIZON"},
    });
    let mut frames = crate::kinesis::subscribe(kinesis, body.to_string().as_bytes(), false, false)
        .expect("subscribe");
    let (first, _) = next_message(&mut frames).await;
    assert_eq!(first, "initial-response");
    frames
}

/// The next message of a subscription: its event or exception type and its JSON payload.
async fn next_message(frames: &mut tokio::sync::mpsc::Receiver<bytes::Bytes>) -> (String, Value) {
    let frame = tokio::time::timeout(Duration::from_secs(20), frames.recv())
        .await
        .expect("no event within 20 s")
        .expect("the subscription ended without an exception");
    let (message, _) = crate::protocol::event_stream::decode(&frame).expect("an event message");
    let kind = message
        .headers
        .iter()
        .find(|(name, _)| name == ":event-type" || name == ":exception-type")
        .map(|(_, value)| value.clone())
        .expect("a typed message");
    let payload = serde_json::from_slice(&message.payload).expect("a JSON payload");
    (kind, payload)
}

/// The data of an event's records.
fn event_records(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .expect("records")
        .iter()
        .map(decode)
        .collect()
}

/// Ten records put a day minus an hour ago (`old`), then `kept` records put now: an hour on,
/// retention trims the old ones and keeps the others.
async fn old_and_kept(
    kinesis: &Kinesis,
    clock: &ManualClock,
    kept: usize,
) -> (Vec<String>, Vec<String>) {
    let mut old = Vec::new();
    for i in 0..10 {
        old.extend(put(kinesis, &format!("old{i}")).await);
    }
    clock.advance(23 * HOUR_MS);
    let mut new = Vec::new();
    for i in 0..kept {
        new.extend(put(kinesis, &format!("kept{i}")).await);
    }
    (old, new)
}

/// The `old` records (of [`old_and_kept`]) expire while a read is held: retention trims them
/// without waiting for the read, which is then let go.
async fn expire_while_held(kinesis: &Arc<Kinesis>, fs: &SimFs, clock: &ManualClock, old: usize) {
    clock.advance(HOUR_MS + 1_000);
    let retention = tokio::task::spawn_blocking({
        let kinesis = kinesis.clone();
        move || kinesis.enforce_retention()
    });
    let trimmed = retention.await.expect("join").expect("retention");
    assert_eq!(fs.held_reads(), 1, "retention waited for the read");
    fs.release_reads();
    assert_eq!(trimmed, old);
}

/// `got` is every `kept` record, after whichever `old` ones the log still had when read, in
/// order and intact: the old ones released meanwhile are left out, as if read after the trim.
fn assert_kept_after_some_old(got: &[String], old: &[String], kept: &[String]) {
    let (got_old, got_kept) = got.split_at(got.len() - kept.len());
    assert_eq!(got_kept, kept);
    assert!(got_old.len() < old.len(), "every old record came back");
    let mut rest = old.iter();
    for record in got_old {
        assert!(
            rest.any(|o| o == record),
            "{record} out of order or not put"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_completes_while_a_read_of_its_stream_waits_on_the_log() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let kinesis = service(&fs, &clock).await;
    let mut written = Vec::new();
    for i in 0..10 {
        written.extend(put(&kinesis, &format!("a{i}")).await);
    }
    let iterator = trim_horizon(&kinesis).await;
    let reader = held_read(&kinesis, &fs, iterator).await;

    let putter = tokio::spawn({
        let kinesis = kinesis.clone();
        async move { put(&kinesis, "during").await }
    });
    let during = putter.await.expect("put");
    assert_eq!(fs.held_reads(), 1, "the put waited for the read");
    fs.release_reads();

    let got = reader.await.expect("reader");
    let records: Vec<String> = got["Records"]
        .as_array()
        .expect("records")
        .iter()
        .map(decode)
        .collect();
    // The read was planned before the put: exactly the records before it.
    assert_eq!(records, written);
    written.extend(during);
    assert_eq!(super::checkpoint_tests::read_all(&kinesis).await, written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_racing_retention_answers_with_exactly_the_records_put() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let kinesis = service(&fs, &clock).await;
    let (old, kept) = old_and_kept(&kinesis, &clock, 10).await;
    let iterator = trim_horizon(&kinesis).await;
    let reader = held_read(&kinesis, &fs, iterator).await;

    // The old records expire while the read waits: retention trims them and removes the
    // segments that hold only them.
    let segments = || {
        fs.list(&Path::new(DATA_DIR).join("wal"))
            .expect("list")
            .len()
    };
    let before = segments();
    expire_while_held(&kinesis, &fs, &clock, old.len()).await;
    assert!(segments() < before, "no segment released ({before} before)");

    let got = reader.await.expect("reader");
    assert!(got["NextShardIterator"].is_string(), "{got}");
    let records: Vec<String> = got["Records"]
        .as_array()
        .expect("records")
        .iter()
        .map(decode)
        .collect();
    assert_kept_after_some_old(&records, &old, &kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_completes_while_a_subscription_to_its_stream_waits_on_the_log() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let kinesis = service(&fs, &clock).await;
    let mut written = Vec::new();
    for i in 0..10 {
        written.extend(put(&kinesis, &format!("a{i}")).await);
    }
    fs.hold_reads();
    let mut frames = subscribe(&kinesis).await;
    // The pump reads its first event from the log (the cache holds only the latest records).
    await_held(&fs);

    let putter = tokio::spawn({
        let kinesis = kinesis.clone();
        async move { put(&kinesis, "during").await }
    });
    let during = putter.await.expect("put");
    assert_eq!(
        fs.held_reads(),
        1,
        "the put waited for the subscription's read"
    );
    fs.release_reads();

    // The first event was planned before the put: exactly the records before it; the put's
    // records follow in later events, none lost or repeated.
    let (kind, event) = next_message(&mut frames).await;
    assert_eq!(kind, "SubscribeToShardEvent");
    assert_eq!(event_records(&event), written);
    let mut after = Vec::new();
    while after.len() < during.len() {
        let (kind, event) = next_message(&mut frames).await;
        assert_eq!(kind, "SubscribeToShardEvent", "{event}");
        after.extend(event_records(&event));
    }
    assert_eq!(after, during);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_meeting_a_record_that_does_not_read_back_ends_with_internal_failure() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let kinesis = service(&fs, &clock).await;
    for i in 0..10 {
        put(&kinesis, &format!("a{i}")).await;
    }
    truncate_oldest_segment(&fs);

    let mut frames = subscribe(&kinesis).await;
    let (kind, error) = next_message(&mut frames).await;
    assert_eq!(kind, "InternalFailureException", "{error}");
    let message = error["message"].as_str().expect("message");
    assert!(message.contains("shardId-000000000000"), "{message}");
    let end = tokio::time::timeout(Duration::from_secs(20), frames.recv())
        .await
        .expect("the subscription did not end");
    assert!(end.is_none(), "a message after the exception");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_racing_retention_sends_exactly_the_records_put() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let kinesis = service(&fs, &clock).await;
    let (old, kept) = old_and_kept(&kinesis, &clock, 10).await;
    fs.hold_reads();
    let mut frames = subscribe(&kinesis).await;
    await_held(&fs);

    // The old records expire while the subscription's read waits.
    expire_while_held(&kinesis, &fs, &clock, old.len()).await;

    let (kind, event) = next_message(&mut frames).await;
    assert_eq!(kind, "SubscribeToShardEvent", "{event}");
    assert!(event["ContinuationSequenceNumber"].is_string(), "{event}");
    let records = event_records(&event);
    assert_kept_after_some_old(&records, &old, &kept);
}

/// A durable service on `fs` (cache of 1 KiB) with stream `s` in on-demand mode (as queues
/// and channels need).
async fn on_demand_service(fs: &SimFs, clock: &Arc<ManualClock>) -> Arc<Kinesis> {
    let kinesis = durable_service(fs, SyncMode::Fsync, clock.clone()).expect("service");
    call(
        &kinesis,
        "CreateStream",
        json!({"StreamName": "s", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await;
    Arc::new(kinesis)
}

/// [`on_demand_service`] with queue `q` on stream `s` from TRIM_HORIZON; gives the queue's
/// ARN too.
async fn queue_service(fs: &SimFs, clock: &Arc<ManualClock>) -> (Arc<Kinesis>, String) {
    let kinesis = on_demand_service(fs, clock).await;
    let queue = create_queue(&kinesis).await;
    (kinesis, queue)
}

/// Creates queue `q` on stream `s`, from TRIM_HORIZON; gives its ARN.
async fn create_queue(kinesis: &Kinesis) -> String {
    let out = call(
        kinesis,
        "CreateQueue",
        json!({
            "QueueName": "q",
            "StreamConfigurationList": [{
                "StreamARN": kinesis.stream_arn("s"),
                "StartingPosition": {"Type": "TRIM_HORIZON"},
            }],
            "QueueAttributes": {"VisibilityTimeoutSeconds": 3600},
        }),
    )
    .await;
    out["QueueDescription"]["QueueARN"]
        .as_str()
        .expect("queue ARN")
        .to_owned()
}

/// A ReceiveQueueRecords of up to ten records of `queue` (waiting a second for one): their
/// data.
async fn receive(kinesis: &Kinesis, queue: &str) -> Result<Vec<String>, ApiError> {
    let body = json!({"QueueARN": queue, "Limit": 10, "WaitTimeSeconds": 1});
    let out = dispatch(kinesis, "ReceiveQueueRecords", body.to_string().as_bytes()).await?;
    let out: Value = serde_json::from_slice(&out).expect("JSON");
    Ok(out["QueueRecords"]
        .as_array()
        .expect("records")
        .iter()
        .map(decode)
        .collect())
}

/// Receives from `queue` until a receive comes back empty: the data of every record.
async fn receive_rest(kinesis: &Kinesis, queue: &str) -> Vec<String> {
    let mut all = Vec::new();
    loop {
        let got = receive(kinesis, queue).await.expect("receive");
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

/// Starts a receive of `queue` and waits until it is held reading the log.
async fn held_receive(
    kinesis: &Arc<Kinesis>,
    fs: &SimFs,
    queue: &str,
) -> tokio::task::JoinHandle<Vec<String>> {
    fs.hold_reads();
    let receiver = tokio::spawn({
        let kinesis = kinesis.clone();
        let queue = queue.to_owned();
        async move { receive(&kinesis, &queue).await.expect("receive") }
    });
    await_held(fs);
    receiver
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_completes_while_a_queue_receive_from_its_stream_waits_on_the_log() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let (kinesis, queue) = queue_service(&fs, &clock).await;
    let mut written = Vec::new();
    for i in 0..6 {
        written.extend(put(&kinesis, &format!("a{i}")).await);
    }
    let receiver = held_receive(&kinesis, &fs, &queue).await;

    let putter = tokio::spawn({
        let kinesis = kinesis.clone();
        async move { put(&kinesis, "during").await }
    });
    let during = putter.await.expect("put");
    assert_eq!(fs.held_reads(), 1, "the put waited for the receive's read");
    fs.release_reads();

    // The oldest records first, then the rest and the put's, each once.
    let mut got = receiver.await.expect("receiver");
    assert_eq!(got, written[..10]);
    got.extend(receive_rest(&kinesis, &queue).await);
    written.extend(during);
    assert_eq!(got, written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_receive_racing_retention_delivers_exactly_the_records_put() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let (kinesis, queue) = queue_service(&fs, &clock).await;
    let (old, kept) = old_and_kept(&kinesis, &clock, 2).await;
    let receiver = held_receive(&kinesis, &fs, &queue).await;

    // The old records expire while the receive's read waits.
    expire_while_held(&kinesis, &fs, &clock, old.len()).await;

    let mut got = receiver.await.expect("receiver");
    got.extend(receive_rest(&kinesis, &queue).await);
    assert_kept_after_some_old(&got, &old, &kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_receive_meeting_a_record_that_does_not_read_back_fails_until_it_does() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let (kinesis, queue) = queue_service(&fs, &clock).await;
    for i in 0..10 {
        put(&kinesis, &format!("a{i}")).await;
    }
    truncate_oldest_segment(&fs);
    // The record is not skipped: every receive meets it again.
    for _ in 0..2 {
        match receive(&kinesis, &queue).await {
            Err(ApiError::InternalFailure(message)) => {
                assert!(message.contains("of shard shardId-"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Channel `c` on stream `s` (from its tip, a freshness of 60 s), delivering to `dir`.
async fn create_channel(kinesis: &Kinesis, dir: &Path) {
    kinesis
        .open_channels(dir.to_owned())
        .expect("channel directory");
    call(
        kinesis,
        "CreateChannel",
        json!({
            "ChannelName": "c",
            "ServiceExecutionRoleARN": "arn:aws:iam::000000000000:role/writer",
            "StreamConfigurationList": [{
                "StreamARN": kinesis.stream_arn("s"),
                "RecordConfiguration": {"RecordFormatType": "JSON"},
            }],
            "S3DestinationConfiguration": {
                "DataFreshnessInSeconds": 60,
                "StorageConfiguration": {
                    "BucketARN": "arn:aws:s3:::landing",
                    "ExpectedBucketOwner": "000000000000",
                    "CompressionType": "NONE",
                },
            },
        }),
    )
    .await;
}

/// The data of the records channel `c` delivered to `dir`, batch after batch.
fn delivered(dir: &Path) -> Vec<String> {
    let objects = dir.join("landing").join("c");
    let mut batches: Vec<_> = match std::fs::read_dir(&objects) {
        Ok(entries) => entries.map(|e| e.expect("entry").path()).collect(),
        Err(_) => return Vec::new(),
    };
    batches.sort();
    batches
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).expect("batch");
            text.lines()
                .map(|line| decode(&serde_json::from_str(line).expect("JSON line")))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Runs a delivery round on a blocking thread, as the engine does; gives the batches written.
async fn deliver(kinesis: &Arc<Kinesis>) -> tokio::task::JoinHandle<usize> {
    let kinesis = kinesis.clone();
    tokio::task::spawn_blocking(move || kinesis.deliver_channels().expect("delivery"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_completes_while_a_channel_delivery_from_its_stream_waits_on_the_log() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let kinesis = on_demand_service(&fs, &clock).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    create_channel(&kinesis, dir.path()).await;
    let mut written = Vec::new();
    for i in 0..6 {
        written.extend(put(&kinesis, &format!("a{i}")).await);
    }
    clock.advance(120_000);
    fs.hold_reads();
    let delivery = deliver(&kinesis).await;
    await_held(&fs);

    let putter = tokio::spawn({
        let kinesis = kinesis.clone();
        async move { put(&kinesis, "during").await }
    });
    let during = putter.await.expect("put");
    assert_eq!(fs.held_reads(), 1, "the put waited for the delivery's read");
    fs.release_reads();

    // The batch was planned before the put: exactly the records before it.
    assert_eq!(delivery.await.expect("delivery"), 1);
    assert_eq!(delivered(dir.path()), written);
    clock.advance(120_000);
    assert_eq!(deliver(&kinesis).await.await.expect("delivery"), 1);
    written.extend(during);
    assert_eq!(delivered(dir.path()), written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_delivery_meeting_a_record_that_does_not_read_back_skips_nothing() {
    let fs = SimFs::new(None, None);
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let kinesis = on_demand_service(&fs, &clock).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    create_channel(&kinesis, dir.path()).await;
    for i in 0..10 {
        put(&kinesis, &format!("a{i}")).await;
    }
    truncate_oldest_segment(&fs);
    clock.advance(120_000);
    // Every round meets the record again; none delivers the records after it.
    for _ in 0..2 {
        assert_eq!(deliver(&kinesis).await.await.expect("delivery"), 0);
        assert_eq!(delivered(dir.path()), Vec::<String>::new());
    }
}

//! Server-side encryption: StartStreamEncryption and StopStreamEncryption as AWS answers them
//! (JSON through the SDK, and CBOR), and a durable engine that keeps the records of an
//! encrypted stream encrypted on disk.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    EncryptionType, PutRecordsRequestEntry, ShardIteratorType, StreamStatus,
};
use core_engine::{Engine, ManualClock};

use crate::cbor::{self, Item};
use crate::common::{TestEngine, code_of};

/// `("ok", "")` for a call that succeeded, else its error code and message.
fn outcome<T, E, R>(result: Result<T, aws_sdk_kinesis::error::SdkError<E, R>>) -> (String, String)
where
    T: std::fmt::Debug,
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => ("ok".to_owned(), String::new()),
        failed => code_of(failed),
    }
}

const KEY: &str = "alias/aws/kinesis";

/// An engine in this process or a child process, through its client.
trait AsClient {
    fn client(&self) -> &aws_sdk_kinesis::Client;
}

impl AsClient for TestEngine {
    fn client(&self) -> &aws_sdk_kinesis::Client {
        &self.client
    }
}

impl AsClient for aws_sdk_kinesis::Client {
    fn client(&self) -> &aws_sdk_kinesis::Client {
        self
    }
}
const SHARD: &str = "shardId-000000000000";

async fn start(engine: &impl AsClient, stream: &str, key: &str) -> (String, String) {
    outcome(
        engine
            .client()
            .start_stream_encryption()
            .stream_name(stream)
            .encryption_type(EncryptionType::Kms)
            .key_id(key)
            .send()
            .await,
    )
}

async fn stop(engine: &TestEngine, stream: &str) -> (String, String) {
    outcome(
        engine
            .client
            .stop_stream_encryption()
            .stream_name(stream)
            .encryption_type(EncryptionType::Kms)
            .key_id(KEY)
            .send()
            .await,
    )
}

/// The stream's status, encryption type and key id, from DescribeStream, checked against
/// DescribeStreamSummary.
async fn described(
    engine: &TestEngine,
    stream: &str,
) -> (StreamStatus, Option<EncryptionType>, Option<String>) {
    let full = engine
        .client
        .describe_stream()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    let summary = engine
        .client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(summary.stream_status, full.stream_status);
    assert_eq!(summary.encryption_type, full.encryption_type);
    assert_eq!(summary.key_id, full.key_id);
    (full.stream_status, full.encryption_type, full.key_id)
}

/// PutRecord's `EncryptionType`.
async fn put(engine: &impl AsClient, stream: &str, data: &str) -> Option<EncryptionType> {
    engine
        .client()
        .put_record()
        .stream_name(stream)
        .partition_key("k")
        .data(Blob::new(data))
        .send()
        .await
        .unwrap()
        .encryption_type
}

/// Each record's data and `EncryptionType`, from the trim horizon.
async fn read(engine: &impl AsClient, stream: &str) -> Vec<(String, Option<EncryptionType>)> {
    let client = engine.client();
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(SHARD)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator;
    let mut records = Vec::new();
    while let Some(current) = iterator {
        let out = client
            .get_records()
            .shard_iterator(current)
            .send()
            .await
            .unwrap();
        let done = out.records.is_empty() && out.millis_behind_latest == Some(0);
        records.extend(out.records);
        iterator = if done { None } else { out.next_shard_iterator };
    }
    records
        .into_iter()
        .map(|r| {
            let data = String::from_utf8(r.data.into_inner()).unwrap();
            (data, r.encryption_type)
        })
        .collect()
}

#[tokio::test]
async fn start_and_stop_go_through_updating_and_records_follow_the_setting() {
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let engine = TestEngine::with(
        Engine::builder()
            .clock(clock.clone())
            .stream_create_delay(Duration::from_secs(2)),
    )
    .await;
    engine.create_stream("sse", 1).await;
    clock.advance(2_000);
    assert_eq!(
        described(&engine, "sse").await,
        (StreamStatus::Active, Some(EncryptionType::None), None)
    );
    assert_eq!(
        put(&engine, "sse", "before").await,
        Some(EncryptionType::None)
    );

    assert_eq!(start(&engine, "sse", KEY).await.0, "ok");
    assert_eq!(
        described(&engine, "sse").await,
        (
            StreamStatus::Updating,
            Some(EncryptionType::Kms),
            Some(KEY.to_owned())
        )
    );
    // Puts keep working while UPDATING; encryption begins once the stream is ACTIVE again.
    assert_eq!(
        put(&engine, "sse", "updating").await,
        Some(EncryptionType::None)
    );
    assert_eq!(start(&engine, "sse", KEY).await.0, "ResourceInUseException");
    assert_eq!(stop(&engine, "sse").await.0, "ResourceInUseException");
    let reshard = engine
        .client
        .update_shard_count()
        .stream_name("sse")
        .target_shard_count(2)
        .scaling_type(aws_sdk_kinesis::types::ScalingType::UniformScaling)
        .send()
        .await;
    assert_eq!(code_of(reshard).0, "ResourceInUseException");

    clock.advance(2_000);
    assert_eq!(described(&engine, "sse").await.0, StreamStatus::Active);
    assert_eq!(
        put(&engine, "sse", "encrypted").await,
        Some(EncryptionType::Kms)
    );
    let batch = engine
        .client
        .put_records()
        .stream_name("sse")
        .records(
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(Blob::new("batch"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(batch.encryption_type, Some(EncryptionType::Kms));

    assert_eq!(stop(&engine, "sse").await.0, "ok");
    assert_eq!(
        described(&engine, "sse").await,
        (StreamStatus::Updating, Some(EncryptionType::None), None)
    );
    assert_eq!(
        put(&engine, "sse", "stopping").await,
        Some(EncryptionType::Kms)
    );
    clock.advance(2_000);
    assert_eq!(
        put(&engine, "sse", "after").await,
        Some(EncryptionType::None)
    );

    // Each record keeps the type it was written with (records carry it only when encrypted).
    let kms = Some(EncryptionType::Kms);
    let expected: Vec<(String, Option<EncryptionType>)> = [
        ("before", None),
        ("updating", None),
        ("encrypted", kms.clone()),
        ("batch", kms.clone()),
        ("stopping", kms),
        ("after", None),
    ]
    .into_iter()
    .map(|(d, t)| (d.to_owned(), t))
    .collect();
    assert_eq!(read(&engine, "sse").await, expected);
}

#[tokio::test]
async fn encryption_requests_are_checked_as_aws_checks_them() {
    let engine = TestEngine::start().await;
    engine.create_stream("checked", 1).await;
    assert_eq!(
        start(&engine, "missing", KEY).await.0,
        "ResourceNotFoundException"
    );
    let none = engine
        .client
        .start_stream_encryption()
        .stream_name("checked")
        .encryption_type(EncryptionType::None)
        .key_id(KEY)
        .send()
        .await;
    assert_eq!(code_of(none).0, "InvalidArgumentException");
    let (code, message) = start(&engine, "checked", "not a key").await;
    assert_eq!(code, "KMSNotFoundException", "{message}");
    let long = format!("alias/{}", "a".repeat(2048));
    assert_eq!(
        start(&engine, "checked", &long).await.0,
        "ValidationException"
    );
    let no_key = engine
        .client
        .start_stream_encryption()
        .stream_name("checked")
        .encryption_type(EncryptionType::Kms)
        .send()
        .await;
    assert_eq!(code_of(no_key).0, "ValidationException");
    assert_eq!(
        described(&engine, "checked").await.1,
        Some(EncryptionType::None)
    );

    // Every documented key form, and the stream by ARN.
    for key in [
        "12345678-1234-1234-1234-123456789012",
        "arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012",
        "arn:aws:kms:us-east-1:123456789012:alias/MyAliasName",
        "alias/MyAliasName",
    ] {
        let out = engine
            .client
            .start_stream_encryption()
            .stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/checked")
            .encryption_type(EncryptionType::Kms)
            .key_id(key)
            .send()
            .await;
        assert_eq!(outcome(out).0, "ok", "{key}");
        assert_eq!(described(&engine, "checked").await.2.as_deref(), Some(key));
    }
    // 25 starts in a rolling day, then LimitExceededException.
    for _ in 4..25 {
        assert_eq!(start(&engine, "checked", KEY).await.0, "ok");
    }
    assert_eq!(
        start(&engine, "checked", KEY).await.0,
        "LimitExceededException"
    );
    assert_eq!(stop(&engine, "checked").await.0, "ok");
}

#[tokio::test]
async fn cbor_clients_see_the_encryption_type_of_puts_and_records() {
    let engine = TestEngine::start().await;
    engine.create_stream("cbor-sse", 1).await;
    cbor::call(
        &engine,
        "StartStreamEncryption",
        &cbor::map(&[
            ("StreamName", cbor::text("cbor-sse")),
            ("EncryptionType", cbor::text("KMS")),
            ("KeyId", cbor::text(KEY)),
        ]),
    )
    .await;
    let put = cbor::call(
        &engine,
        "PutRecord",
        &cbor::map(&[
            ("StreamName", cbor::text("cbor-sse")),
            ("PartitionKey", cbor::text("k")),
            ("Data", cbor::bytes(b"cbor secret")),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(put.get("EncryptionType").text(), "KMS");
    let iterator = cbor::iterator(
        &engine,
        "cbor-sse",
        &[("ShardIteratorType", cbor::text("TRIM_HORIZON"))],
    )
    .await;
    let records = cbor::records(&engine, &iterator).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].get("Data"),
        &Item::Bytes(b"cbor secret".to_vec())
    );
    assert_eq!(records[0].get("EncryptionType").text(), "KMS");
}

#[tokio::test]
async fn fan_out_events_carry_the_encryption_type() {
    let engine = TestEngine::start().await;
    engine.create_stream("fan", 1).await;
    assert_eq!(start(&engine, "fan", KEY).await.0, "ok");
    let consumer = crate::fan_out::consumer(&engine, "sse-reader").await;
    let mut events =
        crate::fan_out::subscribe(&engine, &consumer, SHARD, ShardIteratorType::TrimHorizon).await;
    put(&engine, "fan", "pushed").await;
    let mut got = Vec::new();
    while got.is_empty() {
        let event = crate::fan_out::next_event(&mut events, Duration::from_secs(10)).await;
        got.extend(event.records);
    }
    assert_eq!(got[0].data.as_ref(), b"pushed");
    assert_eq!(got[0].encryption_type, Some(EncryptionType::Kms));
}

/// Every byte of the log's segment files.
fn segments(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir.join("wal")).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn an_encrypted_stream_is_not_in_the_clear_on_disk_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let durable = || Engine::builder().data_dir(dir.path());
    let engine = TestEngine::with(durable()).await;
    engine.create_stream("secret", 1).await;
    engine.create_stream("plain", 1).await;
    put(&engine, "secret", "EARLY-MARKER-0").await;
    assert_eq!(start(&engine, "secret", KEY).await.0, "ok");
    for i in 0..20 {
        let kind = put(&engine, "secret", &format!("SECRET-MARKER-{i}")).await;
        assert_eq!(kind, Some(EncryptionType::Kms));
        put(&engine, "plain", &format!("PLAIN-MARKER-{i}")).await;
    }
    engine.handle.shutdown().await;

    // The engine made a master key, readable by its owner only.
    let key_file = dir.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(std::fs::read(&key_file).unwrap().len(), 32);
    let disk = segments(dir.path());
    for i in 0..20 {
        // The search can find plaintext: the unencrypted stream's is there.
        assert!(contains(&disk, &format!("PLAIN-MARKER-{i}")));
        assert!(!contains(&disk, &format!("SECRET-MARKER-{i}")));
    }
    assert!(!contains(&disk, "SECRET-MARKER"));
    let metadata = std::fs::read(dir.path().join("metadata")).unwrap();
    assert!(!contains(&metadata, "SECRET-MARKER"));
    // Written before encryption started, it stays as it was.
    assert!(contains(&disk, "EARLY-MARKER-0"));

    let engine = TestEngine::with(durable()).await;
    let records = read(&engine, "secret").await;
    assert_eq!(records.len(), 21);
    assert_eq!(records[0], ("EARLY-MARKER-0".to_owned(), None));
    for (i, record) in records[1..].iter().enumerate() {
        assert_eq!(
            record,
            &(format!("SECRET-MARKER-{i}"), Some(EncryptionType::Kms))
        );
    }
    assert_eq!(
        described(&engine, "secret").await,
        (
            StreamStatus::Active,
            Some(EncryptionType::Kms),
            Some(KEY.to_owned())
        )
    );

    // Stopped: new records are stored as they are, the old ones stay readable.
    assert_eq!(stop(&engine, "secret").await.0, "ok");
    assert_eq!(
        put(&engine, "secret", "AFTER-STOP-MARKER").await,
        Some(EncryptionType::None)
    );
    engine.handle.shutdown().await;
    let disk = segments(dir.path());
    assert!(contains(&disk, "AFTER-STOP-MARKER"));
    assert!(!contains(&disk, "SECRET-MARKER"));
    let engine = TestEngine::with(durable()).await;
    let records = read(&engine, "secret").await;
    assert_eq!(records.len(), 22);
    assert_eq!(records[21], ("AFTER-STOP-MARKER".to_owned(), None));
    assert_eq!(
        described(&engine, "secret").await.1,
        Some(EncryptionType::None)
    );
    engine.handle.shutdown().await;
}

#[tokio::test]
async fn a_data_directory_opens_only_with_its_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = [0x42u8; 32];
    let engine = TestEngine::with(Engine::builder().data_dir(dir.path()).master_key(key)).await;
    engine.create_stream("locked", 1).await;
    assert_eq!(start(&engine, "locked", KEY).await.0, "ok");
    put(&engine, "locked", "LOCKED-MARKER").await;
    engine.handle.shutdown().await;
    // A given key is never written to the data directory.
    assert!(!dir.path().join("master.key").exists());

    let wrong = Engine::builder()
        .data_dir(dir.path())
        .master_key([0x43; 32])
        .build()
        .unwrap()
        .start()
        .await
        .expect_err("another master key");
    let message = wrong.to_string();
    assert!(
        message.contains("master key does not open the data key of stream locked"),
        "{message}"
    );
    let missing = Engine::builder()
        .data_dir(dir.path())
        .build()
        .unwrap()
        .start()
        .await
        .expect_err("no master key");
    assert!(missing.to_string().contains("no master key"), "{missing}");

    // The same key from a file, as hex: the records come back.
    let key_file = dir.path().join("given.key");
    std::fs::write(&key_file, format!("{}\n", "42".repeat(32))).unwrap();
    let engine = TestEngine::with(
        Engine::builder()
            .data_dir(dir.path())
            .master_key_file(&key_file),
    )
    .await;
    assert_eq!(
        read(&engine, "locked").await,
        vec![("LOCKED-MARKER".to_owned(), Some(EncryptionType::Kms))]
    );
    engine.handle.shutdown().await;
}

#[tokio::test]
async fn the_binary_takes_a_master_key_file_and_refuses_another_key() {
    use base64::Engine as _;
    use std::process::{Command, Stdio};

    use crate::support::ChildEngine;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let right = dir.path().join("right.key");
    let wrong = dir.path().join("wrong.key");
    std::fs::write(
        &right,
        base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
    )
    .unwrap();
    std::fs::write(&wrong, [8u8; 32]).unwrap();
    let key_arg = |path: &Path| ["--master-key-file".to_owned(), path.display().to_string()];

    let args = key_arg(&right);
    let child = ChildEngine::spawn(&data, &[&args[0], &args[1]]);
    let client = crate::common::client(&child.endpoint);
    client
        .create_stream()
        .stream_name("binary")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    assert_eq!(start(&client, "binary", KEY).await.0, "ok");
    put(&client, "binary", "BINARY-MARKER").await;
    child.kill();
    assert!(!contains(&segments(&data), "BINARY-MARKER"));
    assert!(!data.join("master.key").exists());

    let args = key_arg(&wrong);
    let mut refused = Command::new(env!("CARGO_BIN_EXE_core-engine"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the engine started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut refused.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("master key does not open"), "{stderr}");

    let args = key_arg(&right);
    let child = ChildEngine::spawn(&data, &[&args[0], &args[1]]);
    let client = crate::common::client(&child.endpoint);
    assert_eq!(
        read(&client, "binary").await,
        vec![("BINARY-MARKER".to_owned(), Some(EncryptionType::Kms))]
    );
    child.kill();
}

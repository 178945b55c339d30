//! The page in a real browser: headless Chromium loads it from a running engine with a stream
//! that was split, a fan-out subscription and a lease table, runs its script, and the test
//! reads the DOM it ends with.
//!
//! Without a Chromium binary the test says so loudly and passes, unless
//! `SHARDLINE_REQUIRE_BROWSER` is set (as `.ci/run` sets it), when it fails.
//! `SHARDLINE_CHROMIUM` names the binary if it is not on the PATH.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition};

use super::{Lease, create_lease_table, dynamodb, get, put_lease};
use crate::common::{TestEngine, name};

const SHARD_0: &str = "shardId-000000000000";
const SHARD_1: &str = "shardId-000000000001";
const SHARD_2: &str = "shardId-000000000002";

/// The Chromium binary, if there is one.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SHARDLINE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "headless_shell",
    ];
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|candidate| candidate.is_file())
}

/// The binary, or `None` after a loud notice that the test is skipped; panics when a browser is
/// required.
fn browser_or_skip(test: &str) -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("SHARDLINE_REQUIRE_BROWSER").is_none(),
            "SHARDLINE_REQUIRE_BROWSER is set but no Chromium binary was found (install the \
             `chromium` package, or set SHARDLINE_CHROMIUM)"
        );
        eprintln!(
            "\n!!!!! SKIPPED {test}: no Chromium binary found (chromium, chromium-browser, \
             google-chrome, or SHARDLINE_CHROMIUM). Install one to test the page in a browser. !!!!!\n"
        );
    }
    found
}

/// Runs headless Chromium on `url` with `extra` arguments; gives its stdout.
async fn run_chromium(binary: &Path, url: &str, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(binary);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url);
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .expect("Chromium finishes within two minutes")
    .unwrap()
    .expect("Chromium runs");
    assert!(
        output.status.success(),
        "Chromium failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Builds what the page is tested on: stream `stream` of one shard, split in two, with records
/// before and after; a consumer subscribed to the first child (the subscription is returned, to
/// keep it live); and lease table `table` in the Java KCL schema, with the parent finished by
/// `worker-alpha`, the first child held by it and the second by `worker-beta`.
async fn realistic_state(engine: &TestEngine, stream: &str, table: &str) -> impl Sized + use<> {
    engine.create_stream(stream, 1).await;
    for i in 0..20 {
        engine
            .put(stream, &format!("before-{i}"), b"an event before the split")
            .await;
    }
    engine
        .client
        .split_shard()
        .stream_name(stream)
        .shard_to_split(SHARD_0)
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    let mut checkpoint = String::new();
    for i in 0..30 {
        let (shard, sequence) = engine
            .put(stream, &format!("after-{i}"), b"an event after the split")
            .await;
        if shard == SHARD_1 && checkpoint.is_empty() {
            checkpoint = sequence;
        }
    }
    let consumer = engine
        .client
        .register_stream_consumer()
        .stream_arn(format!(
            "arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"
        ))
        .consumer_name("dashboard-watcher")
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap()
        .consumer_arn;
    let mut events = engine
        .client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(SHARD_1)
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .event_stream;
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("a first event")
        .unwrap();
    let ddb = dynamodb(engine);
    create_lease_table(&ddb, table).await;
    let leases = [
        Lease {
            shard: SHARD_0,
            owner: Some("worker-alpha"),
            counter: 41,
            checkpoint: "SHARD_END",
            parents: &[],
        },
        Lease {
            shard: SHARD_1,
            owner: Some("worker-alpha"),
            counter: 17,
            checkpoint: &checkpoint,
            parents: &[SHARD_0],
        },
        Lease {
            shard: SHARD_2,
            owner: Some("worker-beta"),
            counter: 9,
            checkpoint: "TRIM_HORIZON",
            parents: &[SHARD_0],
        },
    ];
    for lease in &leases {
        put_lease(&ddb, table, lease).await;
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_shards_lineage_subscriptions_and_leases_in_a_browser() {
    let Some(binary) =
        browser_or_skip("the_page_shows_shards_lineage_subscriptions_and_leases_in_a_browser")
    else {
        return;
    };
    let engine = TestEngine::start().await;
    let stream = name("browsed");
    let table = name("browsed-app");
    let _subscription = realistic_state(&engine, &stream, &table).await;
    let url = format!("{}/", engine.handle.endpoint_url());
    let dom = run_chromium(&binary, &url, &["--virtual-time-budget=5000", "--dump-dom"]).await;

    // The script ran and swapped in a fresh panel at least once.
    assert!(
        dom.contains("data-updates=\""),
        "the script never refreshed:\n{dom}"
    );
    assert!(dom.contains("Live: refreshed every second"), "{dom}");
    // The stream, with the parent closed and both children open under it.
    assert!(dom.contains(&format!("data-stream=\"{stream}\"")), "{dom}");
    let parent = dom
        .find(&format!("data-shard=\"{SHARD_0}\""))
        .expect("the parent");
    let child_1 = dom
        .find(&format!("data-shard=\"{SHARD_1}\""))
        .expect("child 1");
    let child_2 = dom
        .find(&format!("data-shard=\"{SHARD_2}\""))
        .expect("child 2");
    assert!(parent < child_1 && child_1 < child_2);
    let parent_card = &dom[parent..child_1];
    assert!(parent_card.contains("closed"), "{parent_card}");
    assert!(
        parent_card.contains("<ul>"),
        "the children are not nested under the parent"
    );
    let child_card = &dom[child_1..child_2];
    assert!(
        child_card.contains(&format!("parent {SHARD_0}")),
        "{child_card}"
    );
    assert!(child_card.contains("hash 0.0% – 50.0%"), "{child_card}");
    assert!(
        child_card.contains("<span class=\"consumer\">dashboard-watcher</span>"),
        "{child_card}"
    );
    assert!(dom.contains("hash 50.0% – 100.0%"));
    assert!(dom.contains("in 20 rec"), "the parent's 20 records");
    // The lease table as the fleet sees it.
    assert!(dom.contains(&format!("data-table=\"{table}\"")), "{dom}");
    assert!(dom.contains(&format!("leases of stream {stream}")), "{dom}");
    assert!(
        dom.contains("<span class=\"owner\">worker-alpha</span> holds 2"),
        "{dom}"
    );
    assert!(
        dom.contains("<span class=\"owner\">worker-beta</span> holds 1"),
        "{dom}"
    );
    assert!(dom.contains("SHARD_END"));
    assert!(dom.contains(">17<"), "worker-alpha's lease counter");
}

/// Writes the README's screenshot: `SHARDLINE_SCREENSHOT=$PWD/docs/dashboard.png cargo test -p
/// core-engine --test api dashboard::browser::screenshot -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/dashboard.png; run by hand"]
async fn screenshot() {
    let target = std::env::var("SHARDLINE_SCREENSHOT").expect("SHARDLINE_SCREENSHOT=<png path>");
    let binary = chromium().expect("a Chromium binary");
    let engine = TestEngine::start().await;
    let _subscription = realistic_state(&engine, "orders", "order-processor").await;
    // A steady trickle of writes and reads, so that the page has rates to show.
    let writer = {
        let client = engine.client.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let _ = client
                    .put_record()
                    .stream_name("orders")
                    .partition_key(format!("order-{i}"))
                    .data(aws_sdk_kinesis::primitives::Blob::new(vec![b'o'; 180]))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    get(&engine, "/_shardline/panel").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    run_chromium(
        &binary,
        &format!("{}/", engine.handle.endpoint_url()),
        &[
            &format!("--screenshot={target}"),
            "--window-size=1280,900",
            "--virtual-time-budget=3000",
        ],
    )
    .await;
    writer.abort();
}

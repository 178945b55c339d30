//! Every subcommand's `--smoke` run: the real binary, an in-process engine, a few seconds each.
//! They check that each benchmark runs to its table and reads back what it wrote; no timing is
//! asserted.

use std::process::Command;

fn smoke(subcommand: &str, json: bool) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bench"));
    command.args([subcommand, "--smoke"]);
    if json {
        command.arg("--json");
    }
    let out = command.output().expect("the bench binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench {subcommand} --smoke failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The JSON rows of a smoke run.
fn rows(subcommand: &str) -> Vec<serde_json::Value> {
    let out = smoke(subcommand, true);
    let value: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    value["rows"].as_array().expect("rows").clone()
}

#[test]
fn engine_ingest() {
    let rows = rows("engine-ingest");
    // memory and durable x 2 sizes x 2 connection counts
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["records"].as_f64() > Some(0.0)));
    assert!(rows.iter().all(|r| r["peak RSS MiB"].as_f64() > Some(0.0)));
}

#[test]
fn engine_read() {
    let rows = rows("engine-read");
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["records/s"].as_f64() > Some(0.0)));
}

/// `--protocol cbor` writes and reads the same records over raw CBOR HTTP.
#[test]
fn engine_ingest_and_read_over_cbor() {
    for subcommand in ["engine-ingest", "engine-read"] {
        let out = Command::new(env!("CARGO_BIN_EXE_bench"))
            .args([subcommand, "--smoke", "--json", "--protocol", "cbor"])
            .args(["--storage", "memory", "--sizes", "100"])
            .output()
            .expect("the bench binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON object");
        let rows = value["rows"].as_array().expect("rows").clone();
        assert!(!rows.is_empty(), "{value}");
        assert!(
            rows.iter().all(|r| r["records"].as_f64() > Some(0.0)),
            "{value}"
        );
    }
}

#[test]
fn fanout() {
    let rows = rows("fanout");
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["records/s per sub"].as_f64() > Some(0.0));
}

#[test]
fn kpl() {
    let out = smoke("kpl", false);
    assert!(out.contains("aggregated") && out.contains("plain"), "{out}");
}

#[test]
fn latency() {
    let rows = rows("latency");
    assert_eq!(rows.len(), 2, "polling and fan-out");
    assert!(rows.iter().all(|r| r["records"].as_f64() >= Some(200.0)));
}

#[test]
fn failover() {
    let rows = rows("failover");
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["resumed after s"].as_f64() > Some(0.0));
}

#[test]
fn scaling() {
    let rows = rows("scaling");
    assert_eq!(rows.len(), 4, "2 shard counts x 2 worker counts");
}

/// `--endpoint` loads a server the bench did not start: here an engine in the test process.
#[tokio::test(flavor = "multi_thread")]
async fn engine_ingest_against_an_external_endpoint() {
    let engine = core_engine::Engine::builder()
        .in_memory()
        .throughput_limits(false)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let endpoint = engine.endpoint_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_bench"))
            .args([
                "engine-ingest",
                "--smoke",
                "--json",
                "--endpoint",
                &endpoint,
            ])
            .output()
            .expect("the bench binary runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let rows = value["rows"].as_array().expect("rows");
    assert_eq!(
        rows.len(),
        4,
        "one storage (external) x 2 sizes x 2 connection counts"
    );
    assert!(rows.iter().all(|r| r["storage"] == "external"));
    // The records went to the external engine: its streams hold them.
    let client = kinesis(&engine.endpoint_url());
    let streams = client.list_streams().send().await.unwrap().stream_names;
    assert_eq!(streams.len(), 4, "one stream per run");
    engine.shutdown().await;
}

fn kinesis(endpoint: &str) -> aws_sdk_kinesis::Client {
    use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

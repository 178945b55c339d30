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

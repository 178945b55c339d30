//! The binary's logs: no colour codes when stderr is not a terminal, and `--log-format json`
//! writes one JSON object per line.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use crate::common::client;

/// Runs `core-engine serve` with stderr piped and `args`, creates a stream through it (so there
/// is something to log), stops it, and returns what it wrote to stderr.
async fn stderr_of_a_run(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_core-engine"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the core-engine binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("a first line");
    let endpoint = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        endpoint.starts_with("http://"),
        "unexpected first line {line:?}"
    );
    client(&endpoint)
        .create_stream()
        .stream_name("logged")
        .shard_count(1)
        .send()
        .await
        .expect("CreateStream");
    child.kill().expect("the child can be killed");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("stderr is UTF-8");
    child.wait().expect("the child can be reaped");
    stderr
}

#[tokio::test]
async fn text_logs_to_a_pipe_have_no_colour_codes() {
    let stderr = stderr_of_a_run(&[]).await;
    assert!(stderr.contains("created stream"), "{stderr:?}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escape codes in piped logs: {stderr:?}"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let stderr = stderr_of_a_run(&["--log-format", "json"]).await;
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "nothing logged");
    for line in &lines {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(record["level"].is_string(), "{record}");
        assert!(record["timestamp"].is_string(), "{record}");
    }
    assert!(
        lines.iter().any(|l| l.contains("created stream")),
        "{stderr}"
    );
}

//! The whole operation list of the Kinesis API: every operation of the SDK in use (read from its
//! operation modules, so a new SDK release with a new operation is seen) and of the API model the
//! SDK lacks is answered by the engine. An operation that appears and is not answered fails this
//! suite.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestEngine;

/// Operations of the current API model (botocore 1.44.8, `kinesis/2013-12-02/service-2.json`)
/// that aws-sdk-kinesis does not have yet: the queue operations.
const MODEL_ONLY: &[&str] = &[
    "AcknowledgeDeadLetterQueueRecords",
    "AcknowledgeQueueRecords",
    "CreateQueue",
    "DeleteQueue",
    "DescribeQueue",
    "ListQueues",
    "ReceiveDeadLetterQueueRecords",
    "ReceiveQueueRecords",
    "RestoreDeadLetterQueueRecords",
    "UpdateDeadLetterQueueRecordsVisibility",
    "UpdateQueue",
    "UpdateQueueRecordsVisibility",
];

/// The source directory of the aws-sdk-kinesis crate this test is built with.
fn sdk_source_dir() -> PathBuf {
    let version = aws_sdk_kinesis::meta::PKG_VERSION;
    let crate_dir = format!("aws-sdk-kinesis-{version}");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    if let Some(registry) = cargo_home.map(|home| home.join("registry/src")) {
        for index in std::fs::read_dir(&registry).into_iter().flatten().flatten() {
            let candidate = index.path().join(&crate_dir);
            if candidate.is_dir() {
                return candidate;
            }
        }
    }
    // Elsewhere (vendored sources, another CARGO_HOME): ask cargo where the package is.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("cargo metadata answered no JSON ({e})"));
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "aws-sdk-kinesis" && p["version"] == version)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("the source of aws-sdk-kinesis {version} is not found"));
    Path::new(manifest).parent().unwrap().to_owned()
}

/// The wire names of the SDK's operations, as each operation module declares them.
fn sdk_operations() -> Vec<String> {
    let dir = sdk_source_dir().join("src/operation");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let Some(at) = source.find("Metadata::new(") else {
            continue;
        };
        let name = source[at..]
            .split('"')
            .nth(1)
            .unwrap_or_else(|| panic!("no operation name in {}", path.display()));
        names.push(name.to_owned());
    }
    names.sort();
    assert!(
        names.len() >= 45,
        "read only {} operations from {}",
        names.len(),
        dir.display()
    );
    names
}

/// The error code the engine answers `operation` with, given an empty request, if any.
async fn error_code(engine: &TestEngine, operation: &str) -> Option<String> {
    let mut socket = TcpStream::connect(engine.handle.local_addr())
        .await
        .unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: Kinesis_20131202.{operation}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=AKID/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, \
         Signature=00\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let (_, body) = text.split_once("\r\n\r\n").unwrap_or(("", ""));
    let reply: serde_json::Value = serde_json::from_str(body).ok()?;
    let code = reply["__type"].as_str()?;
    Some(code.rsplit('#').next().unwrap_or(code).to_owned())
}

#[tokio::test]
async fn every_operation_of_the_api_is_answered() {
    let engine = TestEngine::start().await;
    let mut operations = sdk_operations();
    operations.extend(MODEL_ONLY.iter().map(|s| s.to_string()));
    let mut unanswered = Vec::new();
    for operation in &operations {
        if error_code(&engine, operation).await.as_deref() == Some("UnknownOperationException") {
            unanswered.push(operation.clone());
        }
    }
    assert!(
        unanswered.is_empty(),
        "operations of the API the engine does not answer: {unanswered:?}"
    );
}

#[tokio::test]
async fn an_operation_outside_the_api_is_unknown() {
    let engine = TestEngine::start().await;
    assert_eq!(
        error_code(&engine, "MakeCoffee").await.as_deref(),
        Some("UnknownOperationException")
    );
}

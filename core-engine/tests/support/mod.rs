//! Helpers shared by the Kinesis (`tests/api`) and DynamoDB (`tests/ddb`) test binaries.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};

/// A `core-engine serve` child process on a free loopback port.
pub struct ChildEngine {
    child: Child,
    pub endpoint: String,
}

impl ChildEngine {
    /// Starts the binary with `--data-dir` and any extra flags, and reads its endpoint from the
    /// first line it prints.
    pub fn spawn(data_dir: &std::path::Path, extra_args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_core-engine"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
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
            endpoint.starts_with("http://127.0.0.1:"),
            "unexpected first line {line:?}"
        );
        Self { child, endpoint }
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("the child can be killed");
        self.child.wait().expect("the child can be reaped");
    }
}

impl Drop for ChildEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The AWS error code and message of a call that must fail (either SDK: both use the same
/// `SdkError` and error-metadata types).
pub fn code_of<T, E, R>(result: Result<T, SdkError<E, R>>) -> (String, String)
where
    T: std::fmt::Debug,
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let err = result.expect_err("the call should fail");
    let service = err
        .as_service_error()
        .unwrap_or_else(|| panic!("expected a service error, got {err:?}"));
    (
        service.code().unwrap_or("<no code>").to_owned(),
        service.message().unwrap_or("").to_owned(),
    )
}

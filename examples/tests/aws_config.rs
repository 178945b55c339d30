//! The fleet binaries take their AWS configuration the standard way: `AWS_ENDPOINT_URL`, the
//! per-service `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL_DYNAMODB`, profiles, with
//! `--endpoint` overriding them, and the local engine when nothing is configured.
//!
//! Each case runs `fleet_producer` in a clean environment (its own `HOME`, so no profile of the
//! machine's is read) against an engine in this process, and checks where it says it connects
//! and that the stream it creates lands on the engine. Nothing here reaches AWS.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use examples::clients;

/// An address nothing listens on: a configuration pointing there would fail.
const NOWHERE: &str = "http://127.0.0.1:9";

/// What one run of `fleet_producer` said.
struct Run {
    /// Its stdout line about the stream, if it got that far.
    stream_line: Option<String>,
    /// Everything it wrote to stderr (the `using ...` line first).
    stderr: String,
}

/// Runs `fleet_producer --stream STREAM --shards 1 ARGS` with only `env` (and `HOME=home`) in
/// its environment until it says it created the stream or exits; then stops it.
fn fleet_producer(stream: &str, args: &[&str], env: &[(&str, &str)], home: &Path) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleet_producer"))
        .args(["--stream", stream, "--shards", "1", "--rate", "1"])
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fleet_producer starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("stream ") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    // The SDK retries a refused connection for a while before `connect` gives up.
    let stream_line = rx.recv_timeout(Duration::from_secs(60)).ok();
    let _ = child.kill();
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr);
    let _ = child.wait();
    Run {
        stream_line,
        stderr,
    }
}

async fn streams_on(endpoint: &str) -> Vec<String> {
    clients::kinesis(endpoint)
        .list_streams()
        .send()
        .await
        .unwrap()
        .stream_names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_come_from_the_environment_profiles_and_the_flag() {
    let engine = core_engine::Engine::builder()
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let url = engine.endpoint_url();
    let home = tempfile::tempdir().unwrap();

    // AWS_ENDPOINT_URL: both services.
    let run = fleet_producer(
        "by-global-env",
        &[],
        &[("AWS_ENDPOINT_URL", &url)],
        home.path(),
    );
    assert!(run.stream_line.is_some(), "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "using Kinesis at {url}, DynamoDB at {url} (AWS configuration, region us-east-1)"
        )),
        "{}",
        run.stderr
    );

    // AWS_ENDPOINT_URL_KINESIS wins over AWS_ENDPOINT_URL for Kinesis.
    let env = [
        ("AWS_ENDPOINT_URL", NOWHERE),
        ("AWS_ENDPOINT_URL_KINESIS", url.as_str()),
        ("AWS_REGION", "eu-west-1"),
    ];
    let run = fleet_producer("by-service-env", &[], &env, home.path());
    assert!(run.stream_line.is_some(), "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "using Kinesis at {url}, DynamoDB at {NOWHERE} (AWS configuration, region eu-west-1)"
        )),
        "{}",
        run.stderr
    );

    // --endpoint overrides the configuration.
    let env = [("AWS_ENDPOINT_URL_KINESIS", NOWHERE)];
    let run = fleet_producer("by-flag", &["--endpoint", &url], &env, home.path());
    assert!(run.stream_line.is_some(), "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!("using {url} (--endpoint)")),
        "{}",
        run.stderr
    );

    // A profile: ~/.aws/config's endpoint_url and region, credentials from ~/.aws/credentials.
    let aws_dir = home.path().join(".aws");
    std::fs::create_dir_all(&aws_dir).unwrap();
    std::fs::write(
        aws_dir.join("config"),
        format!("[profile local]\nregion = ap-south-1\nendpoint_url = {url}\n"),
    )
    .unwrap();
    std::fs::write(
        aws_dir.join("credentials"),
        "[local]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = secret\n",
    )
    .unwrap();
    let env = [("AWS_PROFILE", "local")];
    let run = fleet_producer("by-profile", &[], &env, home.path());
    assert!(run.stream_line.is_some(), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("(AWS configuration, region ap-south-1)"),
        "{}",
        run.stderr
    );
    std::fs::remove_dir_all(&aws_dir).unwrap();

    let mut created = streams_on(&url).await;
    created.sort();
    assert_eq!(
        created,
        ["by-flag", "by-global-env", "by-profile", "by-service-env"]
    );

    // Nothing configured: the local engine of the README's walkthrough, whether or not one
    // runs there.
    let run = fleet_producer("by-default", &[], &[], home.path());
    assert!(
        run.stderr
            .starts_with("using http://127.0.0.1:4567 (nothing configured: the local engine)"),
        "{}",
        run.stderr
    );
    engine.shutdown().await;
}

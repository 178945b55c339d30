//! The example binaries take their AWS configuration the standard way: `AWS_ENDPOINT_URL`, the
//! per-service `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL_DYNAMODB`, profiles, with
//! `--endpoint` overriding them; with nothing configured, the fleet uses the local engine and
//! the quickstart and the scenarios start one in their own process.
//!
//! Each case runs a binary in a clean environment (its own `HOME`, so no profile of the
//! machine's is read) against an engine in this process, and checks where it says it connects
//! and that what it creates lands on the engine. Nothing here reaches AWS.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use examples::clients;
use support::{Finished, aws_command, run_to_end};

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
    let mut command = aws_command(env!("CARGO_BIN_EXE_fleet_producer"), args, env, home);
    let mut child = command
        .args(["--stream", stream, "--shards", "1", "--rate", "1"])
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

/// The DynamoDB tables on the engine at `endpoint`.
async fn tables_on(endpoint: &str) -> BTreeSet<String> {
    clients::dynamodb(endpoint)
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The names in `names`, as a set.
fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Runs `bin ARGS` to its end (a minute at most) with only `env` as its AWS configuration.
fn run(bin: &str, args: &[&str], env: &[(&str, &str)], home: &Path) -> Finished {
    run_to_end(aws_command(bin, args, env, home), Duration::from_secs(90))
}

/// Asserts the run succeeded and its first line says it used `target`.
fn assert_ran_on(run: &Finished, target: &str) {
    assert!(
        run.status.success(),
        "{}\nstdout:\n{}\nstderr:\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.starts_with(&format!("using {target}")),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_come_from_the_environment_profiles_and_the_flag() {
    let engine = support::engine(core_engine::Engine::builder()).await;
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

/// The three scenario binaries, each as briefly as it goes, against an engine named by the AWS
/// configuration (no `--endpoint`): what they create lands there, with the suffix asked for or
/// the default one, and is deleted at the end unless `--keep`. With nothing configured, one runs
/// on an engine of its own, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenarios_run_where_the_aws_configuration_points() {
    let engine = support::engine(core_engine::Engine::builder().in_memory()).await;
    let url = engine.endpoint_url();
    let home = tempfile::tempdir().unwrap();
    let short = ["--duration", "1", "--rate", "40", "--shards", "1"];
    let global = [("AWS_ENDPOINT_URL", url.as_str())];
    let per_service = [
        ("AWS_ENDPOINT_URL", NOWHERE),
        ("AWS_ENDPOINT_URL_KINESIS", url.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", url.as_str()),
        ("AWS_REGION", "eu-west-1"),
    ];
    let (clickstream, iot, logs, embedded, nowhere) = std::thread::scope(|s| {
        let home = home.path();
        let clickstream = s.spawn(|| {
            let args = [&short[..], &["--users", "5", "--workers", "1"]];
            let args = [args.concat(), vec!["--suffix", "-env", "--keep"]].concat();
            run(
                env!("CARGO_BIN_EXE_clickstream_features"),
                &args,
                &global,
                home,
            )
        });
        let iot = s.spawn(|| {
            let args = [&short[..], &["--devices", "3", "--retrieval", "polling"]].concat();
            let args = [args, vec!["--suffix", "-svc", "--keep"]].concat();
            run(env!("CARGO_BIN_EXE_iot_alerts"), &args, &per_service, home)
        });
        let logs = s.spawn(|| run(env!("CARGO_BIN_EXE_log_fanout"), &short, &global, home));
        let embedded = s.spawn(|| {
            let args = [&short[..], &["--devices", "3", "--retrieval", "polling"]].concat();
            // A region alone (as a default profile gives) is not a reason to go to AWS.
            let region_alone = [("AWS_REGION", "eu-west-1")];
            run(env!("CARGO_BIN_EXE_iot_alerts"), &args, &region_alone, home)
        });
        let nowhere = s.spawn(|| {
            let env = [("AWS_ENDPOINT_URL", NOWHERE)];
            run(env!("CARGO_BIN_EXE_iot_alerts"), &short, &env, home)
        });
        [clickstream, iot, logs, embedded, nowhere]
            .map(|run| run.join().unwrap())
            .into()
    });

    let global_target =
        format!("Kinesis at {url}, DynamoDB at {url} (AWS configuration, region us-east-1)");
    assert_ran_on(
        &clickstream,
        &format!("{global_target}; names suffixed -env;"),
    );
    assert!(
        clickstream.stdout.contains(
            "left in place (--keep): streams [clickstream-env], tables [user-features-env, feature-writer-env, feature-writer-env-replay]"
        ),
        "{}",
        clickstream.stdout
    );
    assert_ran_on(
        &iot,
        &format!(
            "Kinesis at {url}, DynamoDB at {url} (AWS configuration, region eu-west-1); names suffixed -svc;"
        ),
    );

    // No --suffix: the unix time; no --keep: deleted.
    assert_ran_on(&logs, &format!("{global_target}; names suffixed -"));
    let suffix = logs.stdout["using ".len() + global_target.len()..]
        .trim_start_matches("; names suffixed ")
        .split(';')
        .next()
        .unwrap();
    assert!(
        suffix.trim_start_matches('-').parse::<u64>().is_ok(),
        "{suffix}"
    );
    assert!(
        logs.stdout.contains(&format!(
            "deleted streams [logs{suffix}], tables [log-archiver{suffix}, error-monitor{suffix}]"
        )),
        "{}",
        logs.stdout
    );

    // No endpoint configured and no --aws: an engine of its own, unsuffixed names.
    assert!(embedded.status.success(), "{embedded:?}");
    assert!(
        embedded.stdout.starts_with("using http://127.0.0.1:")
            && embedded
                .stdout
                .contains("(an engine in this process); 3 devices"),
        "{}",
        embedded.stdout
    );

    // A wrong endpoint: a clear error before anything is created.
    assert_eq!(nowhere.status.code(), Some(2), "{nowhere:?}");
    assert!(
        nowhere.stderr.starts_with(&format!(
            "error: Kinesis does not answer (using Kinesis at {NOWHERE}"
        )),
        "{}",
        nowhere.stderr
    );
    assert_eq!(nowhere.stdout, "");

    let streams: BTreeSet<String> = streams_on(&url).await.into_iter().collect();
    assert_eq!(
        streams,
        set(&["alerts-svc", "clickstream-env", "telemetry-svc"])
    );
    assert_eq!(
        tables_on(&url).await,
        set(&[
            "anomaly-detector-svc",
            "feature-writer-env",
            "feature-writer-env-replay",
            "user-features-env",
        ])
    );
    engine.shutdown().await;
}

/// The quickstart, briefly, against an engine named by `AWS_ENDPOINT_URL`; `--data-dir`, which
/// only configures an engine of its own, is refused there, and so is `--aws` with no region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_where_the_aws_configuration_points() {
    let engine = support::engine(core_engine::Engine::builder().in_memory()).await;
    let url = engine.endpoint_url();
    let home = tempfile::tempdir().unwrap();
    let env = [("AWS_ENDPOINT_URL", url.as_str())];
    let quickstart = env!("CARGO_BIN_EXE_quickstart");

    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    // Refused before anything is sent: nothing listens there.
    let nowhere = [("AWS_ENDPOINT_URL", NOWHERE)];
    let refused = run(quickstart, &["--data-dir", data], &nowhere, home.path());
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        refused.stderr.contains(&format!(
            "--data-dir {data} is for the engine the quickstart starts itself, but it runs on Kinesis at {NOWHERE}"
        )),
        "{}",
        refused.stderr
    );

    // --aws with no region: refused before anything is sent.
    let no_region = run(quickstart, &["--aws"], &[], home.path());
    assert_eq!(no_region.status.code(), Some(2), "{no_region:?}");
    assert!(
        no_region
            .stderr
            .contains("--aws needs a region: set AWS_REGION or a profile's region"),
        "{}",
        no_region.stderr
    );

    let args = [
        "--duration",
        "2",
        "--rate",
        "100",
        "--shards",
        "1",
        "--workers",
        "1",
        "--users",
        "10",
        "--suffix",
        "-qs",
        "--keep",
    ];
    let ran = run(quickstart, &args, &env, home.path());
    assert_ran_on(
        &ran,
        &format!(
            "Kinesis at {url}, DynamoDB at {url} (AWS configuration, region us-east-1); names suffixed -qs; workers read by"
        ),
    );
    assert!(
        ran.stdout.contains(
            "left in place (--keep): streams [clickstream-qs], tables [user-features-qs]"
        ),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("result: OK"), "{}", ran.stdout);
    assert_eq!(streams_on(&url).await, ["clickstream-qs"]);
    assert_eq!(tables_on(&url).await, set(&["user-features-qs"]));
    engine.shutdown().await;
}

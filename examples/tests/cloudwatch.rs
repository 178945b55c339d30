//! `--cloudwatch` (feature `cloudwatch`): the examples' exporters with both the CloudWatch
//! publisher and the Prometheus endpoint, a `kpl` producer and a `kcl` application in-process,
//! and an engine that answers PutMetricData: the KPL's and the KCL's series arrive in their
//! namespaces with their dimensions and sums, and the Prometheus scrape still shows them.
//! Then `fleet_producer --cloudwatch` as a child process, stopped by SIGTERM: what it
//! acknowledged is what CloudWatch got, sent by the last flush at exit.
//! (Its own test binary: the metrics recorder is process-wide.)
#![cfg(feature = "cloudwatch")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use core_engine::cloudwatch::SeriesSnapshot;
use examples::clients;
use examples::metrics::{CloudWatchFrom, Exporters, MetricsArgs};
use kcl::{Config, InitialPosition, Scheduler};

mod support;

use support::{Counting, get, parse, sum};

const STREAM: &str = "orders";
const APP: &str = "billing";
const KPL: &str = "KinesisProducerLibrary";
const RECORDS: u64 = 40;
const SHARDS: [&str; 2] = ["shardId-000000000000", "shardId-000000000001"];

/// The series `namespace`/`metric` with exactly the dimensions `dims`.
fn find<'a>(
    all: &'a [SeriesSnapshot],
    namespace: &str,
    metric: &str,
    dims: &[(&str, &str)],
) -> &'a SeriesSnapshot {
    let mut want: Vec<(String, String)> = dims
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    want.sort();
    all.iter()
        .find(|s| s.namespace == namespace && s.metric_name == metric && s.dimensions == want)
        .unwrap_or_else(|| panic!("no {namespace}/{metric} {dims:?} in {all:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_and_an_application_publish_to_cloudwatch_and_prometheus_at_once() {
    let engine = support::engine(core_engine::Engine::builder().throughput_limits(false)).await;
    let endpoint = engine.endpoint_url();
    // Installed before the producer and the scheduler start; an hour's interval, so what
    // CloudWatch gets is the last flush at shutdown.
    let args = MetricsArgs {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        cloudwatch: true,
        cloudwatch_interval: 3600,
    };
    let exporters = Exporters::start(&args, CloudWatchFrom::Engine(&endpoint))
        .await
        .unwrap();
    let prometheus = exporters.prometheus.expect("the Prometheus endpoint");

    let kinesis = clients::kinesis(&endpoint);
    clients::create_stream(&kinesis, STREAM, 2).await.unwrap();
    let producer = kpl::Producer::new(kinesis, STREAM, kpl::Config::default())
        .await
        .unwrap();
    support::put_orders(&producer, RECORDS as usize).await;

    let processed = Arc::new(AtomicU64::new(0));
    let scheduler = Arc::new(
        Scheduler::builder()
            .application(APP)
            .stream(STREAM)
            .worker_id("w1")
            .kinesis(clients::kinesis(&endpoint))
            .dynamodb(clients::dynamodb(&endpoint))
            .processor_factory({
                let processed = processed.clone();
                move |_: &str| Counting(processed.clone())
            })
            .config(Config {
                initial_position: InitialPosition::TrimHorizon,
                idle_time_between_reads: Duration::from_millis(100),
                shutdown_timeout: Duration::from_secs(5),
                ..Config::default()
            })
            .build()
            .unwrap(),
    );
    let run = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.run().await }
    });
    // The processor counts a batch before the worker does: wait for the worker's count, as
    // the Prometheus endpoint shows it (the other half of the fan-out).
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let (status, body) = get(prometheus, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        if sum(&parse(&body), "RecordsProcessed", &[("application", APP)]) == RECORDS as f64 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not process every record ({} counted):\n{body}",
            processed.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        sum(&parse(&body), "UserRecordsPut", &[("stream", STREAM)]),
        RECORDS as f64
    );
    assert!(
        engine.cloudwatch_series().is_empty(),
        "nothing is published before the interval or the shutdown"
    );

    scheduler.shutdown();
    run.await.unwrap().unwrap();
    producer.shutdown(Duration::from_secs(5)).await;
    exporters.shutdown().await;

    let all = engine.cloudwatch_series();
    // The KPL: per shard, per stream and across streams, every record counted once at each.
    let mut per_shard = 0.0;
    for shard in SHARDS {
        let series = find(
            &all,
            KPL,
            "UserRecordsPut",
            &[("StreamName", STREAM), ("ShardId", shard)],
        );
        assert!(series.total.sum > 0.0, "no records put to {shard}");
        per_shard += series.total.sum;
    }
    assert_eq!(per_shard, RECORDS as f64);
    let by_stream = find(&all, KPL, "UserRecordsPut", &[("StreamName", STREAM)]);
    assert_eq!(by_stream.total.sum, RECORDS as f64);
    assert_eq!(
        find(&all, KPL, "UserRecordsPut", &[]).total.sum,
        RECORDS as f64
    );
    assert_eq!(by_stream.unit.as_deref(), Some("Count"));

    // The KCL: namespace the application, per shard with the operation the KCL names.
    let mut processed_per_shard = 0.0;
    for shard in SHARDS {
        let series = find(
            &all,
            APP,
            "RecordsProcessed",
            &[
                ("Operation", "ProcessTask"),
                ("ShardId", shard),
                ("StreamName", STREAM),
            ],
        );
        processed_per_shard += series.total.sum;
    }
    assert_eq!(processed_per_shard, RECORDS as f64);
    assert!(
        all.iter().any(|s| s.namespace == APP
            && s.metric_name == "CurrentLeases"
            && s.dimension("WorkerIdentifier") == Some("w1")),
        "CurrentLeases per worker: {all:#?}"
    );
    // Nothing of the KCL's lands in the KPL's namespace, nor the other way round.
    assert!(
        all.iter()
            .filter(|s| s.namespace == KPL)
            .all(|s| s.metric_name != "RecordsProcessed")
    );
    assert!(
        all.iter()
            .filter(|s| s.namespace == APP)
            .all(|s| s.metric_name != "UserRecordsPut")
    );
    engine.shutdown().await;
}

/// `fleet_producer --cloudwatch` against an engine, stopped by SIGTERM: every acknowledged
/// record is in CloudWatch (the periodic flushes and the last one at exit, counted once).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_producer_publishes_what_it_acknowledged_before_it_exits() {
    use std::process::{Command, Stdio};

    let engine = support::engine(core_engine::Engine::builder().throughput_limits(false)).await;
    let endpoint = engine.endpoint_url();
    let child = Command::new(env!("CARGO_BIN_EXE_fleet_producer"))
        .args(["--endpoint", &endpoint, "--stream", STREAM, "--shards", "2"])
        .args(["--rate", "200", "--report-ms", "200"])
        .args(["--cloudwatch", "--cloudwatch-interval", "1"])
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fleet_producer starts");
    // A few periodic publications first, so the last flush is not the only one.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !engine
        .cloudwatch_series()
        .iter()
        .any(|s| s.namespace == KPL && s.metric_name == "UserRecordsPut" && s.points >= 2)
    {
        assert!(
            Instant::now() < deadline,
            "no periodic publication from fleet_producer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(sent.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // The last line: produced=N acked=N failed=N undelivered=N.
    let acked: f64 = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("produced="))
        .and_then(|l| l.split(' ').find_map(|kv| kv.strip_prefix("acked=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no final counts:\n{stdout}"));
    assert!(acked > 0.0, "{stdout}");
    let all = engine.cloudwatch_series();
    let by_stream = find(&all, KPL, "UserRecordsPut", &[("StreamName", STREAM)]);
    assert_eq!(by_stream.total.sum, acked, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("CloudWatch:") && stderr.contains("(0 failed requests"),
        "{stderr}"
    );
    engine.shutdown().await;
}

//! The publisher against the engine in-process: kpl- and kcl-like metrics recorded through the
//! `metrics` facade arrive in CloudWatch (the engine's PutMetricData) under the KPL/KCL
//! namespaces and dimensions, aggregated into statistic sets, batched, and a dead endpoint costs
//! a counted failure, not a hang.

use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::config::retry::RetryConfig;
use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
use core_engine::cloudwatch::SeriesSnapshot;
use core_engine::{Engine, EngineHandle};
use shardline_cloudwatch::{CloudWatchPublisher, Config, PublishError};

async fn engine() -> EngineHandle {
    Engine::builder().build().unwrap().start().await.unwrap()
}

fn client(endpoint: &str) -> Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    Client::from_conf(config)
}

/// A publisher that only sends when told (the interval is an hour).
fn publisher(endpoint: &str, config: Config) -> CloudWatchPublisher {
    let config = Config {
        interval: Duration::from_secs(3600),
        ..config
    };
    CloudWatchPublisher::start(client(endpoint), config)
}

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

#[tokio::test]
async fn kpl_and_kcl_metrics_arrive_with_their_namespaces_dimensions_and_statistics() {
    let engine = engine().await;
    let publisher = publisher(&engine.endpoint_url(), Config::default());
    let recorder = publisher.recorder();
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..3 {
            metrics::counter!("UserRecordsPut", "stream" => "orders", "shard" => "shardId-000000000000").increment(1);
        }
        metrics::counter!("UserRecordsPut", "stream" => "orders", "shard" => "shardId-000000000001").increment(2);
        metrics::counter!("UserRecordsPut", "stream" => "clicks", "shard" => "shardId-000000000000").increment(5);
        metrics::histogram!("BufferingTime", "stream" => "orders").record(10.0);
        metrics::histogram!("BufferingTime", "stream" => "orders").record(30.0);
        metrics::counter!("ErrorsByCode", "stream" => "orders", "ErrorCode" => "ProvisionedThroughputExceededException").increment(1);
        metrics::counter!("RecordsProcessed", "application" => "billing", "stream" => "orders", "shard" => "shardId-000000000000").increment(100);
        metrics::counter!("RecordsProcessed", "application" => "billing", "stream" => "orders", "shard" => "shardId-000000000000").increment(20);
        metrics::gauge!("MillisBehindLatest", "application" => "billing", "stream" => "orders", "shard" => "shardId-000000000000").set(1500.0);
        metrics::gauge!("CurrentLeases", "application" => "billing", "worker" => "worker-1")
            .set(2.0);
    });
    let report = publisher.flush().await;
    assert_eq!(report.failed_requests, 0, "{report:?}");
    // One request per namespace.
    assert_eq!(report.requests, 2, "{report:?}");
    let all = engine.cloudwatch_series();
    let kpl = "KinesisProducerLibrary";

    // KPL: global, per stream and per shard, as the KPL's default `shard` granularity.
    let global = find(&all, kpl, "UserRecordsPut", &[]);
    assert_eq!((global.total.sample_count, global.total.sum), (5.0, 10.0));
    assert_eq!((global.total.minimum, global.total.maximum), (1.0, 5.0));
    assert_eq!(global.unit.as_deref(), Some("Count"));
    let orders = find(&all, kpl, "UserRecordsPut", &[("StreamName", "orders")]);
    assert_eq!((orders.total.sample_count, orders.total.sum), (4.0, 5.0));
    let shard = find(
        &all,
        kpl,
        "UserRecordsPut",
        &[
            ("StreamName", "orders"),
            ("ShardId", "shardId-000000000001"),
        ],
    );
    assert_eq!((shard.total.sample_count, shard.total.sum), (1.0, 2.0));
    let buffering = find(&all, kpl, "BufferingTime", &[("StreamName", "orders")]);
    assert_eq!(
        (
            buffering.total.minimum,
            buffering.total.maximum,
            buffering.total.sum
        ),
        (10.0, 30.0, 40.0)
    );
    assert_eq!(buffering.unit.as_deref(), Some("Milliseconds"));
    find(
        &all,
        kpl,
        "ErrorsByCode",
        &[
            ("StreamName", "orders"),
            ("ErrorCode", "ProvisionedThroughputExceededException"),
        ],
    );

    // KCL: the application's namespace, with Operation, ShardId and StreamName.
    let processed = find(
        &all,
        "billing",
        "RecordsProcessed",
        &[
            ("Operation", "ProcessTask"),
            ("ShardId", "shardId-000000000000"),
            ("StreamName", "orders"),
        ],
    );
    assert_eq!(
        (processed.total.sample_count, processed.total.sum),
        (2.0, 120.0)
    );
    let behind = find(
        &all,
        "billing",
        "MillisBehindLatest",
        &[
            ("Operation", "ProcessTask"),
            ("ShardId", "shardId-000000000000"),
            ("StreamName", "orders"),
        ],
    );
    assert_eq!(behind.latest.maximum, 1500.0);
    assert_eq!(behind.unit.as_deref(), Some("Milliseconds"));
    find(
        &all,
        "billing",
        "CurrentLeases",
        &[
            ("Operation", "TakeLeases"),
            ("WorkerIdentifier", "worker-1"),
        ],
    );
    assert!(
        all.iter()
            .all(|s| s.namespace == kpl || s.namespace == "billing"),
        "{all:#?}"
    );

    // The next interval: counters with nothing new send nothing; a gauge reports its value again.
    let report = publisher.flush().await;
    assert_eq!((report.requests, report.data_sent), (1, 2), "{report:?}");
    let stats = publisher.stats();
    assert_eq!(stats.failed_requests, 0);
    assert!(stats.last_error.is_none());
    publisher.shutdown().await;
    engine.shutdown().await;
}

#[tokio::test]
async fn thousands_of_series_go_in_requests_of_at_most_1000() {
    let engine = engine().await;
    let config = Config {
        default_application: Some("big-app".into()),
        ..Config::default()
    };
    let publisher = publisher(&engine.endpoint_url(), config);
    let recorder = publisher.recorder();
    metrics::with_local_recorder(&recorder, || {
        for shard in 0..2500 {
            metrics::counter!("RecordsProcessed", "shard" => format!("shardId-{shard:012}"))
                .increment(1);
        }
    });
    let report = publisher.flush().await;
    // The engine refuses more than 1000 data per request, so success means the batches held.
    assert_eq!(report.failed_requests, 0, "{report:?}");
    assert_eq!((report.requests, report.data_sent), (3, 2500), "{report:?}");
    assert_eq!(publisher.stats().largest_request, 1000);
    assert_eq!(engine.cloudwatch_series().len(), 2500);
    publisher.shutdown().await;
    engine.shutdown().await;
}

#[tokio::test]
async fn shutdown_flushes_what_is_left() {
    let engine = engine().await;
    let publisher = publisher(&engine.endpoint_url(), Config::default());
    metrics::with_local_recorder(&publisher.recorder(), || {
        metrics::counter!("UserRecordsReceived", "stream" => "orders").increment(7);
    });
    let report = publisher.shutdown().await;
    assert_eq!(report.data_sent, 2, "{report:?}");
    let all = engine.cloudwatch_series();
    assert_eq!(
        find(
            &all,
            "KinesisProducerLibrary",
            "UserRecordsReceived",
            &[("StreamName", "orders")]
        )
        .total
        .sum,
        7.0
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_stopped_engine_is_a_counted_failure_and_data_wait_for_the_next_flush() {
    let engine = engine().await;
    let endpoint = engine.endpoint_url();
    let addr = engine.local_addr();
    engine.shutdown().await;
    let publisher = publisher(&endpoint, Config::default());
    metrics::with_local_recorder(&publisher.recorder(), || {
        metrics::counter!("UserRecordsPut", "stream" => "orders").increment(1);
    });
    let report = publisher.flush().await;
    assert_eq!(
        (report.requests, report.failed_requests),
        (0, 1),
        "{report:?}"
    );
    assert_eq!(report.data_pending, 2);
    let error = publisher.stats().last_error.expect("the failure is kept");
    assert!(matches!(error, PublishError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());

    // The engine comes back on the same port: the kept data go out with the next flush.
    let engine = Engine::builder()
        .listen(addr)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let report = publisher.flush().await;
    assert_eq!(
        (report.requests, report.data_sent, report.data_pending),
        (1, 2, 0),
        "{report:?}"
    );
    assert_eq!(engine.cloudwatch_series().len(), 2);
    publisher.shutdown().await;
    engine.shutdown().await;
}

#[tokio::test]
async fn an_endpoint_that_never_answers_times_out_and_the_buffer_stays_bounded() {
    // Accepts connections and reads, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let config = Config {
        request_timeout: Duration::from_millis(300),
        max_buffered_data: 3,
        ..Config::default()
    };
    let publisher = publisher(&format!("http://{addr}"), config);
    metrics::with_local_recorder(&publisher.recorder(), || {
        metrics::counter!("UserRecordsPut", "stream" => "orders", "shard" => "shardId-000000000000").increment(1);
        metrics::counter!("UserRecordsPut", "stream" => "orders", "shard" => "shardId-000000000001").increment(1);
    });
    // Four data (global, per stream, two per shard) against a buffer of three.
    let report = publisher.flush().await;
    assert_eq!(report.failed_requests, 1, "{report:?}");
    assert_eq!(report.data_pending, 3, "{report:?}");
    assert_eq!(report.data_dropped, 1, "{report:?}");
    assert_eq!(
        publisher.stats().last_error,
        Some(PublishError::Timeout(Duration::from_millis(300)))
    );
    publisher.shutdown().await;
    silent.abort();
}

#[tokio::test]
async fn invalid_data_are_dropped_not_retried() {
    let engine = engine().await;
    let config = Config {
        kpl_namespace: "AWS/Reserved".into(),
        ..Config::default()
    };
    let publisher = publisher(&engine.endpoint_url(), config);
    metrics::with_local_recorder(&publisher.recorder(), || {
        metrics::counter!("UserRecordsPut").increment(1);
    });
    let report = publisher.flush().await;
    assert_eq!(
        (
            report.failed_requests,
            report.data_dropped,
            report.data_pending
        ),
        (1, 1, 0),
        "{report:?}"
    );
    let error = publisher.stats().last_error.unwrap();
    assert_eq!(error.code(), "InvalidParameterValue");
    assert!(!error.is_retryable());
    publisher.shutdown().await;
    engine.shutdown().await;
}

#[tokio::test]
async fn the_interval_publishes_without_being_asked() {
    let engine = engine().await;
    let config = Config {
        interval: Duration::from_millis(100),
        ..Config::default()
    };
    let publisher = CloudWatchPublisher::start(client(&engine.endpoint_url()), config);
    metrics::with_local_recorder(&publisher.recorder(), || {
        metrics::counter!("UserRecordsPut", "stream" => "orders").increment(1);
    });
    let mut waited = 0;
    while engine.cloudwatch_series().is_empty() {
        assert!(waited < 200, "nothing published after 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(publisher.stats().requests >= 1);
    publisher.shutdown().await;
    engine.shutdown().await;
}

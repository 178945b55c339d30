//! `--metrics-listen`: a `kpl` producer and two `kcl` applications in one process with the
//! Prometheus exporter installed, scraped over HTTP: every series names its stream,
//! application and shard, and each application's metrics level holds.
//! (Its own test binary: the metrics recorder is process-wide.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use examples::clients;
use kcl::{Config, InitialPosition, MetricsLevel, Scheduler};

mod support;

use support::{Counting, get, matching, parse, sum};

const STREAM: &str = "orders";
const RECORDS: u64 = 40;

fn scheduler(
    endpoint: &str,
    app: &str,
    level: MetricsLevel,
    processed: &Arc<AtomicU64>,
) -> Arc<Scheduler<impl kcl::RecordProcessorFactory>> {
    let processed = processed.clone();
    let config = Config {
        initial_position: InitialPosition::TrimHorizon,
        idle_time_between_reads: Duration::from_millis(100),
        shutdown_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    Arc::new(
        Scheduler::builder()
            .application(app)
            .stream(STREAM)
            .worker_id("w1")
            .kinesis(clients::kinesis(endpoint))
            .dynamodb(clients::dynamodb(endpoint))
            .processor_factory(move |_: &str| Counting(processed.clone()))
            .config(config)
            .metrics_level(level)
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_and_two_applications_are_scraped_with_their_labels() {
    // Installed first: producers and schedulers register their metrics when they start.
    let metrics = examples::metrics::serve_prometheus("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let engine = support::engine(core_engine::Engine::builder().throughput_limits(false)).await;
    let endpoint = engine.endpoint_url();
    let kinesis = clients::kinesis(&endpoint);
    clients::create_stream(&kinesis, STREAM, 2).await.unwrap();

    let producer = kpl::Producer::new(kinesis, STREAM, kpl::Config::default())
        .await
        .unwrap();
    support::put_orders(&producer, RECORDS as usize).await;

    let (shop_count, audit_count) = (Arc::default(), Arc::default());
    let shop = scheduler(&endpoint, "shop", MetricsLevel::Detailed, &shop_count);
    let audit = scheduler(&endpoint, "audit", MetricsLevel::Summary, &audit_count);
    let runs = [shop.clone(), audit.clone()].map(|s| tokio::spawn(async move { s.run().await }));
    let deadline = Instant::now() + Duration::from_secs(60);
    while shop_count.load(Ordering::SeqCst) < RECORDS
        || audit_count.load(Ordering::SeqCst) < RECORDS
    {
        assert!(
            Instant::now() < deadline,
            "the applications did not read every record"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The processors count a batch before the worker does, when `process_records` returns:
    // scrape until the workers' counts are in too.
    let (body, samples) = loop {
        let (status, body) = get(metrics, "/metrics").await;
        assert_eq!(status, 200);
        let samples = parse(&body);
        let done = ["shop", "audit"].iter().all(|app| {
            sum(&samples, "RecordsProcessed", &[("application", app)]) == RECORDS as f64
        });
        if done || Instant::now() > deadline {
            break (body, samples);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The producer: per stream and shard, and every record counted once.
    let stream = [("stream", STREAM)];
    assert_eq!(sum(&samples, "UserRecordsPut", &stream), RECORDS as f64);
    assert_eq!(
        sum(&samples, "UserRecordsReceived", &stream),
        RECORDS as f64
    );
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let put = sum(
            &samples,
            "UserRecordsPut",
            &[("stream", STREAM), ("shard", shard)],
        );
        assert!(put > 0.0, "no UserRecordsPut for {shard}:\n{body}");
    }
    assert!(
        matching(&samples, "BufferingTime", &stream).count() > 0,
        "the producer's histograms are exported:\n{body}"
    );

    // The applications: per application, stream and shard; each read every record.
    for app in ["shop", "audit"] {
        let labels = [("application", app), ("stream", STREAM)];
        assert_eq!(sum(&samples, "RecordsProcessed", &labels), RECORDS as f64);
        let shards: Vec<_> = matching(&samples, "RecordsProcessed", &labels)
            .map(|s| s.labels["shard"].clone())
            .collect();
        assert_eq!(shards.len(), 2, "{shards:?}");
        let worker = [("application", app), ("worker", "w1")];
        assert_eq!(sum(&samples, "CurrentLeases", &worker), 2.0);
    }
    // Detailed metrics for shop only: audit runs at the summary level.
    let buffered = |app| matching(&samples, "RecordsBuffered", &[("application", app)]).count();
    assert!(buffered("shop") > 0, "{body}");
    assert_eq!(buffered("audit"), 0, "{body}");
    assert_eq!(get(metrics, "/").await.0, 404);
    shop.shutdown();
    audit.shutdown();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    engine.shutdown().await;
}

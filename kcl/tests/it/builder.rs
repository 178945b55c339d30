//! `Scheduler::builder`: every setting named, missing or invalid ones refused at build time with
//! the field named; a built scheduler reads the stream.

use std::sync::Arc;
use std::time::Duration;

use kcl::{Config, Error, FanOutConfig, Retrieval, Scheduler, SchedulerBuilder};

use crate::common::{Env, Factory, Log, Worker, eventually, fast_config};

/// A builder with every required setting, for `env`.
fn complete(env: &Env) -> SchedulerBuilder<Factory> {
    Scheduler::builder()
        .application("app")
        .stream("s")
        .worker_id("w")
        .kinesis(env.kinesis.clone())
        .dynamodb(env.ddb.clone())
        .processor_factory(Factory::new("w", &Arc::new(Log::default())))
        .config(fast_config())
}

/// The field named by the build error.
fn refused(builder: SchedulerBuilder<Factory>) -> (&'static str, String) {
    match builder.build() {
        Err(Error::InvalidConfig { field, reason }) => (field, reason),
        Err(other) => panic!("expected InvalidConfig, got {other}"),
        Ok(_) => panic!("expected the build to fail"),
    }
}

#[tokio::test]
async fn builder_names_each_missing_setting() {
    let env = Env::start().await;
    let log = Arc::new(Log::default());
    let all = || {
        (
            Scheduler::<Factory>::builder(),
            env.kinesis.clone(),
            env.ddb.clone(),
            Factory::new("w", &log),
        )
    };
    let (b, k, d, f) = all();
    let no_application = b
        .stream("s")
        .worker_id("w")
        .kinesis(k)
        .dynamodb(d)
        .processor_factory(f);
    assert_eq!(refused(no_application).0, "application");
    let (b, k, d, f) = all();
    let no_stream = b
        .application("app")
        .worker_id("w")
        .kinesis(k)
        .dynamodb(d)
        .processor_factory(f);
    assert_eq!(refused(no_stream).0, "stream");
    let (b, k, d, f) = all();
    let no_worker = b
        .application("app")
        .stream("s")
        .kinesis(k)
        .dynamodb(d)
        .processor_factory(f);
    assert_eq!(refused(no_worker).0, "worker_id");
    let (b, _, d, f) = all();
    let no_kinesis = b
        .application("app")
        .stream("s")
        .worker_id("w")
        .dynamodb(d)
        .processor_factory(f);
    assert_eq!(refused(no_kinesis).0, "kinesis");
    let (b, k, _, f) = all();
    let no_dynamodb = b
        .application("app")
        .stream("s")
        .worker_id("w")
        .kinesis(k)
        .processor_factory(f);
    assert_eq!(refused(no_dynamodb).0, "dynamodb");
    let (b, k, d, _) = all();
    let no_factory = b
        .application("app")
        .stream("s")
        .worker_id("w")
        .kinesis(k)
        .dynamodb(d);
    assert_eq!(refused(no_factory).0, "processor_factory");
    let (field, reason) = refused(complete(&env).application(""));
    assert_eq!(
        (field, reason.as_str()),
        ("application", "must not be empty")
    );
    // One stream source: a stream, a set of streams, or a tracker.
    let (field, _) = refused(complete(&env).streams(["t"]));
    assert_eq!(field, "stream");
    let (b, k, d, f) = all();
    let no_streams = b
        .application("app")
        .streams(Vec::<String>::new())
        .worker_id("w")
        .kinesis(k)
        .dynamodb(d)
        .processor_factory(f);
    assert_eq!(refused(no_streams).0, "streams");
    assert!(complete(&env).build().is_ok());
}

#[tokio::test]
async fn builder_names_the_invalid_config_field() {
    let env = Env::start().await;
    let cases: Vec<(&str, Config)> = vec![
        (
            "failover_time",
            Config {
                failover_time: Duration::ZERO,
                ..fast_config()
            },
        ),
        (
            "renewal_interval",
            Config {
                renewal_interval: Some(Duration::from_secs(2)),
                ..fast_config()
            },
        ),
        (
            "lease_safety_margin",
            Config {
                lease_safety_margin: Some(Duration::from_secs(2)),
                ..fast_config()
            },
        ),
        (
            "max_records",
            Config {
                max_records: 0,
                ..fast_config()
            },
        ),
        (
            "dynamodb_timeout",
            Config {
                dynamodb_timeout: Duration::ZERO,
                ..fast_config()
            },
        ),
        (
            "max_processing_time",
            Config {
                max_processing_time: Some(Duration::ZERO),
                ..fast_config()
            },
        ),
        (
            "table_name",
            Config {
                table_name: Some(String::new()),
                ..fast_config()
            },
        ),
        (
            "retrieval",
            Config {
                retrieval: Retrieval::FanOut(FanOutConfig {
                    max_buffered_events: 0,
                    ..FanOutConfig::default()
                }),
                ..fast_config()
            },
        ),
    ];
    for (expected, config) in cases {
        let (field, reason) = refused(complete(&env).config(config.clone()));
        assert_eq!(field, expected, "{reason}");
        // The short form checks the same.
        let short = Scheduler::new(
            env.kinesis.clone(),
            env.ddb.clone(),
            "app",
            "s",
            "w",
            Factory::new("w", &Arc::new(Log::default())),
            config,
        );
        assert!(
            matches!(short, Err(Error::InvalidConfig { field, .. }) if field == expected),
            "{expected}"
        );
    }
}

#[tokio::test]
async fn builder_built_scheduler_reads_the_stream() {
    let env = Env::start().await;
    env.create_stream("built", 2).await;
    let mut expected = Vec::new();
    for i in 0..20 {
        let data = format!("r{i}");
        env.put("built", &format!("k{}", i % 5), &data).await;
        expected.push(data);
    }
    let log = Arc::new(Log::default());
    // `Worker::start` builds its scheduler with the builder.
    let worker = Worker::start(&env, "built-app", "built", "w1", &log, fast_config());
    eventually(
        Duration::from_secs(20),
        "every record processed",
        async || log.has_all(&expected),
    )
    .await;
    assert_eq!(worker.scheduler.worker_id(), "w1");
    worker.stop().await;
}

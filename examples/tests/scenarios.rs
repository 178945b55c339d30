//! Each scenario, briefly, against an in-process engine on loopback (the real SDKs over HTTP).

use std::time::Duration;

use examples::scenarios::{Clients, clickstream_features, iot_alerts, log_fanout};

/// Starts an in-memory engine with AWS throughput limits on, as the binaries do.
async fn engine() -> (core_engine::EngineHandle, Clients) {
    let engine = core_engine::Engine::builder()
        .in_memory()
        .build()
        .expect("engine config")
        .start()
        .await
        .expect("engine start");
    let clients = Clients::new(&engine.endpoint_url());
    (engine, clients)
}

/// Short enough for a test, long enough that a stuck consumer fails instead of hanging.
const CATCH_UP: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickstream_features_match_the_recomputation_and_survive_a_full_replay() {
    let (engine, clients) = engine().await;
    let options = clickstream_features::Options {
        duration: Duration::from_secs(2),
        rate: 100,
        users: 20,
        catch_up_timeout: CATCH_UP,
        ..Default::default()
    };
    let report = clickstream_features::run(&clients, &options).await.unwrap();
    engine.shutdown().await;
    println!("{report}");
    assert!(report.events >= 100 && report.users > 1, "{report:?}");
    assert!(report.caught_up, "{report:?}");
    assert_eq!(report.producer_failures, 0);
    assert_eq!(report.stored_users, report.users);
    assert!(report.mismatched.is_empty(), "{:?}", report.mismatched);
    assert_eq!(
        report.applied, report.events,
        "each click applied exactly once"
    );
    assert_eq!(report.replay_complete, Some(true));
    assert_eq!(
        report.replay_applied, 0,
        "a replay must not change features"
    );
    assert!(report.replay_skipped >= report.events);
    assert!(report.ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iot_alerts_flag_every_injected_anomaly_and_nothing_else() {
    let (engine, clients) = engine().await;
    let options = iot_alerts::Options {
        duration: Duration::from_secs(4),
        rate: 100,
        devices: 5,
        catch_up_timeout: CATCH_UP,
        // The other scenarios read through fan-out (the default); this one keeps polling covered.
        retrieval: kcl::Retrieval::Polling,
        ..Default::default()
    };
    let report = iot_alerts::run(&clients, &options).await.unwrap();
    engine.shutdown().await;
    println!("{report}");
    assert!(report.caught_up, "{report:?}");
    assert_eq!(report.producer_failures, 0);
    assert!(
        report.injected >= 5,
        "too few anomalies to test: {report:?}"
    );
    assert!(report.missed.is_empty(), "missed {:?}", report.missed);
    assert!(
        report.false_positives.is_empty(),
        "false positives {:?}",
        report.false_positives
    );
    assert_eq!(report.alerted, report.injected);
    assert_eq!((report.wrong_metric, report.malformed), (0, 0));
    assert!(report.ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_fanout_gives_both_applications_every_line() {
    let (engine, clients) = engine().await;
    let options = log_fanout::Options {
        duration: Duration::from_secs(2),
        rate: 200,
        catch_up_timeout: CATCH_UP,
        ..Default::default()
    };
    let report = log_fanout::run(&clients, &options).await.unwrap();
    engine.shutdown().await;
    println!("{report}");
    assert!(report.lines >= 200, "{report:?}");
    assert_eq!(report.producer_failures, 0);
    for app in [&report.archiver, &report.monitor] {
        assert!(app.caught_up, "{app:?}");
        assert_eq!((app.lost, app.distinct), (0, report.lines), "{app:?}");
        assert_eq!(app.checkpointed_shards, report.shards, "{app:?}");
    }
    assert_ne!(report.archiver.name, report.monitor.name);
    // The monitor was deployed after the archiver had everything, yet read it all.
    assert!(report.monitor.started_at >= report.archiver.caught_up_at);
    assert_eq!(report.services.len(), log_fanout::model::SERVICES.len());
    for (service, want, got) in &report.services {
        assert_eq!(want, got, "{service}");
    }
    assert!(report.ok());
}

//! The producer and a consumer fleet through an engine serving HTTPS: `kpl` puts and `kcl`
//! (polling, and enhanced fan-out as AWS serves it: SubscribeToShard over HTTP/2 over TLS) reads
//! and keeps its leases over TLS, with the SDK's HTTP client negotiating HTTP/2 through ALPN, and
//! every record arrives.

use std::time::Duration;

use core_engine::{Engine, Fault, FaultRule, TlsConfig};
use examples::features::Shared;
use integration::fleet::test_config;
use integration::{Fleet, Load, TestEnv, load::producer_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_and_kcl_deliver_every_record_over_tls_with_http2() {
    deliver_every_record_over_tls(kcl::Retrieval::Polling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcl_fan_out_subscribes_over_tls_with_http2() {
    deliver_every_record_over_tls(kcl::Retrieval::fan_out()).await;
}

async fn deliver_every_record_over_tls(retrieval: kcl::Retrieval) {
    let fan_out = retrieval.is_fan_out();
    let mut builder = Engine::builder().tls(TlsConfig::self_signed());
    if fan_out {
        // Records must come through the subscriptions: every GetRecords fails.
        builder = builder.fault(FaultRule::new("GetRecords", Fault::InternalFailure));
    }
    let env = TestEnv::with(builder).await;
    let Some(engine) = &env.engine else {
        // External endpoints: whether they use TLS is theirs to say.
        return;
    };
    assert!(engine.endpoint_url().starts_with("https://"));
    let stream = env.name("clicks");
    let app = env.name("features");
    env.create_stream(&stream, 2).await;
    let shared = Shared::default();
    let config = kcl::Config {
        retrieval,
        ..test_config()
    };
    let fleet = Fleet::start_with(&env, &app, &stream, 2, &shared, config);
    let load = Load::start(&env.kinesis, &stream, producer_config(), 500, 50, &shared).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.stop().await;
    let caught_up = fleet.wait_caught_up(Duration::from_secs(60)).await;
    let consumers = fleet.consumer_arns();
    fleet.stop().await;
    if fan_out {
        // Both workers found (or registered) the one stream consumer they read through.
        assert!(consumers.iter().all(Option::is_some), "{consumers:?}");
        assert_eq!(consumers[0], consumers[1]);
    }
    let report = shared.report();
    assert!(caught_up, "the fleet did not catch up: {report:?}");
    assert!(report.acked > 0, "nothing was produced: {report:?}");
    assert_eq!(report.producer_failures, 0, "{report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.distinct, report.acked, "{report:?}");
    assert_eq!(report.order_violations, 0, "{report:?}");
    assert_eq!(report.malformed, 0, "{report:?}");
    // Producer, workers (their subscriptions too) and lease table all went over HTTP/2.
    let negotiated = engine.tls_connections().expect("TLS is on");
    assert!(negotiated.h2 > 0, "{negotiated:?}");
    assert_eq!(
        (negotiated.http1, negotiated.no_alpn),
        (0, 0),
        "{negotiated:?}"
    );
}

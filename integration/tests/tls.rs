//! The producer and a consumer fleet through an engine serving HTTPS: `kpl` puts and `kcl`
//! (polling) reads and keeps its leases over TLS, with the SDK's HTTP client negotiating HTTP/2
//! through ALPN, and every record arrives.

use std::time::Duration;

use core_engine::{Engine, TlsConfig};
use examples::features::Shared;
use integration::{Fleet, Load, TestEnv, load::producer_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_and_kcl_deliver_every_record_over_tls_with_http2() {
    let env = TestEnv::with(Engine::builder().tls(TlsConfig::self_signed())).await;
    let Some(engine) = &env.engine else {
        // External endpoints: whether they use TLS is theirs to say.
        return;
    };
    assert!(engine.endpoint_url().starts_with("https://"));
    let stream = env.name("clicks");
    let app = env.name("features");
    env.create_stream(&stream, 2).await;
    let shared = Shared::default();
    let fleet = Fleet::start(&env, &app, &stream, 2, &shared);
    let load = Load::start(&env.kinesis, &stream, producer_config(), 500, 50, &shared).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.stop().await;
    let caught_up = fleet.wait_caught_up(Duration::from_secs(60)).await;
    fleet.stop().await;
    let report = shared.report();
    assert!(caught_up, "the fleet did not catch up: {report:?}");
    assert!(report.acked > 0, "nothing was produced: {report:?}");
    assert_eq!(report.producer_failures, 0, "{report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.distinct, report.acked, "{report:?}");
    assert_eq!(report.order_violations, 0, "{report:?}");
    assert_eq!(report.malformed, 0, "{report:?}");
    // Producer, workers and lease table all went over HTTP/2.
    let negotiated = engine.tls_connections().expect("TLS is on");
    assert!(negotiated.h2 > 0, "{negotiated:?}");
    assert_eq!(
        (negotiated.http1, negotiated.no_alpn),
        (0, 0),
        "{negotiated:?}"
    );
}

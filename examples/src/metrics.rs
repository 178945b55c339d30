//! `--metrics-listen ADDR`: the process's `kpl` and `kcl` metrics in the Prometheus text format
//! at `GET /metrics`, through the `metrics-exporter-prometheus` crate.
//!
//! The exporter is the process's `metrics` recorder, so it is installed once, before the
//! producers and schedulers start (they register their metrics when they start). Names are the
//! KPL's and KCL's (`UserRecordsPut`, `RecordsProcessed`, dots turned into underscores:
//! `RecordProcessor_processRecords_Time`), labels `stream`, `shard`, `application`, `worker`
//! (see `docs/metrics.md`); histograms are rendered as summaries.
//!
//! ```text
//! fleet_worker --worker-id w1 --metrics-listen 127.0.0.1:9464 &
//! curl -s http://127.0.0.1:9464/metrics | grep RecordsProcessed
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histograms' windows are rolled (the exporter needs it done for it).
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the Prometheus exporter as this process's metrics recorder and serves it at
/// `http://LISTEN/metrics`; returns the address bound (`listen` may have port 0).
///
/// Fails when `listen` cannot be bound or a recorder is already installed.
pub async fn serve_prometheus(listen: SocketAddr) -> Result<SocketAddr> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding --metrics-listen {listen}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    tokio::spawn(upkeep(handle.clone()));
    tokio::spawn(serve(listener, handle));
    Ok(bound)
}

/// Serves `--metrics-listen` when given, and says where.
pub async fn serve_if_asked(listen: Option<SocketAddr>) -> Result<()> {
    if let Some(listen) = listen {
        let bound = serve_prometheus(listen).await?;
        println!("metrics at http://{bound}/metrics");
    }
    Ok(())
}

async fn upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(UPKEEP);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: try again shortly.
                eprintln!("metrics listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&request, &handle);
                async move { Ok::<_, Infallible>(response) }
            });
            // A scraper that hangs up mid-answer is no concern of ours.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(request: &Request<Incoming>, handle: &PrometheusHandle) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE, handle.render()),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".into(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

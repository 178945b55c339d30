//! The binaries' metrics exporters: `--metrics-listen ADDR`, the process's `kpl` and `kcl`
//! metrics in the Prometheus text format at `GET /metrics` (the `metrics-exporter-prometheus`
//! crate), and, with the `cloudwatch` cargo feature, `--cloudwatch`, the same metrics published
//! to CloudWatch as the KPL and the KCL publish theirs (the `shardline-cloudwatch` crate).
//!
//! The `metrics` crate has one recorder per process, so the exporters are installed once,
//! together ([`Exporters::start`]; both at once through `metrics-util`'s fan-out), before the
//! producers and schedulers start (they register their metrics when they start). Names are the
//! KPL's and KCL's (`UserRecordsPut`, `RecordsProcessed`; in Prometheus dots turned into
//! underscores: `RecordProcessor_processRecords_Time`), labels `stream`, `shard`, `application`,
//! `worker` (see `docs/metrics.md`); Prometheus renders histograms as summaries. CloudWatch gets
//! them under the namespace `KinesisProducerLibrary` (kpl) or the application's name (kcl),
//! with the dimensions `StreamName`, `ShardId`, `WorkerIdentifier`, `Operation`.
//!
//! ```text
//! fleet_worker --worker-id w1 --metrics-listen 127.0.0.1:9464 &
//! curl -s http://127.0.0.1:9464/metrics | grep RecordsProcessed
//! cargo run -p examples --features cloudwatch --bin fleet_worker -- --worker-id w1 --cloudwatch
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

use crate::clients::Aws;

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histograms' windows are rolled (the exporter needs it done for it).
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the Prometheus exporter as this process's metrics recorder and serves it at
/// `http://LISTEN/metrics`; returns the address bound (`listen` may have port 0).
///
/// Fails when `listen` cannot be bound or a recorder is already installed.
pub async fn serve_prometheus(listen: SocketAddr) -> Result<SocketAddr> {
    let (listener, bound) = bind(listen).await?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    spawn_server(listener, handle);
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

/// The metrics options of `fleet_producer`, `fleet_worker` and `quickstart` (flattened into
/// their arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Serve the process's metrics (Prometheus text format) at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Publish the process's kpl and kcl metrics to CloudWatch (namespaces
    /// KinesisProducerLibrary and the application's name), with the AWS configuration of the
    /// Kinesis client: to the engine when that is where Kinesis is, else to CloudWatch
    /// (AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL, or AWS's).
    #[cfg(feature = "cloudwatch")]
    #[arg(long)]
    pub cloudwatch: bool,
    /// Seconds between two publications to CloudWatch (the KPL's and KCL's 60 by default); what
    /// is left is sent at exit.
    #[cfg(feature = "cloudwatch")]
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub cloudwatch_interval: u64,
}

/// How `--cloudwatch` gets its client: built like the Kinesis client's.
#[derive(Debug, Clone, Copy)]
pub enum CloudWatchFrom<'a> {
    /// From the AWS configuration the Kinesis and DynamoDB clients came from
    /// (`Aws::cloudwatch`: `--endpoint`, the local engine, or the configured endpoint).
    Aws(&'a Aws),
    /// An engine at this URL, with dummy credentials (a test's own engine).
    Engine(&'a str),
}

/// The exporters [`MetricsArgs`] asked for, running; [`shutdown`](Self::shutdown) at exit
/// sends CloudWatch what was recorded since its last publication.
#[derive(Debug)]
pub struct Exporters {
    /// Where the Prometheus endpoint listens, if it does.
    pub prometheus: Option<SocketAddr>,
    #[cfg(feature = "cloudwatch")]
    cloudwatch: Option<shardline_cloudwatch::CloudWatchPublisher>,
}

impl Exporters {
    /// Starts the exporters `args` asks for and installs them as the process's metrics recorder
    /// (nothing when none is asked for); says where on stdout.
    ///
    /// Fails when `--metrics-listen` cannot be bound or a recorder is already installed.
    pub async fn start(args: &MetricsArgs, from: CloudWatchFrom<'_>) -> Result<Self> {
        let prometheus = match args.metrics_listen {
            Some(listen) => Some(bind(listen).await?),
            None => None,
        };
        let bound = prometheus.as_ref().map(|(_, bound)| *bound);
        #[cfg(not(feature = "cloudwatch"))]
        {
            let _ = from;
            if let Some((listener, _)) = prometheus {
                let handle = PrometheusBuilder::new()
                    .install_recorder()
                    .context("installing the Prometheus recorder")?;
                spawn_server(listener, handle);
            }
        }
        #[cfg(feature = "cloudwatch")]
        let cloudwatch = cloudwatch::install(args, from, prometheus)?;
        if let Some(bound) = bound {
            println!("metrics at http://{bound}/metrics");
        }
        Ok(Self {
            prometheus: bound,
            #[cfg(feature = "cloudwatch")]
            cloudwatch,
        })
    }

    /// Stops the exporters: the CloudWatch publisher sends what is left (one last
    /// PutMetricData per namespace) and its totals are printed on stderr.
    pub async fn shutdown(self) {
        #[cfg(feature = "cloudwatch")]
        if let Some(publisher) = self.cloudwatch {
            cloudwatch::shutdown(publisher).await;
        }
    }
}

/// `--cloudwatch`: the publisher, installed with the Prometheus recorder when both are asked for.
#[cfg(feature = "cloudwatch")]
mod cloudwatch {
    use std::net::SocketAddr;
    use std::time::Duration;

    use anyhow::{Result, anyhow};
    use metrics_exporter_prometheus::PrometheusBuilder;
    use metrics_util::layers::FanoutBuilder;
    use shardline_cloudwatch::{CloudWatchPublisher, Config};
    use tokio::net::TcpListener;

    use super::{CloudWatchFrom, MetricsArgs, spawn_server};

    /// Installs the recorders asked for (the Prometheus one serving on `prometheus`) as one.
    pub(super) fn install(
        args: &MetricsArgs,
        from: CloudWatchFrom<'_>,
        prometheus: Option<(TcpListener, SocketAddr)>,
    ) -> Result<Option<CloudWatchPublisher>> {
        if prometheus.is_none() && !args.cloudwatch {
            return Ok(None);
        }
        let mut fanout = FanoutBuilder::default();
        let mut server = None;
        if let Some((listener, _)) = prometheus {
            let recorder = PrometheusBuilder::new().build_recorder();
            server = Some((listener, recorder.handle()));
            fanout = fanout.add_recorder(recorder);
        }
        let publisher = args.cloudwatch.then(|| {
            let client = match from {
                CloudWatchFrom::Aws(aws) => aws.cloudwatch(),
                CloudWatchFrom::Engine(url) => crate::clients::cloudwatch(url),
            };
            let config = Config {
                interval: Duration::from_secs(args.cloudwatch_interval.max(1)),
                ..Config::default()
            };
            CloudWatchPublisher::start(client, config)
        });
        if let Some(publisher) = &publisher {
            fanout = fanout.add_recorder(publisher.recorder());
        }
        metrics::set_global_recorder(fanout.build())
            .map_err(|_| anyhow!("a metrics recorder is already installed"))?;
        if let Some((listener, handle)) = server {
            spawn_server(listener, handle);
        }
        if publisher.is_some() {
            println!(
                "metrics to CloudWatch every {} s (and at exit)",
                args.cloudwatch_interval.max(1)
            );
        }
        Ok(publisher)
    }

    /// The last flush, and what the publisher did in all.
    pub(super) async fn shutdown(publisher: CloudWatchPublisher) {
        let before = publisher.stats();
        let last = publisher.shutdown().await;
        eprintln!(
            "CloudWatch: {} PutMetricData requests sent {} data ({} failed requests, {} data dropped, {} unsent)",
            before.requests + last.requests,
            before.data_sent + last.data_sent,
            before.failed_requests + last.failed_requests,
            before.data_dropped + last.data_dropped,
            last.data_pending,
        );
        if let Some(error) = before.last_error {
            eprintln!("CloudWatch: the last failure before exit: {error}");
        }
    }
}

/// Binds `--metrics-listen`; returns the listener and the address bound.
async fn bind(listen: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding --metrics-listen {listen}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    Ok((listener, bound))
}

/// Serves `handle`'s metrics on `listener` and keeps its histograms rolling, in the background.
fn spawn_server(listener: TcpListener, handle: PrometheusHandle) {
    tokio::spawn(upkeep(handle.clone()));
    tokio::spawn(serve(listener, handle));
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

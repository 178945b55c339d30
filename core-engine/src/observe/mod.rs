//! What the engine shows about itself: `GET /metrics` for Prometheus, and a live page.
//!
//! - `GET /metrics`: the Prometheus text exposition ([`prometheus`] lists the series).
//! - `GET /` and `GET /_shardline/`: the page. Server-rendered HTML (it reads without
//!   JavaScript), which a small script refreshes every second from `GET /_shardline/panel`
//!   (the same HTML, without the page around it): streams with their shards as a tree of
//!   parents and children, hash ranges, per-shard write and read rates, consumers and live
//!   subscriptions, and every lease table as the fleet sees it (owner, counter, checkpoint,
//!   lag).
//! - `GET /_shardline/state.json`: the same snapshot as JSON, for scripts.
//!
//! These are answered without SigV4, even when the engine verifies signatures: Prometheus and
//! browsers cannot sign, and the endpoints only read. They show names, counts, lease owners
//! and checkpoints, never record data, keys or credentials. `--no-admin`
//! ([`EngineBuilder::admin_endpoints(false)`](crate::EngineBuilder::admin_endpoints)) removes
//! them with the admin endpoints: they answer 404. Only requests without an `X-Amz-Target`
//! header are taken, so `GET /` never shadows an AWS call (the SDKs `POST /`).
//!
//! Other parts of the engine add series and panels through [`Observe::add_section`].

mod counters;
mod leases;
mod page;
mod prometheus;
mod rates;
mod state;

use std::sync::Arc;

use http::{HeaderValue, Method, Response, StatusCode, header};
use parking_lot::RwLock;
use serde::Serialize;

pub(crate) use counters::{StreamCounters, TableCounters};
pub(crate) use prometheus::Kind;
pub(crate) use prometheus::MetricsText;

use crate::auth::Incoming;
use crate::protocol::{Body, Services, response};
use state::State;

/// More series for `/metrics` and a panel for the page, from another part of the engine (the
/// hook by which stores such as CloudWatch data points show up beside the engine's own).
pub(crate) trait Section: Send + Sync + std::fmt::Debug {
    /// Appends whole metric families (names prefixed `shardline_`) to the exposition.
    fn write_metrics(&self, out: &mut MetricsText);
    /// A table for the page and `state.json`, if there is anything to show.
    fn panel(&self) -> Option<Panel>;
}

/// A table on the page, below the streams and lease tables.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Panel {
    /// The heading.
    pub(crate) title: String,
    /// Column headings.
    pub(crate) columns: Vec<String>,
    /// Rows of cells, as text.
    pub(crate) rows: Vec<Vec<String>>,
}

/// The engine's observability state: the sampler of the page's rates, and the extra sections.
#[derive(Debug, Default)]
pub(crate) struct Observe {
    rates: rates::Rates,
    sections: RwLock<Vec<Arc<dyn Section>>>,
}

impl Observe {
    /// Adds `section` to `/metrics` and the page, after the engine's own.
    pub(crate) fn add_section(&self, section: Arc<dyn Section>) {
        self.sections.write().push(section);
    }

    /// Appends every section's families to `/metrics`.
    fn write_sections(&self, out: &mut MetricsText) {
        for section in self.sections.read().iter() {
            section.write_metrics(out);
        }
    }

    fn panels(&self) -> Vec<Panel> {
        self.sections
            .read()
            .iter()
            .filter_map(|s| s.panel())
            .collect()
    }
}

/// The page's pieces.
const PAGE_PATHS: [&str; 3] = ["/", "/_shardline", "/_shardline/"];
const METRICS: &str = "/metrics";
const PANEL: &str = "/_shardline/panel";
const STATE: &str = "/_shardline/state.json";
const SCRIPT: &str = "/_shardline/dashboard.js";
const STYLE: &str = "/_shardline/dashboard.css";

/// Answers a request for `/metrics` or the page; `None` for every other request.
pub(crate) fn serve(services: &Services, request: &Incoming<'_>) -> Option<Response<Body>> {
    let path = request.uri.path();
    let ours = PAGE_PATHS.contains(&path) || [METRICS, PANEL, STATE, SCRIPT, STYLE].contains(&path);
    let is_read = *request.method == Method::GET || *request.method == Method::HEAD;
    // An AWS call (or an awsQuery GET with `Action=`) is never ours.
    let aws = request.headers.contains_key("x-amz-target")
        || request.uri.query().is_some_and(|q| q.contains("Action="));
    if !ours || !is_read || aws {
        return None;
    }
    if !services.admin_endpoints {
        let message = format!("no endpoint {path}: the admin endpoints are switched off\n");
        return Some(answer(StatusCode::NOT_FOUND, TEXT, message.into_bytes()));
    }
    let observe = &services.observe;
    let state =
        |with_rates| State::collect(&services.kinesis, &services.dynamodb, observe, with_rates);
    Some(match path {
        METRICS => {
            let mut out = MetricsText::default();
            prometheus::write(&state(false), &mut out);
            observe.write_sections(&mut out);
            answer(
                StatusCode::OK,
                prometheus::CONTENT_TYPE,
                out.finish().into_bytes(),
            )
        }
        STATE => {
            let body = serde_json::to_vec(&state(true)).unwrap_or_default();
            answer(StatusCode::OK, "application/json", body)
        }
        PANEL => answer(StatusCode::OK, HTML, page::panel(&state(true)).into_bytes()),
        SCRIPT => answer(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            page::SCRIPT.into(),
        ),
        STYLE => answer(
            StatusCode::OK,
            "text/css; charset=utf-8",
            page::STYLE.into(),
        ),
        _ => answer(StatusCode::OK, HTML, page::page(&state(true)).into_bytes()),
    })
}

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// An answer that no cache keeps and no other site frames or sniffs.
fn answer(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut answer = response(status, content_type, body, None);
    let headers = answer.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A section as another store would add one.
    #[derive(Debug)]
    struct DataPoints;

    impl Section for DataPoints {
        fn write_metrics(&self, out: &mut MetricsText) {
            out.family("shardline_test_points", Kind::Gauge, "Test points.");
            out.sample(
                "shardline_test_points",
                &[("namespace", "KinesisProducerLibrary")],
                7,
            );
        }

        fn panel(&self) -> Option<Panel> {
            Some(Panel {
                title: "Test data points".into(),
                columns: vec!["namespace".into(), "value".into()],
                rows: vec![vec!["KinesisProducerLibrary".into(), "7".into()]],
            })
        }
    }

    #[test]
    fn added_sections_show_in_metrics_and_on_the_page() {
        let observe = Observe::default();
        observe.add_section(Arc::new(DataPoints));
        let mut out = MetricsText::default();
        observe.write_sections(&mut out);
        assert!(out.finish().contains(
            "# TYPE shardline_test_points gauge\nshardline_test_points{namespace=\"KinesisProducerLibrary\"} 7\n"
        ));
        let state = State {
            now_ms: 0,
            streams: Vec::new(),
            tables: Vec::new(),
            sections: observe.panels(),
        };
        let html = page::panel(&state);
        assert!(html.contains("<h2>Test data points</h2>"), "{html}");
        assert!(html.contains("<td title=\"KinesisProducerLibrary\">KinesisProducerLibrary</td>"));
    }
}

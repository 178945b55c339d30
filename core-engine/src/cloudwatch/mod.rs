//! CloudWatch metrics on the engine's port: PutMetricData (and ListMetrics, GetMetricStatistics
//! and GetMetricData over the kept points), so that
//! the `shardline-cloudwatch` publisher, and third-party KPL/KCL ports that publish their metrics
//! to CloudWatch, can be pointed at the engine.
//!
//! - `wire`: recognising the three protocols (RPC v2 CBOR, awsJson1.0, awsQuery) and answering
//!   in each;
//! - `query`: awsQuery's forms and XML;
//! - `model`: PutMetricData's input, validated as CloudWatch does;
//! - `store`: the points kept per series, bounded;
//! - `statistics`: GetMetricStatistics;
//! - `metric_data`: GetMetricData (its input in `metric_data::request`), and `expression` its
//!   metric math;
//! - `prometheus`: the kept series as Prometheus text;
//! - `section`: the kept series in the engine's `/metrics` and on its page.
//!
//! Requests are signed for the service `monitoring`; with access rules, the actions are
//! `cloudwatch:<Operation>` on resource `*` (CloudWatch metrics have no resource ARNs).

mod error;
mod expression;
mod metric_data;
pub(crate) mod model;
mod prometheus;
pub(crate) mod query;
mod section;
mod statistics;
mod store;
pub(crate) mod wire;

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::auth::{Incoming, Principal};
use crate::clock::Clock;
use crate::protocol::{Body, Services};
pub use model::Statistics;
pub use prometheus::write_prometheus;
pub(crate) use section::CloudWatchSection;
pub use store::{MAX_POINTS_PER_SERIES, MAX_SERIES, RETENTION_MS, SeriesSnapshot};

use error::CwError;
use wire::Protocol;

/// What CloudWatch says to a request without credentials.
const MISSING_TOKEN: &str = "Request is missing Authentication Token";
/// The most metrics one ListMetrics returns (CloudWatch's page size).
const LIST_LIMIT: usize = 500;

/// The CloudWatch service: the kept points, on the engine clock.
#[derive(Debug)]
pub(crate) struct CloudWatch {
    store: Mutex<store::Store>,
    clock: Arc<dyn Clock>,
}

impl CloudWatch {
    /// An empty service reading time from `clock`.
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            store: Mutex::new(store::Store::default()),
            clock,
        }
    }

    /// Every kept series (points older than [`RETENTION_MS`] dropped first).
    pub(crate) fn series(&self) -> Vec<SeriesSnapshot> {
        let mut store = self.store.lock();
        store.prune(self.clock.now_ms());
        store.snapshot()
    }
}

/// Answers `request` if it is a CloudWatch request; `None` leaves it to the other services.
pub(crate) fn serve(services: &Services, request: &Incoming<'_>) -> Option<Response<Body>> {
    let (protocol, operation) =
        wire::recognise(request.method, request.uri.path(), request.headers)?;
    Some(match answer(services, request, protocol, operation) {
        Ok(response) => response,
        Err(error) => wire::error(protocol, &error),
    })
}

fn answer(
    services: &Services,
    request: &Incoming<'_>,
    protocol: Protocol,
    operation: Option<&str>,
) -> Result<Response<Body>, CwError> {
    let principal = crate::protocol::authenticate(services, request, "monitoring", MISSING_TOKEN)
        .map_err(|e| CwError::from(&e))?;
    let body = wire::decoded_body(
        request.headers,
        Bytes::copy_from_slice(request.body),
        crate::protocol::MAX_BODY_BYTES,
    )?;
    let (operation, input) = match protocol {
        Protocol::Cbor => (operation.unwrap_or_default().to_owned(), cbor_input(&body)?),
        Protocol::Json => (operation.unwrap_or_default().to_owned(), json_input(&body)?),
        Protocol::Query => {
            let pairs = query::parse_form(&body)?;
            let action = pairs
                .iter()
                .find(|(k, _)| k == "Action")
                .map(|(_, v)| v.clone())
                .ok_or_else(|| CwError::missing("Action"))?;
            (action, query::to_tree(&pairs)?)
        }
    };
    if let Some(principal) = principal.filter(Principal::has_rules) {
        principal
            .authorize(&format!("cloudwatch:{operation}"), &["*".to_owned()])
            .map_err(|e| CwError::from(&e))?;
    }
    let cloudwatch = &services.cloudwatch;
    match operation.as_str() {
        "PutMetricData" => {
            let now_ms = cloudwatch.clock.now_ms();
            let put = model::put_metric_data(&input, now_ms)?;
            cloudwatch.store.lock().put(put, now_ms);
            Ok(wire::success(protocol, &operation, &json!({}), ""))
        }
        "ListMetrics" => {
            let metrics = list_metrics(cloudwatch, &input)?;
            let mut xml = list_metrics_xml(&metrics);
            let mut output = json!({ "Metrics": metrics });
            // With IncludeLinkedAccounts, CloudWatch names each metric's account; here every
            // metric is the engine's own account's.
            if model::flag(input.get("IncludeLinkedAccounts"), "IncludeLinkedAccounts")?
                .unwrap_or(false)
            {
                let account = &services.kinesis.config.account_id;
                output["OwningAccounts"] = json!(vec![account; metrics.len()]);
                xml.push_str("<OwningAccounts>");
                for _ in &metrics {
                    xml.push_str(&format!("<member>{}</member>", query::escape(account)));
                }
                xml.push_str("</OwningAccounts>");
            }
            Ok(wire::success(protocol, &operation, &output, &xml))
        }
        "GetMetricStatistics" => {
            let request = statistics::request(&input)?;
            let (namespace, metric_name, dimensions) = request.series();
            let points = {
                let mut store = cloudwatch.store.lock();
                store.prune(cloudwatch.clock.now_ms());
                store.points(namespace, metric_name, dimensions)
            };
            let (output, xml) = statistics::answer(&request, points);
            Ok(wire::success(protocol, &operation, &output, &xml))
        }
        "GetMetricData" => {
            let request = metric_data::request(&input)?;
            let (output, xml) = {
                let mut store = cloudwatch.store.lock();
                store.prune(cloudwatch.clock.now_ms());
                metric_data::answer(&request, &store)?
            };
            Ok(wire::success(protocol, &operation, &output, &xml))
        }
        other => Err(CwError::unknown_operation(other)),
    }
}

/// An RPC v2 CBOR body as JSON, through the engine's CBOR decoder.
///
/// That decoder reads tag-1 integers as AWS CBOR's epoch milliseconds; RPC v2 CBOR means epoch
/// seconds (botocore sends whole seconds as integers; the Rust SDK sends floats, which both
/// read as seconds). No CloudWatch timestamp is before 1973 (PutMetricData accepts two weeks
/// back at most), so a decoded timestamp under 1e8 seconds can only be whole seconds read as
/// milliseconds, and is scaled back: PutMetricData's `MetricData[].Timestamp`,
/// GetMetricStatistics' and GetMetricData's `StartTime` and `EndTime`.
fn cbor_input(body: &[u8]) -> Result<Value, CwError> {
    let json =
        crate::protocol::cbor::cbor_request_to_json(body, crate::protocol::cbor::Shape::default())
            .map_err(|e| CwError::malformed(e.to_string()))?;
    let mut input = json_input(&json)?;
    for key in ["StartTime", "EndTime"] {
        if let Some(timestamp) = input.get_mut(key) {
            whole_seconds(timestamp);
        }
    }
    if let Some(data) = input.get_mut("MetricData").and_then(Value::as_array_mut) {
        for timestamp in data.iter_mut().filter_map(|d| d.get_mut("Timestamp")) {
            whole_seconds(timestamp);
        }
    }
    Ok(input)
}

/// Scales back a timestamp of whole seconds the CBOR decoder read as milliseconds.
fn whole_seconds(timestamp: &mut Value) {
    if let Some(seconds) = timestamp.as_f64().filter(|s| s.abs() < 1e8) {
        *timestamp = json!(seconds * 1000.0);
    }
}

fn json_input(body: &[u8]) -> Result<Value, CwError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let input: Value = serde_json::from_slice(body)
        .map_err(|e| CwError::malformed(format!("The request body is not valid JSON: {e}")))?;
    if !input.is_object() {
        return Err(CwError::malformed("The request body must be a structure."));
    }
    Ok(input)
}

/// ListMetrics' `Metrics`: the kept series matching the Namespace, MetricName and Dimensions
/// filters (a dimension filter without a value matches any value), at most one page.
/// `RecentlyActive` (`PT3H`, the only value) keeps them all: every kept point is under an hour
/// old.
fn list_metrics(cloudwatch: &CloudWatch, input: &Value) -> Result<Vec<Value>, CwError> {
    match model::text(input.get("RecentlyActive"), "RecentlyActive")?.as_deref() {
        None | Some("PT3H") => {}
        Some(other) => {
            return Err(CwError::invalid_value(format!(
                "The value {other} for parameter RecentlyActive is invalid: it must be PT3H."
            )));
        }
    }
    let namespace = input.get("Namespace").and_then(Value::as_str);
    let metric_name = input.get("MetricName").and_then(Value::as_str);
    let filters: Vec<(&str, Option<&str>)> = input
        .get("Dimensions")
        .and_then(Value::as_array)
        .map(|filters| {
            filters
                .iter()
                .filter_map(|f| {
                    let name = f.get("Name")?.as_str()?;
                    Some((name, f.get("Value").and_then(Value::as_str)))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(cloudwatch
        .series()
        .into_iter()
        .filter(|s| namespace.is_none_or(|n| s.namespace == n))
        .filter(|s| metric_name.is_none_or(|m| s.metric_name == m))
        .filter(|s| {
            filters
                .iter()
                .all(|(name, value)| s.dimension(name).is_some_and(|v| value.is_none_or(|w| v == w)))
        })
        .take(LIST_LIMIT)
        .map(|s| {
            let dimensions: Vec<Value> = s
                .dimensions
                .iter()
                .map(|(name, value)| json!({ "Name": name, "Value": value }))
                .collect();
            json!({ "Namespace": s.namespace, "MetricName": s.metric_name, "Dimensions": dimensions })
        })
        .collect())
}

fn list_metrics_xml(metrics: &[Value]) -> String {
    let text =
        |v: &Value, k: &str| query::escape(v.get(k).and_then(Value::as_str).unwrap_or_default());
    let mut out = String::from("<Metrics>");
    for metric in metrics {
        out.push_str("<member><Namespace>");
        out.push_str(&text(metric, "Namespace"));
        out.push_str("</Namespace><MetricName>");
        out.push_str(&text(metric, "MetricName"));
        out.push_str("</MetricName><Dimensions>");
        for dimension in metric
            .get("Dimensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push_str(&format!(
                "<member><Name>{}</Name><Value>{}</Value></member>",
                text(dimension, "Name"),
                text(dimension, "Value")
            ));
        }
        out.push_str("</Dimensions></member>");
    }
    out.push_str("</Metrics>");
    out
}

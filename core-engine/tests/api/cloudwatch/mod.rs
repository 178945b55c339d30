//! CloudWatch on the engine's port: `aws-sdk-cloudwatch` (Smithy RPC v2 CBOR, gzip for large
//! bodies) and hand-built awsQuery forms put metric data, which the engine validates as
//! CloudWatch does, keeps, and shows through `EngineHandle::cloudwatch_series`, Prometheus text,
//! ListMetrics, GetMetricStatistics and GetMetricData.

mod exposition;
mod metric_data;
mod protocols;
mod statistics;
mod validation;

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, MetricDatum, StandardUnit, StatisticSet,
};
use core_engine::auth::{AccessKey, Credentials as EngineCredentials, Rule};
use core_engine::cloudwatch::{SeriesSnapshot, write_prometheus};
use core_engine::{Engine, EngineHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn engine() -> EngineHandle {
    Engine::builder().build().unwrap().start().await.unwrap()
}

fn client_with(engine: &EngineHandle, id: &str, secret: &str) -> Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(engine.endpoint_url())
        .credentials_provider(Credentials::new(id, secret, None, None, "test"))
        .build();
    Client::from_conf(config)
}

fn client(engine: &EngineHandle) -> Client {
    client_with(engine, "AKIDTEST", "secret")
}

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value).build()
}

fn series<'a>(all: &'a [SeriesSnapshot], metric: &str) -> &'a SeriesSnapshot {
    all.iter()
        .find(|s| s.metric_name == metric)
        .unwrap_or_else(|| panic!("no series {metric} in {all:#?}"))
}

/// Posts a form as awsQuery clients do (botocore's `query` serializer, the AWS CLI v1, the Java
/// SDK v1): `POST /`, form-encoded, signed (any credentials pass here).
async fn post_form(engine: &EngineHandle, form: &str) -> (u16, String) {
    let mut socket = TcpStream::connect(engine.local_addr()).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/monitoring/aws4_request, \
         SignedHeaders=host, Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/xml"),
        "{head}"
    );
    (head[9..12].parse().unwrap(), body.to_owned())
}

/// The date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Sends a raw request with `headers` and `body`; returns the status, the lower-cased head and
/// the body.
async fn post_raw(
    engine: &EngineHandle,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut socket = TcpStream::connect(engine.local_addr()).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/monitoring/aws4_request, \
         SignedHeaders=host, Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(response[..split].to_vec())
        .unwrap()
        .to_ascii_lowercase();
    (
        head[9..12].parse().unwrap(),
        head,
        response[split + 4..].to_vec(),
    )
}

/// `GET path`, as Prometheus or a browser sends it; returns the status and body.
async fn get(engine: &EngineHandle, path: &str) -> (u16, String) {
    let mut socket = TcpStream::connect(engine.local_addr()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_owned())
}

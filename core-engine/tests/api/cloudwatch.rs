//! CloudWatch on the engine's port: `aws-sdk-cloudwatch` (Smithy RPC v2 CBOR, gzip for large
//! bodies) and hand-built awsQuery forms put metric data, which the engine validates as
//! CloudWatch does, keeps, and shows through `EngineHandle::cloudwatch_series`, Prometheus text
//! and ListMetrics.

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

#[tokio::test]
async fn sdk_puts_are_kept_per_series_and_readable() {
    let engine = engine().await;
    let cw = client(&engine);
    let now = SystemTime::now();
    cw.put_metric_data()
        .namespace("KinesisProducerLibrary")
        .metric_data(
            MetricDatum::builder()
                .metric_name("UserRecordsPut")
                .dimensions(dimension("StreamName", "orders"))
                .dimensions(dimension("ShardId", "shardId-000000000001"))
                .timestamp(DateTime::from(now))
                .unit(StandardUnit::Count)
                .statistic_values(
                    StatisticSet::builder()
                        .sample_count(4.0)
                        .sum(40.0)
                        .minimum(5.0)
                        .maximum(15.0)
                        .build(),
                )
                .build(),
        )
        .metric_data(
            MetricDatum::builder()
                .metric_name("BufferingTime")
                .dimensions(dimension("StreamName", "orders"))
                .unit(StandardUnit::Milliseconds)
                .values(10.0)
                .values(20.0)
                .counts(1.0)
                .counts(3.0)
                .storage_resolution(1)
                .build(),
        )
        .metric_data(
            MetricDatum::builder()
                .metric_name("Plain")
                .value(2.5)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
    // A second point for the same series (dimensions in another order) adds to it.
    cw.put_metric_data()
        .namespace("KinesisProducerLibrary")
        .metric_data(
            MetricDatum::builder()
                .metric_name("UserRecordsPut")
                .dimensions(dimension("ShardId", "shardId-000000000001"))
                .dimensions(dimension("StreamName", "orders"))
                .timestamp(DateTime::from(now + Duration::from_secs(60)))
                .value(1.0)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let all = engine.cloudwatch_series();
    assert_eq!(all.len(), 3, "{all:#?}");
    let put = series(&all, "UserRecordsPut");
    assert_eq!(put.namespace, "KinesisProducerLibrary");
    assert_eq!(
        put.dimensions,
        vec![
            ("ShardId".to_owned(), "shardId-000000000001".to_owned()),
            ("StreamName".to_owned(), "orders".to_owned())
        ]
    );
    assert_eq!(put.points, 2);
    assert_eq!(put.unit.as_deref(), Some("Count"));
    assert_eq!(put.latest.sum, 1.0);
    assert_eq!(put.total.sample_count, 5.0);
    assert_eq!(put.total.sum, 41.0);
    assert_eq!((put.total.minimum, put.total.maximum), (1.0, 15.0));
    let sent_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((put.latest_timestamp_ms - (sent_ms + 60_000)).abs() <= 1);
    let buffering = series(&all, "BufferingTime");
    assert_eq!(buffering.total.sample_count, 4.0);
    assert_eq!(buffering.total.sum, 70.0);
    assert_eq!(
        (buffering.total.minimum, buffering.total.maximum),
        (10.0, 20.0)
    );
    assert_eq!(buffering.storage_resolution, 1);
    assert_eq!(series(&all, "Plain").total.sum, 2.5);

    let mut text = String::new();
    write_prometheus(&all, &mut text);
    assert!(
        text.contains(
            "shardline_cloudwatch_sum{namespace=\"KinesisProducerLibrary\",metric_name=\"UserRecordsPut\",\
             unit=\"Count\",ShardId=\"shardId-000000000001\",StreamName=\"orders\"} 41\n"
        ),
        "{text}"
    );

    let listed = cw
        .list_metrics()
        .namespace("KinesisProducerLibrary")
        .dimensions(DimensionFilter::builder().name("StreamName").build())
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    names.sort();
    assert_eq!(names, ["BufferingTime", "UserRecordsPut"]);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_full_batch_goes_through_gzip_and_one_more_is_refused() {
    let engine = engine().await;
    let cw = client(&engine);
    let datum = |i: usize| {
        MetricDatum::builder()
            .metric_name("RecordsProcessed")
            .dimensions(dimension("ShardId", &format!("shardId-{i:012}")))
            .dimensions(dimension("Operation", "ProcessTask"))
            .value(i as f64)
            .unit(StandardUnit::Count)
            .build()
    };
    // 1000 data are ~60 KB of CBOR: the SDK gzips bodies over 10 KiB.
    cw.put_metric_data()
        .namespace("my-application")
        .set_metric_data(Some((0..1000).map(datum).collect()))
        .send()
        .await
        .expect("a batch of 1000");
    assert_eq!(engine.cloudwatch_series().len(), 1000);
    let error = cw
        .put_metric_data()
        .namespace("my-application")
        .set_metric_data(Some((0..1001).map(datum).collect()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(error, PutMetricDataError::InvalidParameterValueException(_)),
        "{error:?}"
    );
    assert_eq!(engine.cloudwatch_series().len(), 1000);
    engine.shutdown().await;
}

#[tokio::test]
async fn invalid_input_gets_the_typed_cloudwatch_errors() {
    let engine = engine().await;
    let cw = client(&engine);
    let value = |v: f64| MetricDatum::builder().metric_name("m").value(v).build();
    let put = |namespace: Option<&str>, data: Vec<MetricDatum>| {
        cw.put_metric_data()
            .set_namespace(namespace.map(str::to_owned))
            .set_metric_data(Some(data))
            .send()
    };
    let check = |result: Result<_, aws_sdk_cloudwatch::error::SdkError<PutMetricDataError, _>>,
                 expected: &str| {
        let error = result.unwrap_err().into_service_error();
        let name = match &error {
            PutMetricDataError::InvalidParameterValueException(_) => "InvalidParameterValue",
            PutMetricDataError::MissingRequiredParameterException(_) => "MissingParameter",
            PutMetricDataError::InvalidParameterCombinationException(_) => {
                "InvalidParameterCombination"
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(name, expected, "{error:?}");
        assert!(
            aws_sdk_cloudwatch::error::ProvideErrorMetadata::message(&error)
                .is_some_and(|m| !m.is_empty())
        );
    };
    check(put(None, vec![value(1.0)]).await, "MissingParameter");
    check(put(Some("ns"), vec![]).await, "MissingParameter");
    check(
        put(Some("AWS/Kinesis"), vec![value(1.0)]).await,
        "InvalidParameterValue",
    );
    check(
        put(Some(""), vec![value(1.0)]).await,
        "InvalidParameterValue",
    );
    let dims = (0..31).map(|i| dimension(&format!("d{i}"), "v")).collect();
    let too_many = MetricDatum::builder()
        .metric_name("m")
        .set_dimensions(Some(dims))
        .value(1.0)
        .build();
    check(
        put(Some("ns"), vec![too_many]).await,
        "InvalidParameterValue",
    );
    let both = MetricDatum::builder()
        .metric_name("m")
        .value(1.0)
        .statistic_values(
            StatisticSet::builder()
                .sample_count(1.0)
                .sum(1.0)
                .minimum(1.0)
                .maximum(1.0)
                .build(),
        )
        .build();
    check(
        put(Some("ns"), vec![both]).await,
        "InvalidParameterCombination",
    );
    let neither = MetricDatum::builder().metric_name("m").build();
    check(
        put(Some("ns"), vec![neither]).await,
        "InvalidParameterCombination",
    );
    let partial = MetricDatum::builder()
        .metric_name("m")
        .statistic_values(
            StatisticSet::builder()
                .sample_count(1.0)
                .sum(1.0)
                .minimum(1.0)
                .build(),
        )
        .build();
    check(put(Some("ns"), vec![partial]).await, "MissingParameter");
    let mismatched = MetricDatum::builder()
        .metric_name("m")
        .values(1.0)
        .values(2.0)
        .counts(1.0)
        .build();
    check(
        put(Some("ns"), vec![mismatched]).await,
        "InvalidParameterValue",
    );
    let unit = MetricDatum::builder()
        .metric_name("m")
        .value(1.0)
        .unit(StandardUnit::from("Parsecs"))
        .build();
    check(put(Some("ns"), vec![unit]).await, "InvalidParameterValue");
    let old = MetricDatum::builder()
        .metric_name("m")
        .value(1.0)
        .timestamp(DateTime::from(
            SystemTime::now() - Duration::from_secs(15 * 86_400),
        ))
        .build();
    check(put(Some("ns"), vec![old]).await, "InvalidParameterValue");
    let resolution = MetricDatum::builder()
        .metric_name("m")
        .value(1.0)
        .storage_resolution(5)
        .build();
    check(
        put(Some("ns"), vec![resolution]).await,
        "InvalidParameterValue",
    );
    let no_name = MetricDatum::builder().value(1.0).build();
    check(put(Some("ns"), vec![no_name]).await, "MissingParameter");
    // One bad datum rejects the whole request.
    check(
        put(Some("ns"), vec![value(1.0), MetricDatum::builder().build()]).await,
        "MissingParameter",
    );
    assert!(engine.cloudwatch_series().is_empty());
    engine.shutdown().await;
}

#[tokio::test]
async fn signatures_are_verified_for_the_monitoring_service_and_rules_apply() {
    let credentials = EngineCredentials::single("AKIDADMIN", "admin-secret").key(
        AccessKey::new("AKIDKINESIS", "kinesis-secret").rule(Rule::allow(["kinesis:*"], ["*"])),
    );
    let engine = Engine::builder()
        .credentials(credentials)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let put = |cw: Client| async move {
        cw.put_metric_data()
            .namespace("ns")
            .metric_data(MetricDatum::builder().metric_name("m").value(1.0).build())
            .send()
            .await
    };
    put(client_with(&engine, "AKIDADMIN", "admin-secret"))
        .await
        .expect("signed right");
    let wrong = put(client_with(&engine, "AKIDADMIN", "wrong"))
        .await
        .unwrap_err();
    let code = aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&wrong.into_service_error())
        .map(str::to_owned);
    assert_eq!(code.as_deref(), Some("SignatureDoesNotMatch"));
    let denied = put(client_with(&engine, "AKIDKINESIS", "kinesis-secret"))
        .await
        .unwrap_err();
    let code = aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&denied.into_service_error())
        .map(str::to_owned);
    assert_eq!(code.as_deref(), Some("AccessDenied"));
    assert_eq!(engine.cloudwatch_series().len(), 1);
    engine.shutdown().await;
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

#[tokio::test]
async fn aws_query_forms_put_data_and_get_xml_errors() {
    let engine = engine().await;
    let stamp = "2026-01-01T00:00:00Z";
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A timestamp of now, as ISO 8601 (botocore's `%Y-%m-%dT%H:%M:%SZ`).
    let iso = {
        let days = now / 86_400;
        let (y, m, d) = civil(days as i64);
        let s = now % 86_400;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}%3A{:02}%3A{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    };
    let form = format!(
        "Action=PutMetricData&Version=2010-08-01&Namespace=kcl-app\
         &MetricData.member.1.MetricName=MillisBehindLatest\
         &MetricData.member.1.Dimensions.member.1.Name=ShardId\
         &MetricData.member.1.Dimensions.member.1.Value=shardId-000000000000\
         &MetricData.member.1.Dimensions.member.2.Name=Operation\
         &MetricData.member.1.Dimensions.member.2.Value=ProcessTask\
         &MetricData.member.1.Timestamp={iso}\
         &MetricData.member.1.Unit=Milliseconds\
         &MetricData.member.1.StatisticValues.SampleCount=2.0\
         &MetricData.member.1.StatisticValues.Sum=300.0\
         &MetricData.member.1.StatisticValues.Minimum=100.0\
         &MetricData.member.1.StatisticValues.Maximum=200.0\
         &MetricData.member.2.MetricName=Success&MetricData.member.2.Value=1"
    );
    let (status, body) = post_form(&engine, &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(
            "<PutMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">"
        ),
        "{body}"
    );
    assert!(body.contains("<RequestId>"), "{body}");
    let all = engine.cloudwatch_series();
    let behind = series(&all, "MillisBehindLatest");
    assert_eq!(behind.namespace, "kcl-app");
    assert_eq!(behind.dimension("Operation"), Some("ProcessTask"));
    assert_eq!(behind.total.sum, 300.0);
    assert_eq!(behind.latest_timestamp_ms, now as i64 * 1000);
    assert_eq!(series(&all, "Success").total.sum, 1.0);

    let (status, body) = post_form(
        &engine,
        &format!("Action=PutMetricData&Version=2010-08-01&Namespace=kcl-app&MetricData.member.1.MetricName=m&MetricData.member.1.Value=1&MetricData.member.1.Timestamp={stamp}x"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.starts_with("<ErrorResponse"), "{body}");
    assert!(
        body.contains("<Type>Sender</Type><Code>InvalidParameterValue</Code>"),
        "{body}"
    );
    let (status, body) = post_form(&engine, "Action=PutMetricData&Version=2010-08-01&MetricData.member.1.MetricName=m&MetricData.member.1.Value=1").await;
    assert_eq!(status, 400);
    assert!(
        body.contains(
            "<Code>MissingParameter</Code><Message>The parameter Namespace is required.</Message>"
        ),
        "{body}"
    );
    let (status, body) = post_form(&engine, "Action=DeleteAlarms&Version=2010-08-01").await;
    assert_eq!(status, 400);
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    let (status, body) = post_form(
        &engine,
        "Action=ListMetrics&Version=2010-08-01&Namespace=kcl-app&MetricName=Success",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("<ListMetricsResult><Metrics><member><Namespace>kcl-app</Namespace><MetricName>Success</MetricName><Dimensions></Dimensions></member></Metrics></ListMetricsResult>"), "{body}");
    engine.shutdown().await;
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

#[tokio::test]
async fn botocore_cbor_with_whole_second_timestamps_and_json_are_understood() {
    let engine = engine().await;
    let now_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // botocore's RPC v2 CBOR: tag 1 + an *integer* of epoch seconds when there is no fraction.
    let mut body = minicbor::Encoder::new(Vec::new());
    body.map(2)
        .unwrap()
        .str("Namespace")
        .unwrap()
        .str("cbor-app")
        .unwrap();
    body.str("MetricData")
        .unwrap()
        .array(1)
        .unwrap()
        .map(3)
        .unwrap();
    body.str("MetricName").unwrap().str("Whole").unwrap();
    body.str("Timestamp")
        .unwrap()
        .tag(minicbor::data::Tag::new(1))
        .unwrap()
        .u64(now_s)
        .unwrap();
    body.str("Value").unwrap().f64(3.0).unwrap();
    let path = "/service/GraniteServiceVersion20100801/operation/PutMetricData";
    let cbor_headers = "smithy-protocol: rpc-v2-cbor\r\nContent-Type: application/cbor\r\nAccept: application/cbor\r\n";
    let (status, head, _) = post_raw(&engine, path, cbor_headers, &body.into_writer()).await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("smithy-protocol: rpc-v2-cbor"), "{head}");
    let all = engine.cloudwatch_series();
    assert_eq!(
        series(&all, "Whole").latest_timestamp_ms,
        now_s as i64 * 1000
    );

    // An unknown operation over CBOR: the CBOR error shape.
    let (status, head, body) = post_raw(
        &engine,
        "/service/GraniteServiceVersion20100801/operation/DeleteAlarms",
        cbor_headers,
        &[0xa0],
    )
    .await;
    assert_eq!(status, 400, "{head}");
    let mut decoder = minicbor::Decoder::new(&body);
    assert_eq!(decoder.map().unwrap(), Some(2));
    assert_eq!(decoder.str().unwrap(), "__type");
    assert_eq!(
        decoder.str().unwrap(),
        "com.amazonaws.cloudwatch#UnknownOperationException"
    );

    // awsJson1.0, which botocore 1.44 picks for CloudWatch: epoch seconds as JSON numbers.
    let json_headers = "X-Amz-Target: GraniteServiceVersion20100801.PutMetricData\r\n\
                        Content-Type: application/x-amz-json-1.0\r\n";
    let body = serde_json::json!({
        "Namespace": "json-app",
        "MetricData": [{"MetricName": "Json", "Timestamp": now_s as f64 + 0.25, "Values": [1.0, 5.0]}]
    });
    let (status, head, _) = post_raw(&engine, "/", json_headers, body.to_string().as_bytes()).await;
    assert_eq!(status, 200, "{head}");
    let all = engine.cloudwatch_series();
    let json = series(&all, "Json");
    assert_eq!(json.latest_timestamp_ms, now_s as i64 * 1000 + 250);
    assert_eq!((json.total.sample_count, json.total.sum), (2.0, 6.0));
    let bad = serde_json::json!({"Namespace": "json-app", "MetricData": [{"MetricName": "m", "Value": 1, "Unit": "Parsecs"}]});
    let (status, head, body) =
        post_raw(&engine, "/", json_headers, bad.to_string().as_bytes()).await;
    assert_eq!(status, 400);
    assert!(
        head.contains("x-amzn-query-error: invalidparametervalue;sender"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["__type"],
        "com.amazonaws.cloudwatch#InvalidParameterValueException"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn points_are_kept_an_hour_on_the_engine_clock_and_bounded_per_series() {
    let clock = std::sync::Arc::new(core_engine::ManualClock::new(1_750_000_000_000));
    let engine = Engine::builder()
        .clock(clock.clone())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let cw = client(&engine);
    let point = |metric: &str| {
        MetricDatum::builder()
            .metric_name(metric)
            .value(1.0)
            .build()
    };
    // Points without a timestamp are stamped with the engine clock.
    cw.put_metric_data()
        .namespace("ns")
        .metric_data(point("Old"))
        .send()
        .await
        .unwrap();
    clock.advance(30 * 60_000);
    cw.put_metric_data()
        .namespace("ns")
        .metric_data(point("New"))
        .send()
        .await
        .unwrap();
    let all = engine.cloudwatch_series();
    assert_eq!(series(&all, "Old").latest_timestamp_ms, 1_750_000_000_000);
    assert_eq!(all.len(), 2);
    clock.advance(31 * 60_000);
    let all = engine.cloudwatch_series();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].metric_name, "New");

    // One series keeps its latest 1000 points.
    for _ in 0..2 {
        cw.put_metric_data()
            .namespace("ns")
            .set_metric_data(Some(vec![point("Busy"); 600]))
            .send()
            .await
            .unwrap();
    }
    let all = engine.cloudwatch_series();
    let busy = series(&all, "Busy");
    assert_eq!(busy.points, core_engine::cloudwatch::MAX_POINTS_PER_SERIES);
    assert_eq!(busy.total.sample_count, 1000.0);
    engine.shutdown().await;
}

#[tokio::test]
async fn get_metric_statistics_aggregates_the_kept_points_per_period() {
    use aws_sdk_cloudwatch::operation::get_metric_statistics::GetMetricStatisticsError;
    use aws_sdk_cloudwatch::types::Statistic;
    let engine = engine().await;
    let cw = client(&engine);
    let now_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t0 = now_s - 600;
    let at = |s: i64| DateTime::from_secs(s);
    let shard = || dimension("ShardId", "shardId-000000000001");
    cw.put_metric_data()
        .namespace("KinesisProducerLibrary")
        .metric_data(
            MetricDatum::builder()
                .metric_name("UserRecordsPut")
                .dimensions(shard())
                .timestamp(at(t0 + 5))
                .unit(StandardUnit::Count)
                .statistic_values(
                    StatisticSet::builder()
                        .sample_count(4.0)
                        .sum(40.0)
                        .minimum(5.0)
                        .maximum(15.0)
                        .build(),
                )
                .build(),
        )
        .metric_data(
            MetricDatum::builder()
                .metric_name("UserRecordsPut")
                .dimensions(shard())
                .timestamp(at(t0 + 70))
                .unit(StandardUnit::Count)
                .value(1.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let get = |period: i32| {
        cw.get_metric_statistics()
            .namespace("KinesisProducerLibrary")
            .metric_name("UserRecordsPut")
            .dimensions(shard())
            .start_time(at(t0))
            .end_time(at(t0 + 120))
            .period(period)
            .statistics(Statistic::Sum)
            .statistics(Statistic::Average)
            .statistics(Statistic::SampleCount)
            .statistics(Statistic::Maximum)
            .send()
    };
    let out = get(60).await.unwrap();
    assert_eq!(out.label(), Some("UserRecordsPut"));
    let mut points = out.datapoints().to_vec();
    points.sort_by_key(|p| p.timestamp().map(|t| t.secs()));
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!(points[0].timestamp(), Some(&at(t0)));
    assert_eq!(
        (
            points[0].sum(),
            points[0].average(),
            points[0].sample_count()
        ),
        (Some(40.0), Some(10.0), Some(4.0))
    );
    assert_eq!(
        (points[0].maximum(), points[0].minimum()),
        (Some(15.0), None)
    );
    assert_eq!(points[0].unit(), Some(&StandardUnit::Count));
    assert_eq!(points[1].timestamp(), Some(&at(t0 + 60)));
    assert_eq!(points[1].sum(), Some(1.0));
    let merged = get(120).await.unwrap();
    assert_eq!(merged.datapoints().len(), 1);
    assert_eq!(merged.datapoints()[0].sum(), Some(41.0));
    assert_eq!(merged.datapoints()[0].sample_count(), Some(5.0));

    let error = get(7).await.unwrap_err().into_service_error();
    assert!(
        matches!(
            error,
            GetMetricStatisticsError::InvalidParameterValueException(_)
        ),
        "{error:?}"
    );
    let error = cw
        .get_metric_statistics()
        .namespace("KinesisProducerLibrary")
        .metric_name("UserRecordsPut")
        .start_time(at(t0))
        .end_time(at(t0 + 120))
        .period(60)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(
            error,
            GetMetricStatisticsError::InvalidParameterCombinationException(_)
        ),
        "{error:?}"
    );
    // Another dimension set is another series: nothing there.
    let other = cw
        .get_metric_statistics()
        .namespace("KinesisProducerLibrary")
        .metric_name("UserRecordsPut")
        .start_time(at(t0))
        .end_time(at(t0 + 120))
        .period(60)
        .statistics(Statistic::Sum)
        .send()
        .await
        .unwrap();
    assert!(other.datapoints().is_empty());

    // awsQuery: the same datapoints in XML, timestamps in ISO 8601.
    let form = format!(
        "Action=GetMetricStatistics&Version=2010-08-01&Namespace=KinesisProducerLibrary\
         &MetricName=UserRecordsPut&Dimensions.member.1.Name=ShardId\
         &Dimensions.member.1.Value=shardId-000000000001&StartTime={}&EndTime={}&Period=120\
         &Statistics.member.1=Sum",
        t0,
        t0 + 120
    );
    let (status, body) = post_form(&engine, &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<GetMetricStatisticsResult><Label>UserRecordsPut</Label><Datapoints><member><Timestamp>"), "{body}");
    assert!(
        body.contains("</Timestamp><Sum>41</Sum><Unit>Count</Unit></member></Datapoints>"),
        "{body}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn botocore_cbor_get_metric_statistics_with_whole_second_times() {
    let engine = engine().await;
    let now_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    client(&engine)
        .put_metric_data()
        .namespace("ns")
        .metric_data(
            MetricDatum::builder()
                .metric_name("M")
                .value(2.0)
                .timestamp(DateTime::from_secs(now_s as i64))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut body = minicbor::Encoder::new(Vec::new());
    body.map(6).unwrap();
    body.str("Namespace").unwrap().str("ns").unwrap();
    body.str("MetricName").unwrap().str("M").unwrap();
    let tag = minicbor::data::Tag::new(1);
    body.str("StartTime")
        .unwrap()
        .tag(tag)
        .unwrap()
        .u64(now_s - 60)
        .unwrap();
    body.str("EndTime")
        .unwrap()
        .tag(tag)
        .unwrap()
        .u64(now_s + 60)
        .unwrap();
    body.str("Period").unwrap().u32(60).unwrap();
    body.str("Statistics")
        .unwrap()
        .array(1)
        .unwrap()
        .str("Sum")
        .unwrap();
    let (status, head, body) = post_raw(
        &engine,
        "/service/GraniteServiceVersion20100801/operation/GetMetricStatistics",
        "smithy-protocol: rpc-v2-cbor\r\nContent-Type: application/cbor\r\nAccept: application/cbor\r\n",
        &body.into_writer(),
    )
    .await;
    assert_eq!(status, 200, "{head}");
    // {"Label": "M", "Datapoints": [{"Timestamp": tag 1 seconds, "Sum": 2.0, "Unit": "None"}]}
    let mut decoder = minicbor::Decoder::new(&body);
    assert_eq!(decoder.map().unwrap(), Some(2));
    let mut datapoints = None;
    for _ in 0..2 {
        match decoder.str().unwrap() {
            "Datapoints" => datapoints = decoder.array().unwrap(),
            _ => decoder.skip().unwrap(),
        }
        if datapoints.is_some() {
            break;
        }
    }
    assert_eq!(datapoints, Some(1));
    engine.shutdown().await;
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

#[tokio::test]
async fn kept_series_show_in_the_engines_metrics_and_page() {
    let engine = engine().await;
    let (_, before) = get(&engine, "/metrics").await;
    assert!(!before.contains("shardline_cloudwatch_"), "{before}");
    client(&engine)
        .put_metric_data()
        .namespace("billing")
        .metric_data(
            MetricDatum::builder()
                .metric_name("RecordsProcessed")
                .dimensions(dimension("Operation", "ProcessTask"))
                .dimensions(dimension("ShardId", "shardId-000000000003"))
                .unit(StandardUnit::Count)
                .values(4.0)
                .values(6.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (status, metrics) = get(&engine, "/metrics").await;
    assert_eq!(status, 200);
    let labels = "namespace=\"billing\",metric_name=\"RecordsProcessed\",unit=\"Count\",\
                  Operation=\"ProcessTask\",ShardId=\"shardId-000000000003\"";
    assert!(
        metrics.contains("# TYPE shardline_cloudwatch_sum gauge\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("shardline_cloudwatch_sum{{{labels}}} 10\n")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "shardline_cloudwatch_sample_count{{{labels}}} 2\n"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("shardline_cloudwatch_maximum{{{labels}}} 6\n")),
        "{metrics}"
    );

    let (status, state) = get(&engine, "/_shardline/state.json").await;
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let section = state["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["title"] == "CloudWatch metrics (last hour)")
        .unwrap_or_else(|| panic!("no CloudWatch panel in {state:#}"));
    assert_eq!(
        section["rows"][0],
        serde_json::json!([
            "billing",
            "RecordsProcessed",
            "Operation=ProcessTask, ShardId=shardId-000000000003",
            "Count",
            "1",
            "2",
            "10",
            "4",
            "6",
            "5"
        ])
    );
    let (_, page) = get(&engine, "/").await;
    assert!(
        page.contains("<h2>CloudWatch metrics (last hour)</h2>"),
        "{page}"
    );
    engine.shutdown().await;
}

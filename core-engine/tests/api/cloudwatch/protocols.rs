//! The other wire forms clients send: awsQuery forms (XML errors), botocore's RPC v2 CBOR
//! with whole-second timestamps, and awsJson1.0.

use super::*;

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

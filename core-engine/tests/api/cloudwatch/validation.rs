//! Puts through `aws-sdk-cloudwatch`: kept per series, gzip for a full batch, the model's
//! validation with CloudWatch's typed errors, and signatures for the `monitoring` service.

use super::*;

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

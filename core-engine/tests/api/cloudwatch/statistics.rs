//! What the engine keeps: an hour of points on its clock, bounded per series, and
//! GetMetricStatistics over them.

use super::*;

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

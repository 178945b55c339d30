//! GetMetricData, as Grafana's CloudWatch data source, the console and dashboards call it:
//! statistics per period over the kept points, both scan orders, MaxDatapoints/NextToken pages,
//! ReturnData, metric math, and CloudWatch's errors, through aws-sdk-cloudwatch (RPC v2 CBOR)
//! and raw awsJson1.0 and awsQuery requests. The engine runs on a manual clock, so every
//! timestamp and value is known.

use std::sync::Arc;

use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError;
use aws_sdk_cloudwatch::operation::get_metric_data::builders::GetMetricDataFluentBuilder;
use aws_sdk_cloudwatch::types::{
    Metric, MetricDataQuery, MetricDataResult, MetricStat, RecentlyActive, ScanBy, StatusCode,
};

use super::*;

/// The engine clock: a whole minute, so that periods start at known instants.
const NOW_S: i64 = 1_750_000_020;
/// The first minute of the data, ten minutes before the clock.
const BASE: i64 = NOW_S - 600;

/// An engine on a manual clock holding two series of namespace `app`, dimension `Stream=s1`:
///
/// - `Latency` (Milliseconds): 10 at BASE+5; 20 and 30 at BASE+10; a set of 2 samples
///   (sum 100, 40..60) at BASE+65; 7 at BASE+130;
/// - `Requests` (Count): 4 at BASE, 5 at BASE+60, 0 at BASE+120.
async fn loaded_engine() -> (EngineHandle, Client) {
    let clock = Arc::new(core_engine::ManualClock::new(NOW_S * 1000));
    let engine = Engine::builder()
        .clock(clock)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let cw = client(&engine);
    let datum = |name: &str, at: i64, unit: StandardUnit| {
        MetricDatum::builder()
            .metric_name(name)
            .dimensions(dimension("Stream", "s1"))
            .timestamp(DateTime::from_secs(at))
            .unit(unit)
    };
    let latency = |at: i64| datum("Latency", at, StandardUnit::Milliseconds);
    let requests = |at: i64, value: f64| datum("Requests", at, StandardUnit::Count).value(value);
    cw.put_metric_data()
        .namespace("app")
        .metric_data(latency(BASE + 5).value(10.0).build())
        .metric_data(latency(BASE + 10).values(20.0).values(30.0).build())
        .metric_data(
            latency(BASE + 65)
                .statistic_values(
                    StatisticSet::builder()
                        .sample_count(2.0)
                        .sum(100.0)
                        .minimum(40.0)
                        .maximum(60.0)
                        .build(),
                )
                .build(),
        )
        .metric_data(latency(BASE + 130).value(7.0).build())
        .metric_data(requests(BASE, 4.0).build())
        .metric_data(requests(BASE + 60, 5.0).build())
        .metric_data(requests(BASE + 120, 0.0).build())
        .send()
        .await
        .unwrap();
    (engine, cw)
}

/// A query of `metric`'s `stat` per `period` seconds.
fn stat(id: &str, metric: &str, stat: &str, period: i32) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("app")
                        .metric_name(metric)
                        .dimensions(dimension("Stream", "s1"))
                        .build(),
                )
                .period(period)
                .stat(stat)
                .build(),
        )
        .build()
}

fn expression(id: &str, text: &str) -> MetricDataQuery {
    MetricDataQuery::builder().id(id).expression(text).build()
}

/// GetMetricData over [BASE, BASE + 180).
fn get(cw: &Client) -> GetMetricDataFluentBuilder {
    cw.get_metric_data()
        .start_time(DateTime::from_secs(BASE))
        .end_time(DateTime::from_secs(BASE + 180))
}

/// A result's points as (seconds after BASE, value), in the order returned.
fn points(result: &MetricDataResult) -> Vec<(i64, f64)> {
    assert_eq!(result.timestamps().len(), result.values().len());
    result
        .timestamps()
        .iter()
        .zip(result.values())
        .map(|(t, v)| (t.secs() - BASE, *v))
        .collect()
}

fn result<'a>(results: &'a [MetricDataResult], id: &str) -> &'a MetricDataResult {
    results
        .iter()
        .find(|r| r.id() == Some(id))
        .unwrap_or_else(|| panic!("no result {id} in {results:#?}"))
}

#[tokio::test]
async fn statistics_per_period_newest_first_by_default_and_oldest_first_on_request() {
    let (engine, cw) = loaded_engine().await;
    let out = get(&cw)
        .metric_data_queries(stat("sum60", "Latency", "Sum", 60))
        .metric_data_queries(stat("avg60", "Latency", "Average", 60))
        .metric_data_queries(stat("count60", "Latency", "SampleCount", 60))
        .metric_data_queries(stat("min120", "Latency", "Minimum", 120))
        .metric_data_queries(stat("max120", "Latency", "Maximum", 120))
        .metric_data_queries(stat("sum5", "Latency", "Sum", 5))
        .metric_data_queries(
            MetricDataQuery::builder()
                .id("labelled")
                .label(
                    "${LABEL} on ${PROP('Dim.Stream')} (${PROP('Stat')}/${PROP('Period')}s) ${MAX}",
                )
                .metric_stat(
                    stat("x", "Latency", "Average", 120)
                        .metric_stat()
                        .unwrap()
                        .clone(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(out.next_token().is_none());
    assert!(out.messages().is_empty());
    let results = out.metric_data_results();
    assert_eq!(results.len(), 7);
    let ids: Vec<_> = results.iter().filter_map(|r| r.id()).collect();
    assert_eq!(
        ids,
        [
            "sum60", "avg60", "count60", "min120", "max120", "sum5", "labelled"
        ]
    );
    // Newest first (ScanBy's default, TimestampDescending).
    let sum60 = result(results, "sum60");
    assert_eq!(points(sum60), [(120, 7.0), (60, 100.0), (0, 60.0)]);
    assert_eq!(sum60.label(), Some("Latency"));
    assert_eq!(sum60.status_code(), Some(&StatusCode::Complete));
    assert_eq!(
        points(result(results, "avg60")),
        [(120, 7.0), (60, 50.0), (0, 20.0)]
    );
    assert_eq!(
        points(result(results, "count60")),
        [(120, 1.0), (60, 2.0), (0, 3.0)]
    );
    assert_eq!(points(result(results, "min120")), [(120, 7.0), (0, 10.0)]);
    assert_eq!(points(result(results, "max120")), [(120, 7.0), (0, 60.0)]);
    assert_eq!(
        points(result(results, "sum5")),
        [(130, 7.0), (65, 100.0), (10, 50.0), (5, 10.0)]
    );
    let labelled = result(results, "labelled");
    // Dynamic labels: ${LABEL} and ${PROP(...)} filled in, the others left as written.
    assert_eq!(
        labelled.label(),
        Some("Latency on s1 (Average/120s) ${MAX}")
    );
    assert_eq!(points(labelled), [(120, 7.0), (0, 32.0)]);

    // Oldest first; StartTime is rounded down to the minute (so BASE+30 starts at BASE), and
    // EndTime is exclusive (BASE+120 leaves the last minute out).
    let out = cw
        .get_metric_data()
        .start_time(DateTime::from_secs(BASE + 30))
        .end_time(DateTime::from_secs(BASE + 120))
        .scan_by(ScanBy::TimestampAscending)
        .metric_data_queries(stat("sum60", "Latency", "Sum", 60))
        .send()
        .await
        .unwrap();
    assert_eq!(
        points(&out.metric_data_results()[0]),
        [(0, 60.0), (60, 100.0)]
    );

    // A Unit that is not the series' answers nothing; another dimension set is another series.
    let mut wrong_unit = stat("wrong", "Latency", "Sum", 60);
    wrong_unit.metric_stat = wrong_unit.metric_stat.map(|mut s| {
        s.unit = Some(StandardUnit::Count);
        s
    });
    let mut other_stream = stat("other", "Latency", "Sum", 60);
    if let Some(metric) = other_stream
        .metric_stat
        .as_mut()
        .and_then(|s| s.metric.as_mut())
    {
        metric.dimensions = Some(vec![dimension("Stream", "s2")]);
    }
    let out = get(&cw)
        .metric_data_queries(wrong_unit)
        .metric_data_queries(other_stream)
        .send()
        .await
        .unwrap();
    for result in out.metric_data_results() {
        assert!(result.values().is_empty(), "{result:?}");
        assert_eq!(result.status_code(), Some(&StatusCode::Complete));
    }
    engine.shutdown().await;
}

#[tokio::test]
async fn max_datapoints_pages_through_next_token_in_scan_order() {
    let (engine, cw) = loaded_engine().await;
    let both = |builder: GetMetricDataFluentBuilder| {
        builder
            .metric_data_queries(stat("latency", "Latency", "Sum", 60))
            .metric_data_queries(stat("requests", "Requests", "Sum", 60))
    };
    // Oldest first, four values a page: both queries' first two minutes, then the rest.
    let first = both(get(&cw))
        .scan_by(ScanBy::TimestampAscending)
        .max_datapoints(4)
        .send()
        .await
        .unwrap();
    let results = first.metric_data_results();
    assert_eq!(points(result(results, "latency")), [(0, 60.0), (60, 100.0)]);
    assert_eq!(points(result(results, "requests")), [(0, 4.0), (60, 5.0)]);
    for result in results {
        assert_eq!(result.status_code(), Some(&StatusCode::PartialData));
    }
    let token = first.next_token().expect("a next token").to_owned();
    let second = both(get(&cw))
        .scan_by(ScanBy::TimestampAscending)
        .max_datapoints(4)
        .next_token(&token)
        .send()
        .await
        .unwrap();
    let results = second.metric_data_results();
    assert_eq!(points(result(results, "latency")), [(120, 7.0)]);
    assert_eq!(points(result(results, "requests")), [(120, 0.0)]);
    for result in results {
        assert_eq!(result.status_code(), Some(&StatusCode::Complete));
    }
    assert!(second.next_token().is_none());

    // The SDK's paginator, newest first, one value a page: six pages, newest first, query
    // order within a timestamp.
    let mut pages = both(get(&cw)).max_datapoints(1).into_paginator().send();
    let mut seen = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        for result in page.metric_data_results() {
            for (t, v) in points(result) {
                seen.push((t, result.id().unwrap().to_owned(), v));
            }
        }
    }
    let expected: Vec<(i64, String, f64)> = [
        (120, "latency", 7.0),
        (120, "requests", 0.0),
        (60, "latency", 100.0),
        (60, "requests", 5.0),
        (0, "latency", 60.0),
        (0, "requests", 4.0),
    ]
    .into_iter()
    .map(|(t, id, v)| (t, id.to_owned(), v))
    .collect();
    assert_eq!(seen, expected);

    // A token resumes only the request it came from.
    for bad in [
        both(get(&cw)).next_token("garbage"),
        both(get(&cw).start_time(DateTime::from_secs(BASE - 60))).next_token(&token),
    ] {
        let error = bad.send().await.unwrap_err().into_service_error();
        assert!(
            matches!(error, GetMetricDataError::InvalidNextToken(_)),
            "{error:?}"
        );
    }
    engine.shutdown().await;
}

#[tokio::test]
async fn metric_math_over_hidden_queries_and_its_clear_refusals() {
    let (engine, cw) = loaded_engine().await;
    let hidden = |query: MetricDataQuery| {
        let mut query = query;
        query.return_data = Some(false);
        query
    };
    let out = get(&cw)
        .metric_data_queries(hidden(stat("latency", "Latency", "Sum", 60)))
        .metric_data_queries(hidden(stat("requests", "Requests", "Sum", 60)))
        .metric_data_queries(
            MetricDataQuery::builder()
                .id("per_request")
                .label("latency per request")
                .expression("latency / requests")
                .build(),
        )
        .metric_data_queries(expression("doubled", "per_request * 2"))
        .metric_data_queries(expression("total", "SUM([latency, requests])"))
        .metric_data_queries(expression("peak", "MAX(METRICS())"))
        .metric_data_queries(expression("centred", "requests - AVG(requests)"))
        .send()
        .await
        .unwrap();
    let results = out.metric_data_results();
    let ids: Vec<_> = results.iter().filter_map(|r| r.id()).collect();
    assert_eq!(ids, ["per_request", "doubled", "total", "peak", "centred"]);
    // 7 / 0 at BASE+120 is not a number: left out, as CloudWatch does.
    let per_request = result(results, "per_request");
    assert_eq!(points(per_request), [(60, 20.0), (0, 15.0)]);
    assert_eq!(per_request.label(), Some("latency per request"));
    assert_eq!(per_request.status_code(), Some(&StatusCode::Complete));
    let doubled = result(results, "doubled");
    assert_eq!(points(doubled), [(60, 40.0), (0, 30.0)]);
    assert_eq!(doubled.label(), Some("doubled"));
    assert_eq!(
        points(result(results, "total")),
        [(120, 7.0), (60, 105.0), (0, 64.0)]
    );
    assert_eq!(
        points(result(results, "peak")),
        [(120, 7.0), (60, 100.0), (0, 60.0)]
    );
    assert_eq!(
        points(result(results, "centred")),
        [(120, -3.0), (60, 2.0), (0, 1.0)]
    );

    for (text, says) in [
        (
            "RATE(latency)",
            "Error in expression e: the function RATE is not supported by this engine",
        ),
        (
            "SELECT AVG(Latency) FROM app",
            "Metrics Insights queries (SELECT ...) are not supported",
        ),
        (
            "latency +",
            "Error in expression e: the expression ends too early",
        ),
        (
            "nothing * 2",
            "Unrecognized metric or expression Id nothing",
        ),
    ] {
        let error = get(&cw)
            .metric_data_queries(hidden(stat("latency", "Latency", "Sum", 60)))
            .metric_data_queries(expression("e", text))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(error.code(), Some("ValidationError"), "{text}: {error:?}");
        assert!(
            error.message().unwrap_or_default().contains(says),
            "{text}: {error:?}"
        );
    }
    // The most queries a request may carry: a chain of 499 expressions over one metric, each
    // adding one to the one before; one more query is refused.
    let chain = |length: usize| {
        let mut queries = vec![hidden(stat("e0", "Requests", "Sum", 60))];
        for k in 1..length {
            let mut query = expression(&format!("e{k}"), &format!("e{} + 1", k - 1));
            query.return_data = Some(k == length - 1);
            queries.push(query);
        }
        get(&cw).set_metric_data_queries(Some(queries))
    };
    let out = chain(500).send().await.unwrap();
    let last = &out.metric_data_results()[0];
    assert_eq!(last.id(), Some("e499"));
    assert_eq!(points(last), [(120, 499.0), (60, 504.0), (0, 503.0)]);
    let error = chain(501).send().await.unwrap_err().into_service_error();
    assert_eq!(
        error.message(),
        Some("The collection MetricDataQueries must not have a size greater than 500."),
        "{error:?}"
    );

    // Expressions referring to each other in a circle.
    let error = get(&cw)
        .metric_data_queries(expression("a", "b + 1"))
        .metric_data_queries(expression("b", "a * 2"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("ValidationError"));
    assert!(
        error.message().unwrap().contains("refers to itself"),
        "{error:?}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn bad_queries_are_refused_together_as_cloudwatch_refuses_them() {
    let (engine, cw) = loaded_engine().await;
    let both = MetricDataQuery::builder()
        .id("both")
        .expression("m1")
        .metric_stat(
            stat("x", "Latency", "Sum", 60)
                .metric_stat()
                .unwrap()
                .clone(),
        )
        .build();
    let error = get(&cw)
        .metric_data_queries(stat("m1", "Latency", "Sum", 60))
        .metric_data_queries(stat("Upper", "Latency", "Sum", 60))
        .metric_data_queries(stat("pct", "Latency", "p99", 60))
        .metric_data_queries(stat("short", "Latency", "Min", 60))
        .metric_data_queries(stat("odd", "Latency", "Sum", 7))
        .metric_data_queries(stat("m1", "Requests", "Sum", 60))
        .metric_data_queries(both)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("ValidationError"), "{error:?}");
    let message = error.message().unwrap();
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(
        lines,
        [
            "The value Upper for parameter MetricDataQueries.member.2.Id is not matching the \
             expected pattern ^[a-z][a-zA-Z0-9_]*$.",
            "The value p99 for parameter MetricDataQueries.member.3.MetricStat.Stat is an \
             extended statistic (a percentile or trimmed statistic), which this engine cannot \
             answer: it keeps statistic sets (SampleCount, Sum, Minimum, Maximum), not the \
             values; use one of SampleCount, Average, Sum, Minimum, Maximum.",
            "The value Min for parameter MetricDataQueries.member.4.MetricStat.Stat is not a \
             valid statistic.",
            "The value 7 for parameter MetricDataQueries.member.5.MetricStat.Period is not \
             valid: it must be 1, 5, 10, 20, 30 or a multiple of 60.",
            "Exactly one of MetricDataQueries.member.7.MetricStat and \
             MetricDataQueries.member.7.Expression must be specified.",
            "The value m1 for parameter MetricDataQueries.member.6.Id is not unique: each query \
             needs its own Id.",
        ],
        "{message}"
    );

    // Time range, scan order and page size.
    for (request, says) in [
        (
            get(&cw).end_time(DateTime::from_secs(BASE)),
            "The parameter StartTime must be less than the parameter EndTime.",
        ),
        (
            get(&cw).scan_by(ScanBy::from("Sideways")),
            "The value Sideways for parameter ScanBy is not valid",
        ),
        (
            get(&cw).max_datapoints(0),
            "The value 0 for parameter MaxDatapoints is not valid",
        ),
    ] {
        let error = request
            .metric_data_queries(stat("m1", "Latency", "Sum", 60))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(error.code(), Some("ValidationError"), "{error:?}");
        assert!(error.message().unwrap().contains(says), "{error:?}");
    }
    // No queries at all.
    let error = get(&cw).send().await.unwrap_err().into_service_error();
    assert_eq!(error.code(), Some("MissingParameter"), "{error:?}");
    assert_eq!(
        error.message(),
        Some("The parameter MetricDataQueries is required.")
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn get_metric_data_over_aws_json_and_aws_query() {
    let (engine, _cw) = loaded_engine().await;
    let json_headers = "X-Amz-Target: GraniteServiceVersion20100801.GetMetricData\r\n\
                        Content-Type: application/x-amz-json-1.0\r\n";
    let body = serde_json::json!({
        "MetricDataQueries": [{
            "Id": "requests",
            "MetricStat": {
                "Metric": {"Namespace": "app", "MetricName": "Requests",
                           "Dimensions": [{"Name": "Stream", "Value": "s1"}]},
                "Period": 120,
                "Stat": "Sum"
            }
        }],
        "StartTime": BASE,
        "EndTime": BASE + 180,
        "ScanBy": "TimestampAscending"
    });
    let (status, head, reply) =
        post_raw(&engine, "/", json_headers, body.to_string().as_bytes()).await;
    assert_eq!(status, 200, "{head}");
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(
        reply,
        serde_json::json!({
            "MetricDataResults": [{
                "Id": "requests", "Label": "Requests",
                "Timestamps": [BASE as f64, (BASE + 120) as f64],
                "Values": [9.0, 0.0],
                "StatusCode": "Complete", "Messages": []
            }],
            "Messages": []
        })
    );
    let (status, head, reply) = post_raw(
        &engine,
        "/",
        json_headers,
        br#"{"MetricDataQueries": [{"Id": "m1", "Expression": "1"}], "EndTime": 1}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        head.contains("x-amzn-query-error: missingparameter;sender"),
        "{head}"
    );
    assert!(
        String::from_utf8_lossy(&reply).contains("The parameter StartTime is required."),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    // awsQuery: a form in, XML out, ISO 8601 timestamps.
    let form = format!(
        "Action=GetMetricData&Version=2010-08-01\
         &MetricDataQueries.member.1.Id=latency&MetricDataQueries.member.1.ReturnData=false\
         &MetricDataQueries.member.1.MetricStat.Metric.Namespace=app\
         &MetricDataQueries.member.1.MetricStat.Metric.MetricName=Latency\
         &MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=Stream\
         &MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value=s1\
         &MetricDataQueries.member.1.MetricStat.Period=60\
         &MetricDataQueries.member.1.MetricStat.Stat=Maximum\
         &MetricDataQueries.member.2.Id=half&MetricDataQueries.member.2.Expression=latency+%2F+2\
         &StartTime={}&EndTime={}&MaxDatapoints=2",
        BASE,
        BASE + 180
    );
    let (status, body) = post_form(&engine, &form).await;
    assert_eq!(status, 200, "{body}");
    let stamp = |offset: i64| {
        let seconds = BASE + offset;
        let (y, m, d) = civil(seconds.div_euclid(86_400));
        let s = seconds.rem_euclid(86_400);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    };
    let expected = format!(
        "<GetMetricDataResult><MetricDataResults><member><Id>half</Id><Label>half</Label>\
         <Timestamps><member>{}</member><member>{}</member></Timestamps>\
         <Values><member>3.5</member><member>30</member></Values>\
         <StatusCode>PartialData</StatusCode><Messages></Messages></member></MetricDataResults>\
         <NextToken>",
        stamp(120),
        stamp(60)
    );
    assert!(body.contains(&expected), "{body}\nexpected {expected}");
    engine.shutdown().await;
}

#[tokio::test]
async fn list_metrics_accepts_recently_active_and_linked_accounts() {
    let (engine, cw) = loaded_engine().await;
    let out = cw
        .list_metrics()
        .namespace("app")
        .recently_active(RecentlyActive::Pt3H)
        .include_linked_accounts(true)
        .send()
        .await
        .unwrap();
    let names: Vec<_> = out
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    assert_eq!(names, ["Latency", "Requests"]);
    assert_eq!(out.owning_accounts(), ["000000000000", "000000000000"]);
    let error = cw
        .list_metrics()
        .recently_active(RecentlyActive::from("PT1H"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("InvalidParameterValue"), "{error:?}");
    let plain = cw.list_metrics().namespace("app").send().await.unwrap();
    assert!(plain.owning_accounts().is_empty());
    engine.shutdown().await;
}

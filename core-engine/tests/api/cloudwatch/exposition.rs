//! The kept series in the engine's `/metrics` and on its page.

use super::*;

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

//! Injected DynamoDB faults, as the SDK sees them: throttling, internal errors, latency, dropped
//! connections, and writes applied whose answer is dropped. Set through the builder, the running
//! handle and the admin endpoint.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, PutRequest, TransactWriteItem, WriteRequest};
use core_engine::{Engine, Fault, FaultRule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Ddb, Item, code_of, item, n, s};

/// The HTTP status of a failed call's answer.
fn status_of<T: std::fmt::Debug, E: std::fmt::Debug>(
    result: &Result<T, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> u16 {
    match result {
        Err(error) => error
            .raw_response()
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|| panic!("the call got no answer: {error:?}")),
        Ok(output) => panic!("the call should fail, got {output:?}"),
    }
}

/// Asserts that a call got no answer at all (the connection was closed), not an AWS error.
fn assert_no_answer<T: std::fmt::Debug, E: std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<T, SdkError<E, R>>,
) {
    let error = result.expect_err("the connection was dropped");
    assert!(
        matches!(
            error,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "a dropped connection is not an AWS error: {error:?}"
    );
}

fn key(pk: &str) -> Item {
    item(&[("pk", s(pk))])
}

#[tokio::test]
async fn throttling_is_provisioned_throughput_exceeded_on_the_named_table_only() {
    let ddb = Ddb::with(
        Engine::builder().fault(FaultRule::dynamodb("PutItem", Fault::Throttle).on_table("hot")),
    )
    .await;
    ddb.table("hot", None).await;
    ddb.table("cold", None).await;
    let put = |table: &'static str| {
        ddb.client
            .put_item()
            .table_name(table)
            .set_item(Some(item(&[("pk", s("a")), ("v", n("1"))])))
            .send()
    };
    let result = put("hot").await;
    assert_eq!(status_of(&result), 400);
    let error = result.unwrap_err().into_service_error();
    assert!(
        matches!(
            error,
            PutItemError::ProvisionedThroughputExceededException(_)
        ),
        "{error:?}"
    );
    assert!(
        ddb.get("hot", key("a")).await.is_none(),
        "nothing was written"
    );
    put("cold").await.unwrap();
    // A batch that names the table is hit as a whole.
    ddb.handle
        .faults()
        .add(FaultRule::dynamodb("BatchWriteItem", Fault::Throttle).on_table("hot"))
        .unwrap();
    let write = WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(key("b")))
                .build()
                .unwrap(),
        )
        .build();
    let (code, _) = code_of(
        ddb.client
            .batch_write_item()
            .request_items("cold", vec![write.clone()])
            .request_items("hot", vec![write])
            .send()
            .await,
    );
    assert_eq!(code, "ProvisionedThroughputExceededException");
    assert!(ddb.get("cold", key("b")).await.is_none());
}

#[tokio::test]
async fn internal_server_errors_answer_500_and_a_retrying_client_gets_through() {
    let ddb = Ddb::start().await;
    ddb.table("tab", None).await;
    ddb.put("tab", key("a")).await;
    ddb.handle
        .faults()
        .add(FaultRule::dynamodb_any(Fault::InternalFailure).times(2))
        .unwrap();
    let get = |client: &aws_sdk_dynamodb::Client| {
        client
            .get_item()
            .table_name("tab")
            .set_key(Some(key("a")))
            .send()
    };
    let result = get(&ddb.client).await;
    assert_eq!(status_of(&result), 500);
    let error = result.unwrap_err().into_service_error();
    assert!(
        matches!(error, GetItemError::InternalServerError(_)),
        "{error:?}"
    );
    // The SDK's standard retries get past the second one.
    let config = ddb
        .client
        .config()
        .to_builder()
        .retry_config(
            aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    let retrying = aws_sdk_dynamodb::Client::from_conf(config);
    let out = get(&retrying).await.unwrap();
    assert!(out.item.is_some());
    get(&ddb.client).await.unwrap();
}

#[tokio::test]
async fn latency_delays_the_answer_past_a_client_timeout() {
    let ddb = Ddb::start().await;
    ddb.table("tab", None).await;
    ddb.put("tab", key("a")).await;
    ddb.handle
        .faults()
        .add(FaultRule::dynamodb("GetItem", Fault::Latency { ms: 400 }).on_table("tab"))
        .unwrap();
    let started = Instant::now();
    assert!(ddb.get("tab", key("a")).await.is_some());
    assert!(started.elapsed() >= Duration::from_millis(400));
    let config = ddb
        .client
        .config()
        .to_builder()
        .timeout_config(
            aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(100))
                .build(),
        )
        .build();
    let impatient = aws_sdk_dynamodb::Client::from_conf(config);
    let error = impatient
        .get_item()
        .table_name("tab")
        .set_key(Some(key("a")))
        .send()
        .await
        .expect_err("the call times out");
    assert!(matches!(error, SdkError::TimeoutError(_)), "{error:?}");
    // Calls the rule does not name are not delayed: they finish within the same timeout.
    impatient.list_tables().send().await.unwrap();
}

#[tokio::test]
async fn a_dropped_connection_answers_nothing_and_applies_nothing() {
    let ddb = Ddb::start().await;
    ddb.table("tab", None).await;
    ddb.handle
        .faults()
        .add(FaultRule::dynamodb("PutItem", Fault::DropConnection).times(1))
        .unwrap();
    assert_no_answer(
        ddb.client
            .put_item()
            .table_name("tab")
            .set_item(Some(key("a")))
            .send()
            .await,
    );
    assert!(ddb.get("tab", key("a")).await.is_none());
    ddb.put("tab", key("a")).await;
}

#[tokio::test]
async fn drop_after_apply_leaves_the_write_applied_without_an_answer() {
    let ddb = Ddb::with(
        Engine::builder()
            .fault(
                FaultRule::dynamodb("PutItem", Fault::DropAfterApply)
                    .on_table("leases")
                    .times(1),
            )
            .fault(FaultRule::dynamodb("UpdateItem", Fault::DropAfterApply).times(1))
            .fault(FaultRule::dynamodb("TransactWriteItems", Fault::DropAfterApply).times(1)),
    )
    .await;
    ddb.table("leases", None).await;
    // A conditional create whose answer is lost: the retry finds its own write and fails.
    let create = || {
        ddb.client
            .put_item()
            .table_name("leases")
            .set_item(Some(item(&[("pk", s("shard-0")), ("owner", s("w1"))])))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    assert_no_answer(create().await);
    assert_eq!(
        ddb.get("leases", key("shard-0")).await.unwrap()["owner"],
        s("w1")
    );
    let (code, _) = code_of(create().await);
    assert_eq!(code, "ConditionalCheckFailedException");

    assert_no_answer(
        ddb.client
            .update_item()
            .table_name("leases")
            .set_key(Some(key("shard-0")))
            .update_expression("SET hits = :one")
            .expression_attribute_values(":one", n("1"))
            .send()
            .await,
    );
    assert_eq!(
        ddb.get("leases", key("shard-0")).await.unwrap()["hits"],
        n("1")
    );

    let put = |pk: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name("leases")
                    .set_item(Some(key(pk)))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    assert_no_answer(
        ddb.client
            .transact_write_items()
            .transact_items(put("x"))
            .transact_items(put("y"))
            .send()
            .await,
    );
    assert!(ddb.get("leases", key("x")).await.is_some());
    assert!(ddb.get("leases", key("y")).await.is_some());
}

/// Sends one request to the admin endpoint and returns the status and body.
async fn admin(ddb: &Ddb, method: &str, body: &str) -> (u16, String) {
    let mut socket = tokio::net::TcpStream::connect(ddb.handle.local_addr())
        .await
        .unwrap();
    let request = format!(
        "{method} /_shardline/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_owned())
}

#[tokio::test]
async fn the_admin_endpoint_takes_dynamodb_rules() {
    let ddb = Ddb::start().await;
    ddb.table("app", None).await;
    let (status, listed) = admin(
        &ddb,
        "POST",
        r#"{"service":"DynamoDB","operation":"UpdateItem","table":"app","fault":{"type":"InternalFailure"},"times":1}"#,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert!(listed.contains(r#""service":"DynamoDB""#), "{listed}");
    let update = || {
        ddb.client
            .update_item()
            .table_name("app")
            .set_key(Some(key("k")))
            .update_expression("SET v = :v")
            .expression_attribute_values(":v", AttributeValue::Bool(true))
            .send()
    };
    let (code, _) = code_of(update().await);
    assert_eq!(code, "InternalServerError");
    update().await.unwrap();
    for (rule, needle) in [
        (
            r#"{"service":"DynamoDB","fault":{"type":"ExpireIterator"}}"#,
            "Kinesis fault",
        ),
        (
            r#"{"service":"DynamoDB","operation":"PutItems","fault":{"type":"Throttle"}}"#,
            "unknown DynamoDB operation",
        ),
        (
            r#"{"service":"DynamoDB","stream":"s","fault":{"type":"Throttle"}}"#,
            "names a table",
        ),
    ] {
        let (status, message) = admin(&ddb, "POST", rule).await;
        assert_eq!(status, 400, "{rule}: {message}");
        assert!(message.contains(needle), "{rule}: {message}");
    }
}

//! Hostile requests: DynamoDB's expression limits and its 32 levels of nesting are answered
//! with ValidationException in DynamoDB's words, and the engine keeps serving. Before these
//! limits, the long `OR` chains below overflowed the engine's stack and killed the process.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, TransactWriteItem, WriteRequest};

use crate::common::{Ddb, Item, code_of, item, n, s};

const SIZE_EXCEEDED: &str = "Expression size has exceeded the maximum allowed size;";
const NESTING: &str = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";

async fn seeded() -> Ddb {
    let ddb = Ddb::start().await;
    ddb.table(
        "limits",
        Some(aws_sdk_dynamodb::types::ScalarAttributeType::S),
    )
    .await;
    ddb.put(
        "limits",
        item(&[("pk", s("p")), ("sk", s("a")), ("n", n("1"))]),
    )
    .await;
    ddb
}

/// `terms` copies of `term` joined by ` OR `.
fn chain(term: &str, terms: usize) -> String {
    vec![term; terms].join(" OR ")
}

/// The engine still answers reads and writes.
async fn still_serving(ddb: &Ddb) {
    ddb.put(
        "limits",
        item(&[("pk", s("p")), ("sk", s("after")), ("n", n("2"))]),
    )
    .await;
    let got = ddb
        .get("limits", item(&[("pk", s("p")), ("sk", s("after"))]))
        .await
        .expect("written after the hostile requests");
    assert_eq!(got["n"], n("2"));
}

#[tokio::test]
async fn expressions_over_4_kb_are_refused() {
    let ddb = seeded().await;
    let client = &ddb.client;
    // 4,096 bytes is allowed, one more is not.
    let condition = |len: usize| format!("attribute_not_exists({})", "z".repeat(len - 22));
    assert_eq!(condition(4096).len(), 4096);
    client
        .put_item()
        .table_name("limits")
        .set_item(Some(item(&[("pk", s("p")), ("sk", s("b"))])))
        .condition_expression(condition(4096))
        .send()
        .await
        .unwrap();
    let (code, message) = code_of(
        client
            .put_item()
            .table_name("limits")
            .set_item(Some(item(&[("pk", s("p")), ("sk", s("c"))])))
            .condition_expression(condition(4097))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        format!("Invalid ConditionExpression: {SIZE_EXCEEDED} expression size: 4097")
    );
    let (code, message) = code_of(
        client
            .get_item()
            .table_name("limits")
            .set_key(Some(item(&[("pk", s("p")), ("sk", s("a"))])))
            .projection_expression("z".repeat(4097))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        format!("Invalid ProjectionExpression: {SIZE_EXCEEDED}")
    );
    still_serving(&ddb).await;
}

#[tokio::test]
async fn long_or_chains_are_refused_and_the_engine_keeps_serving() {
    let ddb = seeded().await;
    let client = &ddb.client;
    // The issue's three requests: a 35 KB condition of 3,175 terms, a 70 KB filter and a
    // 195 KB key condition.
    let condition = chain("n = :v", 3175);
    assert!(condition.len() > 30_000);
    let (code, message) = code_of(
        client
            .put_item()
            .table_name("limits")
            .set_item(Some(item(&[("pk", s("p")), ("sk", s("x"))])))
            .condition_expression(&condition)
            .expression_attribute_values(":v", n("1"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        format!(
            "Invalid ConditionExpression: {SIZE_EXCEEDED} expression size: {}",
            condition.len()
        )
    );
    let filter = chain("n = :v", 7000);
    let (code, message) = code_of(
        client
            .scan()
            .table_name("limits")
            .filter_expression(&filter)
            .expression_attribute_values(":v", n("1"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(
        message.starts_with("Invalid FilterExpression: "),
        "{message}"
    );
    let key_condition = format!("pk = :p AND ({})", chain("sk = :s", 19_500));
    assert!(key_condition.len() > 190_000);
    let (code, message) = code_of(
        client
            .query()
            .table_name("limits")
            .key_condition_expression(&key_condition)
            .expression_attribute_values(":p", s("p"))
            .expression_attribute_values(":s", s("a"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        format!("Invalid KeyConditionExpression: {SIZE_EXCEEDED}")
    );
    // Under 4 KB, a chain is bounded by the 300 operators: 151 comparisons and 150 ORs.
    let (code, message) = code_of(
        client
            .scan()
            .table_name("limits")
            .filter_expression(chain("n=:v", 151))
            .expression_attribute_values(":v", n("1"))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "Invalid FilterExpression: The expression contains too many operators; operator count: 301"
    );
    // 150 comparisons and 149 ORs are fine, and evaluated.
    let scanned = client
        .scan()
        .table_name("limits")
        .filter_expression(chain("n=:v", 150))
        .expression_attribute_values(":v", n("1"))
        .send()
        .await
        .unwrap();
    assert_eq!(scanned.count, 1);
    still_serving(&ddb).await;
}

#[tokio::test]
async fn an_update_with_more_than_300_operators_is_refused() {
    let ddb = seeded().await;
    let update = |actions: usize| {
        let sets: Vec<String> = (0..actions).map(|i| format!("a{i}=:v+:v")).collect();
        format!("SET {}", sets.join(","))
    };
    let send = |text: String| {
        ddb.client
            .update_item()
            .table_name("limits")
            .set_key(Some(item(&[("pk", s("p")), ("sk", s("a"))])))
            .update_expression(text)
            .expression_attribute_values(":v", n("1"))
            .send()
    };
    let (code, message) = code_of(send(update(301)).await);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "Invalid UpdateExpression: The expression contains too many operators; operator count: 301"
    );
    send(update(300)).await.unwrap();
    let got = ddb
        .get("limits", item(&[("pk", s("p")), ("sk", s("a"))]))
        .await
        .unwrap();
    assert_eq!(got["a299"], n("2"));
    still_serving(&ddb).await;
}

/// A value whose deepest element is at level `levels` when it is a top-level attribute's
/// value: `levels - 1` lists around a string.
fn nested(levels: usize) -> AttributeValue {
    (1..levels).fold(s("leaf"), |inner, _| AttributeValue::L(vec![inner]))
}

fn deep_item(sk: &str, levels: usize) -> Item {
    item(&[("pk", s("p")), ("sk", s(sk)), ("deep", nested(levels))])
}

#[tokio::test]
async fn values_nested_past_32_levels_are_refused_everywhere() {
    let ddb = seeded().await;
    let client = &ddb.client;
    // 32 levels are stored and read back whole.
    ddb.put("limits", deep_item("ok", 32)).await;
    let got = ddb
        .get("limits", item(&[("pk", s("p")), ("sk", s("ok"))]))
        .await
        .unwrap();
    assert_eq!(got["deep"], nested(32));
    let key = || Some(item(&[("pk", s("p")), ("sk", s("ok"))]));
    let refusals = [
        code_of(
            client
                .put_item()
                .table_name("limits")
                .set_item(Some(deep_item("put", 33)))
                .send()
                .await,
        ),
        code_of(
            client
                .update_item()
                .table_name("limits")
                .set_key(key())
                .update_expression("SET other = :v")
                .expression_attribute_values(":v", nested(33))
                .send()
                .await,
        ),
        // Two values that pass on their own, put together past the limit.
        code_of(
            client
                .update_item()
                .table_name("limits")
                .set_key(key())
                .update_expression("SET deep[0] = :v")
                .expression_attribute_values(":v", nested(32))
                .send()
                .await,
        ),
        code_of(
            client
                .batch_write_item()
                .request_items(
                    "limits",
                    vec![
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .set_item(Some(deep_item("batch", 33)))
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    ],
                )
                .send()
                .await,
        ),
        code_of(
            client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .put(
                            aws_sdk_dynamodb::types::Put::builder()
                                .table_name("limits")
                                .set_item(Some(deep_item("transact", 33)))
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .send()
                .await,
        ),
        code_of(
            client
                .scan()
                .table_name("limits")
                .filter_expression("deep = :v")
                .expression_attribute_values(":v", nested(33))
                .send()
                .await,
        ),
    ];
    for (i, (code, message)) in refusals.into_iter().enumerate() {
        assert_eq!(code, "ValidationException", "request {i}: {message}");
        assert!(message.contains(NESTING), "request {i}: {message}");
    }
    // Nothing was written, and the stored item is unchanged.
    for sk in ["put", "batch", "transact"] {
        assert!(
            ddb.get("limits", item(&[("pk", s("p")), ("sk", s(sk))]))
                .await
                .is_none()
        );
    }
    let got = ddb.get("limits", key().unwrap()).await.unwrap();
    assert_eq!(got["deep"], nested(32));
    assert!(!got.contains_key("other"));
    still_serving(&ddb).await;
}

#[tokio::test]
async fn json_nested_thousands_deep_is_a_serialization_error() {
    let ddb = seeded().await;
    // Past what any SDK would send: straight over HTTP.
    let deep = format!(
        r#"{{"TableName":"limits","Item":{{"pk":{{"S":"p"}},"sk":{{"S":"j"}},"d":{}{{"S":"x"}}{}}}}}"#,
        r#"{"L":["#.repeat(20_000),
        "]}".repeat(20_000)
    );
    let (status, response) = raw_post(&ddb, "DynamoDB_20120810.PutItem", deep.as_bytes()).await;
    assert_eq!(status, 400, "{response}");
    assert!(response.contains("SerializationException"), "{response}");
    still_serving(&ddb).await;
}

/// Sends one HTTP/1.1 request; returns the status and the whole response as text.
async fn raw_post(ddb: &Ddb, target: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(ddb.handle.local_addr())
        .await
        .unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\nX-Amz-Target: {target}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

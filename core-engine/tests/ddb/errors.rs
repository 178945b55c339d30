//! The wire shape of errors: DynamoDB's `__type`, the error type header, and request-level
//! problems (unknown operation, malformed JSON).

use crate::common::Ddb;

async fn raw(ddb: &Ddb, target: &str, body: &str) -> (u16, String, Option<String>, String) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    let stream = tokio::net::TcpStream::connect(ddb.handle.local_addr())
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<bytes::Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post("/")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", target)
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
        .body(Full::new(bytes::Bytes::from(body.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned());
    let crc = response.headers()["x-amz-crc32"]
        .to_str()
        .unwrap()
        .parse::<u32>()
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        crc,
        crc32fast::hash(&body),
        "x-amz-crc32 must match the body"
    );
    (
        status,
        content_type,
        error_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn errors_have_dynamodb_shape_on_the_wire() {
    let ddb = Ddb::start().await;
    ddb.table("wire", None).await;
    let (status, content_type, error_type, body) = raw(
        &ddb,
        "DynamoDB_20120810.PutItem",
        r#"{"TableName":"wire","Item":{"pk":{"S":"a"}},"ConditionExpression":"attribute_exists(pk)"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(content_type, "application/x-amz-json-1.0");
    assert_eq!(
        error_type.as_deref(),
        Some("ConditionalCheckFailedException")
    );
    assert_eq!(
        body,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#
    );
    let (status, _, _, body) = raw(&ddb, "DynamoDB_20120810.DescribeTable", r#"{}"#).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null"}"#
    );
    let (status, _, error_type, _) =
        raw(&ddb, "DynamoDB_20120810.DescribeTable", r#"{"TableName":5"#).await;
    assert_eq!(
        (status, error_type.as_deref()),
        (400, Some("SerializationException"))
    );
    let (status, _, error_type, _) = raw(&ddb, "DynamoDB_20120810.CreateBackup", "{}").await;
    assert_eq!(
        (status, error_type.as_deref()),
        (400, Some("UnknownOperationException"))
    );
    let (status, _, _, body) = raw(&ddb, "DynamoDB_20120810.ListTables", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"TableNames":["wire"]}"#));
    // Hostile input never panics the server.
    let (status, _, _, _) = raw(
        &ddb,
        "DynamoDB_20120810.PutItem",
        &format!(r#"{{"TableName":"wire","Item":{{"pk":{{"S":"a"}}}},"ConditionExpression":"{}a = b{}"}}"#, "(".repeat(5000), ")".repeat(5000)),
    )
    .await;
    assert_eq!(status, 400);
}

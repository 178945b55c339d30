//! Whole requests through the engine's real dispatch path (routing, JSON and CBOR decoding,
//! every Kinesis and DynamoDB operation, encoding), against one in-memory engine that keeps its
//! state between inputs. Any panic, stack overflow or 500 answer is a bug.
//!
//! An input is one or more requests separated by [`SEPARATOR`]. A request is one selector
//! byte, which picks the operation and the wire format from [`TARGETS`], then the body. Before a
//! request is sent, `@ITER@` in its body is replaced by the last shard iterator an answer held
//! and `@TOKEN@` by the last `NextToken`, so that sequences reach past the signed tokens.

#![no_main]

use libfuzzer_sys::fuzz_target;

const SEPARATOR: &[u8] = b"\n@@\n";

const KINESIS_JSON: &str = "application/x-amz-json-1.1";
const KINESIS_CBOR: &str = "application/x-amz-cbor-1.1";
const DYNAMODB_JSON: &str = "application/x-amz-json-1.0";

const KINESIS: &[&str] = &[
    "CreateStream",
    "DeleteStream",
    "DescribeStream",
    "DescribeStreamSummary",
    "ListStreams",
    "ListShards",
    "PutRecord",
    "PutRecords",
    "GetShardIterator",
    "GetRecords",
    "IncreaseStreamRetentionPeriod",
    "DecreaseStreamRetentionPeriod",
    "AddTagsToStream",
    "RemoveTagsFromStream",
    "ListTagsForStream",
    "DescribeLimits",
    "SplitShard",
    "MergeShards",
    "UpdateShardCount",
    "UpdateStreamMode",
    "UpdateMaxRecordSize",
    "RegisterStreamConsumer",
    "DescribeStreamConsumer",
    "ListStreamConsumers",
    "DeregisterStreamConsumer",
    "SubscribeToShard",
];

const DYNAMODB: &[&str] = &[
    "CreateTable",
    "DescribeTable",
    "UpdateTable",
    "DeleteTable",
    "ListTables",
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
];

/// The target header and content type for a selector byte: each Kinesis operation in JSON,
/// then each in CBOR, then each DynamoDB operation; what is left over is an unknown target.
fn target(selector: u8) -> (String, &'static str) {
    let mut i = usize::from(selector);
    if i < KINESIS.len() {
        return (format!("Kinesis_20131202.{}", KINESIS[i]), KINESIS_JSON);
    }
    i -= KINESIS.len();
    if i < KINESIS.len() {
        return (format!("Kinesis_20131202.{}", KINESIS[i]), KINESIS_CBOR);
    }
    i -= KINESIS.len();
    if i < DYNAMODB.len() {
        return (format!("DynamoDB_20120810.{}", DYNAMODB[i]), DYNAMODB_JSON);
    }
    ("Kinesis_20131202.NoSuchOperation".to_owned(), KINESIS_JSON)
}

fn split<'a>(mut data: &'a [u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        parts.push(&data[..at]);
        data = &data[at + SEPARATOR.len()..];
    }
    parts.push(data);
    parts
}

fn replace(body: &[u8], placeholder: &[u8], value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest
        .windows(placeholder.len())
        .position(|w| w == placeholder)
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(value.as_bytes());
        rest = &rest[at + placeholder.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Remembers the iterator and token of a JSON answer.
fn remember(answer: &[u8], iterator: &mut String, token: &mut String) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return;
    };
    for key in ["ShardIterator", "NextShardIterator"] {
        if let Some(text) = value.get(key).and_then(|v| v.as_str()) {
            *iterator = text.to_owned();
        }
    }
    if let Some(text) = value.get("NextToken").and_then(|v| v.as_str()) {
        *token = text.to_owned();
    }
}

fuzz_target!(|data: &[u8]| {
    let (mut iterator, mut token) = (String::new(), String::new());
    for request in split(data).into_iter().take(16) {
        let Some((&selector, body)) = request.split_first() else {
            continue;
        };
        let (target, content_type) = target(selector);
        let body = replace(&replace(body, b"@ITER@", &iterator), b"@TOKEN@", &token);
        let answer = core_engine::__fuzz_request(&target, content_type, &body);
        remember(&answer, &mut iterator, &mut token);
    }
});

//! The resource ARNs an operation touches, for access rules: read from the request body as
//! IAM does (the stream, consumer or table it names).

use serde_json::Value;

use crate::kinesis::Kinesis;
use crate::model::iterator::ShardIterator;

/// The ARNs a Kinesis operation touches: its `ConsumerARN`, else its `StreamARN`, else the
/// stream of its `StreamName`, its `ResourceARN`, its `QueueARN`, (CreateQueue) the stream of
/// its stream configuration or (GetRecords) its shard iterator; an
/// account-wide operation such as ListStreams touches `arn:aws:kinesis:REGION:ACCOUNT:*`.
pub(crate) fn kinesis(kinesis: &Kinesis, body: &[u8]) -> Vec<String> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let resource = text("ConsumerARN")
        .or_else(|| text("StreamARN"))
        .or_else(|| text("StreamName").map(|name| kinesis.stream_arn(&name)))
        .or_else(|| text("ResourceARN"))
        .or_else(|| text("QueueARN"))
        .or_else(|| {
            // CreateQueue names its stream in its one stream configuration.
            let stream = body.pointer("/StreamConfigurationList/0/StreamARN")?;
            stream.as_str().map(str::to_owned)
        })
        .or_else(|| {
            let token = text("ShardIterator")?;
            let iterator = ShardIterator::decode(&token, &kinesis.config.token_key)?;
            Some(kinesis.stream_arn(&iterator.stream_name))
        });
    let config = &kinesis.config;
    vec![
        resource.unwrap_or_else(|| {
            format!("arn:aws:kinesis:{}:{}:*", config.region, config.account_id)
        }),
    ]
}

/// The ARNs a DynamoDB operation touches: the table of its `TableName` (a name or an ARN),
/// every table of a batch's `RequestItems` or a transaction's items, or its `ResourceArn`; an
/// account-wide operation such as ListTables touches `arn:aws:dynamodb:REGION:ACCOUNT:table/*`.
pub(crate) fn dynamodb(region: &str, account_id: &str, body: &[u8]) -> Vec<String> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let arn = |table: &str| {
        if table.starts_with("arn:") {
            table.to_owned()
        } else {
            format!("arn:aws:dynamodb:{region}:{account_id}:table/{table}")
        }
    };
    let mut out: Vec<String> = Vec::new();
    if let Some(table) = body.get("TableName").and_then(Value::as_str) {
        out.push(arn(table));
    }
    if let Some(items) = body.get("RequestItems").and_then(Value::as_object) {
        out.extend(items.keys().map(|t| arn(t)));
    }
    if let Some(items) = body.get("TransactItems").and_then(Value::as_array) {
        for item in items.iter().filter_map(Value::as_object) {
            for action in item.values() {
                if let Some(table) = action.get("TableName").and_then(Value::as_str) {
                    out.push(arn(table));
                }
            }
        }
    }
    if out.is_empty()
        && let Some(resource) = body.get("ResourceArn").and_then(Value::as_str)
    {
        out.push(resource.to_owned());
    }
    if out.is_empty() {
        out.push(format!("arn:aws:dynamodb:{region}:{account_id}:table/*"));
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_resources_cover_batches_and_transactions() {
        let arns = |body: &str| dynamodb("us-east-1", "000000000000", body.as_bytes());
        let table = |t: &str| format!("arn:aws:dynamodb:us-east-1:000000000000:table/{t}");
        assert_eq!(arns(r#"{"TableName":"leases"}"#), [table("leases")]);
        assert_eq!(
            arns(r#"{"RequestItems":{"b":[],"a":[]}}"#),
            [table("a"), table("b")]
        );
        assert_eq!(
            arns(
                r#"{"TransactItems":[{"Put":{"TableName":"x"}},{"ConditionCheck":{"TableName":"y"}}]}"#
            ),
            [table("x"), table("y")]
        );
        assert_eq!(arns("{}"), [table("*")]);
        assert_eq!(arns("not json"), [table("*")]);
    }
}

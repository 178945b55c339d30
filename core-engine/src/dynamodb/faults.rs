//! Injected faults on DynamoDB calls (the rules are in [`crate::faults`]).

use serde_json::Value;

use super::error::DdbError;
use crate::faults::{Fault, FaultInjector};

/// What the injected faults ask of one call, once any added latency has passed.
#[derive(Debug, PartialEq)]
pub(crate) enum Injected {
    /// Run the call and answer normally.
    Nothing,
    /// Answer with this error without running the call.
    Refuse(DdbError),
    /// Close the connection without running the call.
    Drop,
    /// Run the call, then close the connection without answering.
    DropAfterApply,
}

/// Draws the faults that hit `operation`, waits for any latency they add, and says what to do.
/// The first refusing fault (in rule order) wins; `DropAfterApply` only applies if none refused.
pub(crate) async fn inject(faults: &FaultInjector, operation: &str, body: &[u8]) -> Injected {
    if faults.is_empty() {
        return Injected::Nothing;
    }
    let tables = tables_named_in(body);
    let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
    let hits = faults.draw_dynamodb(operation, &tables);
    let delay: u64 = hits
        .iter()
        .map(|fault| match fault {
            Fault::Latency { ms } => *ms,
            _ => 0,
        })
        .fold(0, u64::saturating_add);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let mut injected = Injected::Nothing;
    for fault in hits {
        match fault {
            Fault::DropConnection => return Injected::Drop,
            Fault::Throttle => {
                return Injected::Refuse(DdbError::ProvisionedThroughputExceeded(
                    "The level of configured provisioned throughput for the table was exceeded. \
                     Consider increasing your provisioning level with the UpdateTable API. \
                     (injected fault)"
                        .into(),
                ));
            }
            Fault::InternalFailure => {
                return Injected::Refuse(DdbError::InternalServerError(
                    "Internal server error (injected fault)".into(),
                ));
            }
            Fault::DropAfterApply => injected = Injected::DropAfterApply,
            // Validation keeps Kinesis-only faults out of DynamoDB rules.
            _ => {}
        }
    }
    injected
}

/// The tables a request names: `TableName`, the keys of a batch's `RequestItems`, and each
/// transaction item's `TableName`. Unreadable bodies name none (the call will fail anyway).
fn tables_named_in(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut tables = Vec::new();
    if let Some(name) = value.get("TableName").and_then(Value::as_str) {
        tables.push(name.to_owned());
    }
    if let Some(items) = value.get("RequestItems").and_then(Value::as_object) {
        tables.extend(items.keys().cloned());
    }
    if let Some(items) = value.get("TransactItems").and_then(Value::as_array) {
        let named = items
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|item| item.values())
            .filter_map(|action| action.get("TableName").and_then(Value::as_str));
        tables.extend(named.map(str::to_owned));
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_found_in_every_request_shape() {
        assert_eq!(tables_named_in(br#"{"TableName":"a"}"#), ["a"]);
        assert_eq!(
            tables_named_in(br#"{"RequestItems":{"a":[],"b":[]}}"#),
            ["a", "b"]
        );
        assert_eq!(
            tables_named_in(
                br#"{"TransactItems":[{"Put":{"TableName":"a"}},{"ConditionCheck":{"TableName":"b"}}]}"#
            ),
            ["a", "b"]
        );
        assert!(tables_named_in(b"{}").is_empty());
        assert!(tables_named_in(b"not json").is_empty());
    }
}

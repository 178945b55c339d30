//! TransactWriteItems and TransactGetItems. A write transaction locks every table it touches
//! (in name order), plans every item against the current state, and either fails with one
//! cancellation reason per item or logs all changes as one frame and applies them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::DynamoDb;
use super::error::{CancellationReason, DdbError};
use super::expr::Expressions;
use super::expr::eval;
use super::items::{self, Kind, WriteInput, read_projection};
use super::tables::{table_name, validation};
use super::value::{WireItem, validate_item};
use crate::error::{missing, violation};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TransactItem {
    condition_check: Option<WriteInput>,
    put: Option<WriteInput>,
    delete: Option<WriteInput>,
    update: Option<WriteInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TransactWriteInput {
    transact_items: Option<Vec<TransactItem>>,
    client_request_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct GetSpec {
    table_name: Option<String>,
    key: Option<WireItem>,
    projection_expression: Option<String>,
    expression_attribute_names: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TransactGetItem {
    get: Option<GetSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TransactGetInput {
    transact_items: Option<Vec<TransactGetItem>>,
}

fn check_count(count: usize) -> Result<(), DdbError> {
    if count == 0 {
        return Err(validation(vec![violation(
            "[]",
            "transactItems",
            "have length greater than or equal to 1",
        )]));
    }
    if count > 100 {
        return Err(validation(vec![violation(
            format!("[{count} items]"),
            "transactItems",
            "have length less than or equal to 100",
        )]));
    }
    Ok(())
}

impl DynamoDb {
    pub(crate) fn transact_write_items(
        &self,
        input: TransactWriteInput,
    ) -> Result<Value, DdbError> {
        let requested = input
            .transact_items
            .ok_or_else(|| validation(vec![missing("transactItems")]))?;
        check_count(requested.len())?;
        if let Some(token) = &input.client_request_token
            && (token.is_empty() || token.len() > 36)
        {
            return Err(validation(vec![violation(
                token,
                "clientRequestToken",
                "have length less than or equal to 36",
            )]));
        }
        let mut writes = Vec::with_capacity(requested.len());
        for item in requested {
            let (kind, input) = match (item.condition_check, item.put, item.delete, item.update) {
                (Some(i), None, None, None) => (Kind::Check, i),
                (None, Some(i), None, None) => (Kind::Put, i),
                (None, None, Some(i), None) => (Kind::Delete, i),
                (None, None, None, Some(i)) => (Kind::Update, i),
                _ => {
                    return Err(DdbError::Validation(
                        "TransactItems can only contain one of Check, Put, Update or Delete".into(),
                    ));
                }
            };
            writes.push(items::prepare(kind, input)?);
        }
        let tables = self.tables_for(writes.iter().map(|w| w.table.clone()).collect())?;
        let mut guards: BTreeMap<&str, _> =
            tables.iter().map(|(n, t)| (n.as_str(), t.lock())).collect();
        let mut seen = BTreeSet::new();
        let mut plans = Vec::with_capacity(writes.len());
        let mut reasons = Vec::with_capacity(writes.len());
        let mut failed = false;
        for write in &writes {
            let table = guards
                .get(write.table.as_str())
                .ok_or_else(DdbError::not_found)?;
            let key = match write.kind {
                Kind::Put => table.item_key(&write.item)?,
                _ => table.key_of(&write.item)?,
            };
            if !seen.insert((write.table.clone(), key)) {
                return Err(DdbError::Validation(
                    "Transaction request cannot include multiple operations on one item".into(),
                ));
            }
            match items::plan(table, write) {
                Ok(plan) => {
                    reasons.push(CancellationReason {
                        code: "None".into(),
                        message: None,
                        item: None,
                    });
                    plans.push(Some(plan));
                }
                Err(DdbError::ConditionalCheckFailed { item }) => {
                    failed = true;
                    reasons.push(CancellationReason {
                        code: "ConditionalCheckFailed".into(),
                        message: Some("The conditional request failed".into()),
                        item,
                    });
                    plans.push(None);
                }
                Err(other) => return Err(other),
            }
        }
        if failed {
            return Err(DdbError::TransactionCanceled(reasons));
        }
        let mut entries = Vec::new();
        for (write, plan) in writes.iter().zip(&plans) {
            if let (Some(table), Some(plan)) = (guards.get(write.table.as_str()), plan) {
                entries.extend(items::log_entry(table, write, plan));
            }
        }
        if !entries.is_empty() {
            self.commit(&entries)?;
        }
        for (write, plan) in writes.iter().zip(plans) {
            if let (Some(table), Some(plan)) = (guards.get_mut(write.table.as_str()), plan) {
                items::apply(table, write, plan);
            }
        }
        Ok(json!({}))
    }

    pub(crate) fn transact_get_items(&self, input: TransactGetInput) -> Result<Value, DdbError> {
        let requested = input
            .transact_items
            .ok_or_else(|| validation(vec![missing("transactItems")]))?;
        check_count(requested.len())?;
        let mut gets = Vec::with_capacity(requested.len());
        for item in requested {
            let get = item
                .get
                .ok_or_else(|| validation(vec![missing("transactItems.member.get")]))?;
            let name = table_name(&get.table_name)?;
            let mut exprs = Expressions::new(get.expression_attribute_names, None)?;
            let projection =
                read_projection(&mut exprs, get.projection_expression.as_deref(), None)?;
            exprs.finish()?;
            let key = validate_item(get.key.ok_or_else(|| validation(vec![missing("key")]))?)?;
            gets.push((name, key, projection));
        }
        let tables = self.tables_for(gets.iter().map(|g| g.0.clone()).collect())?;
        let guards: BTreeMap<&str, _> =
            tables.iter().map(|(n, t)| (n.as_str(), t.lock())).collect();
        let mut responses = Vec::with_capacity(gets.len());
        for (name, key, projection) in &gets {
            let table = guards.get(name.as_str()).ok_or_else(DdbError::not_found)?;
            let key = table.key_of(key)?;
            responses.push(match table.get(&key) {
                Some(item) => {
                    let item = match projection {
                        Some(paths) => eval::project(item, paths),
                        None => item.clone(),
                    };
                    json!({ "Item": item })
                }
                None => json!({}),
            });
        }
        Ok(json!({ "Responses": responses }))
    }
}

//! BatchGetItem and BatchWriteItem. Every item of a batch is processed, none is ever returned as
//! unprocessed; a BatchWriteItem is logged as one frame, so it is even atomic here (DynamoDB
//! only promises per-item atomicity).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::DdbError;
use super::expr::Expressions;
use super::expr::eval;
use super::items::{self, Kind, WriteInput, read_projection};
use super::tables::{table_name, validation};
use super::value::{WireItem, validate_item};
use super::{DynamoDb, TableRef};
use crate::error::{missing, violation};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct KeysAndAttributes {
    keys: Vec<WireItem>,
    projection_expression: Option<String>,
    expression_attribute_names: Option<BTreeMap<String, String>>,
    attributes_to_get: Option<Vec<String>>,
    consistent_read: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct BatchGetInput {
    request_items: Option<BTreeMap<String, KeysAndAttributes>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct PutRequest {
    item: Option<WireItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct DeleteRequest {
    key: Option<WireItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct WriteRequest {
    put_request: Option<PutRequest>,
    delete_request: Option<DeleteRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct BatchWriteInput {
    request_items: Option<BTreeMap<String, Vec<WriteRequest>>>,
}

fn duplicates() -> DdbError {
    DdbError::Validation("Provided list of item keys contains duplicates".into())
}

impl DynamoDb {
    /// Looks up and returns the (active) tables named, sorted by name: the order in which
    /// multi-table requests lock them.
    pub(crate) fn tables_for(
        &self,
        names: BTreeSet<String>,
    ) -> Result<Vec<(String, TableRef)>, DdbError> {
        names
            .into_iter()
            .map(|name| Ok((name.clone(), self.active_table(&name)?)))
            .collect()
    }

    pub(crate) fn batch_get_item(&self, input: BatchGetInput) -> Result<Value, DdbError> {
        let request = input
            .request_items
            .ok_or_else(|| validation(vec![missing("requestItems")]))?;
        if request.is_empty() {
            return Err(validation(vec![violation(
                "{}",
                "requestItems",
                "have length greater than or equal to 1",
            )]));
        }
        let total: usize = request.values().map(|r| r.keys.len()).sum();
        if total > 100 {
            return Err(DdbError::Validation(
                "Too many items requested for the BatchGetItem call".into(),
            ));
        }
        let mut responses = serde_json::Map::new();
        for (name, wanted) in request {
            let name = table_name(&Some(name))?;
            if wanted.keys.is_empty() {
                return Err(validation(vec![violation(
                    "[]",
                    &format!("requestItems.{name}.member.keys"),
                    "have length greater than or equal to 1",
                )]));
            }
            let _ = wanted.consistent_read;
            let mut exprs = Expressions::new(wanted.expression_attribute_names, None)?;
            let projection = read_projection(
                &mut exprs,
                wanted.projection_expression.as_deref(),
                wanted.attributes_to_get.as_deref(),
            )?;
            exprs.finish()?;
            let keys = wanted
                .keys
                .into_iter()
                .map(validate_item)
                .collect::<Result<Vec<_>, _>>()?;
            let table = self.active_table(&name)?;
            let table = table.lock();
            let mut seen = BTreeSet::new();
            let mut found = Vec::new();
            for key in &keys {
                let key = table.key_of(key)?;
                if !seen.insert(key.clone()) {
                    return Err(duplicates());
                }
                if let Some(item) = table.get(&key) {
                    found.push(match &projection {
                        Some(paths) => eval::project(item, paths),
                        None => item.clone(),
                    });
                }
            }
            responses.insert(name, json!(found));
        }
        Ok(json!({ "Responses": responses, "UnprocessedKeys": {} }))
    }

    pub(crate) fn batch_write_item(&self, input: BatchWriteInput) -> Result<Value, DdbError> {
        let request = input
            .request_items
            .ok_or_else(|| validation(vec![missing("requestItems")]))?;
        if request.is_empty() {
            return Err(validation(vec![violation(
                "{}",
                "requestItems",
                "have length greater than or equal to 1",
            )]));
        }
        let total: usize = request.values().map(Vec::len).sum();
        if total > 25 {
            return Err(validation(vec![violation(
                format!("{{{} write requests}}", total),
                "requestItems",
                "have length less than or equal to 25",
            )]));
        }
        let mut writes = Vec::new();
        for (name, requests) in request {
            if requests.is_empty() {
                return Err(validation(vec![violation(
                    "[]",
                    &format!("requestItems.{name}.member"),
                    "have length greater than or equal to 1",
                )]));
            }
            for request in requests {
                let input = match (request.put_request, request.delete_request) {
                    (Some(put), None) => (
                        Kind::Put,
                        WriteInput {
                            table_name: Some(name.clone()),
                            item: put.item,
                            ..WriteInput::default()
                        },
                    ),
                    (None, Some(delete)) => (
                        Kind::Delete,
                        WriteInput {
                            table_name: Some(name.clone()),
                            key: delete.key,
                            ..WriteInput::default()
                        },
                    ),
                    _ => {
                        return Err(DdbError::Validation(
                            "A WriteRequest must contain exactly one of PutRequest or DeleteRequest".into(),
                        ));
                    }
                };
                writes.push(items::prepare(input.0, input.1)?);
            }
        }
        let tables = self.tables_for(writes.iter().map(|w| w.table.clone()).collect())?;
        let mut guards: BTreeMap<&str, _> =
            tables.iter().map(|(n, t)| (n.as_str(), t.lock())).collect();
        let mut planned = Vec::with_capacity(writes.len());
        let mut seen = BTreeSet::new();
        let mut entries = Vec::new();
        for write in &writes {
            let table = guards
                .get(write.table.as_str())
                .ok_or_else(DdbError::not_found)?;
            let plan = items::plan(table, write)?;
            if !seen.insert((write.table.clone(), plan.key.clone())) {
                return Err(duplicates());
            }
            entries.extend(items::log_entry(table, write, &plan));
            planned.push(plan);
        }
        if !entries.is_empty() {
            self.commit(&entries)?;
        }
        for (write, plan) in writes.iter().zip(planned) {
            if let Some(table) = guards.get_mut(write.table.as_str()) {
                items::apply(table, write, plan);
            }
        }
        Ok(json!({ "UnprocessedItems": {} }))
    }
}

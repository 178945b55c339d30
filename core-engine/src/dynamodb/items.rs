//! GetItem, PutItem, UpdateItem and DeleteItem, and the conditional-write machinery that
//! transactions and batches share: a request is first *prepared* (validated, expressions
//! parsed, no table needed), then *planned* against the locked table (key checked, condition
//! evaluated, new item computed), then logged and applied.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::DynamoDb;
use super::error::DdbError;
use super::expr::Expressions;
use super::expr::ast::{Condition, Path, UpdateAction};
use super::expr::{eval, update};
use super::legacy::{self, AttributeUpdateWire, ExpectedWire};
use super::store::LogEntry;
use super::table::{PrimaryKey, Table};
use super::tables::{table_name, validation};
use super::value::{Item, WireItem, validate_item};
use crate::error::violation;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct GetItemInput {
    pub(crate) table_name: Option<String>,
    pub(crate) key: Option<WireItem>,
    pub(crate) consistent_read: Option<bool>,
    pub(crate) projection_expression: Option<String>,
    pub(crate) expression_attribute_names: Option<BTreeMap<String, String>>,
    pub(crate) attributes_to_get: Option<Vec<String>>,
}

/// The members of PutItem, UpdateItem, DeleteItem and of transaction items.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct WriteInput {
    pub(crate) table_name: Option<String>,
    pub(crate) key: Option<WireItem>,
    pub(crate) item: Option<WireItem>,
    pub(crate) condition_expression: Option<String>,
    pub(crate) update_expression: Option<String>,
    pub(crate) expression_attribute_names: Option<BTreeMap<String, String>>,
    pub(crate) expression_attribute_values: Option<WireItem>,
    pub(crate) expected: Option<BTreeMap<String, ExpectedWire>>,
    pub(crate) conditional_operator: Option<String>,
    pub(crate) attribute_updates: Option<BTreeMap<String, AttributeUpdateWire>>,
    pub(crate) return_values: Option<String>,
    pub(crate) return_values_on_condition_check_failure: Option<String>,
}

/// Which write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Put,
    Update,
    Delete,
    /// A transaction's ConditionCheck: a condition, no write.
    Check,
}

/// A validated write, not yet tied to the table's current state.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) table: String,
    pub(crate) kind: Kind,
    /// The new item (PutItem) or the key (the others).
    pub(crate) item: Item,
    pub(crate) actions: Vec<UpdateAction>,
    pub(crate) condition: Option<Condition>,
    pub(crate) return_values: String,
    pub(crate) return_old_on_failure: bool,
}

/// What a write will do to the table.
#[derive(Debug)]
pub(crate) struct Planned {
    pub(crate) key: PrimaryKey,
    pub(crate) old: Option<Item>,
    /// The item afterwards; `None` deletes it.
    pub(crate) new: Option<Item>,
}

fn mixing_error(legacy: &[&str], expressions: &[&str]) -> DdbError {
    DdbError::Validation(format!(
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
        legacy.join(", "),
        expressions.join(", ")
    ))
}

/// Validates a write request and parses its expressions.
pub(crate) fn prepare(kind: Kind, input: WriteInput) -> Result<Prepared, DdbError> {
    let table = table_name(&input.table_name)?;
    let mut legacy_params = Vec::new();
    if input.attribute_updates.is_some() && kind == Kind::Update {
        legacy_params.push("AttributeUpdates");
    }
    if input.expected.is_some() {
        legacy_params.push("Expected");
    }
    let mut expression_params = Vec::new();
    if input.condition_expression.is_some() {
        expression_params.push("ConditionExpression");
    }
    if input.update_expression.is_some() && kind == Kind::Update {
        expression_params.push("UpdateExpression");
    }
    if !legacy_params.is_empty() && !expression_params.is_empty() {
        return Err(mixing_error(&legacy_params, &expression_params));
    }
    let mut exprs = Expressions::new(
        input.expression_attribute_names,
        input.expression_attribute_values,
    )?;
    let mut actions = Vec::new();
    if kind == Kind::Update {
        if let Some(text) = &input.update_expression {
            actions = exprs.update(text)?;
        } else if let Some(updates) = input.attribute_updates {
            actions = legacy::attribute_updates(updates)?;
        }
    }
    let condition = match (&input.condition_expression, input.expected) {
        (Some(text), _) => Some(exprs.condition("ConditionExpression", text)?),
        (None, Some(expected)) => {
            legacy::expected(expected, input.conditional_operator.as_deref())?
        }
        (None, None) => None,
    };
    if kind == Kind::Check && condition.is_none() {
        return Err(validation(vec![crate::error::missing(
            "conditionExpression",
        )]));
    }
    exprs.finish()?;
    let (member, wire) = match kind {
        Kind::Put => ("item", input.item),
        _ => ("key", input.key),
    };
    let item = validate_item(wire.ok_or_else(|| validation(vec![crate::error::missing(member)]))?)?;
    let return_values = input.return_values.unwrap_or_else(|| "NONE".into());
    let allowed: &[&str] = match kind {
        Kind::Update => &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
        _ => &["NONE", "ALL_OLD"],
    };
    if !allowed.contains(&return_values.as_str()) {
        return Err(
            if kind == Kind::Update
                || !["UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"].contains(&return_values.as_str())
            {
                validation(vec![violation(
                    &return_values,
                    "returnValues",
                    "satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
                )])
            } else {
                DdbError::Validation("ReturnValues can only be ALL_OLD or NONE".into())
            },
        );
    }
    let on_failure = input
        .return_values_on_condition_check_failure
        .unwrap_or_else(|| "NONE".into());
    if on_failure != "NONE" && on_failure != "ALL_OLD" {
        return Err(validation(vec![violation(
            &on_failure,
            "returnValuesOnConditionCheckFailure",
            "satisfy enum value set: [ALL_OLD, NONE]",
        )]));
    }
    Ok(Prepared {
        table,
        kind,
        item,
        actions,
        condition,
        return_values,
        return_old_on_failure: on_failure == "ALL_OLD",
    })
}

/// Checks a prepared write against the table as it is now.
pub(crate) fn plan(table: &Table, write: &Prepared) -> Result<Planned, DdbError> {
    let key = match write.kind {
        Kind::Put => {
            let key = table.item_key(&write.item)?;
            Table::check_size(&write.item, false)?;
            key
        }
        _ => table.key_of(&write.item)?,
    };
    if write.kind == Kind::Update {
        for action in &write.actions {
            let head = action.path().head();
            if table.meta.key.contains(head) {
                if !action.path().is_top_level() {
                    return Err(DdbError::Validation(format!(
                        "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: {head}"
                    )));
                }
                return Err(DdbError::invalid(format!(
                    "Cannot update attribute {head}. This attribute is part of the key"
                )));
            }
        }
    }
    let old = table.get(&key).cloned();
    if let Some(condition) = &write.condition
        && !eval::evaluate(condition, old.as_ref())
    {
        table.counters.conditional_failed();
        return Err(DdbError::ConditionalCheckFailed {
            item: if write.return_old_on_failure {
                old
            } else {
                None
            },
        });
    }
    let new = match write.kind {
        Kind::Put => Some(write.item.clone()),
        Kind::Delete => None,
        Kind::Check => old.clone(),
        Kind::Update => {
            let mut item = old.clone().unwrap_or_else(|| write.item.clone());
            update::apply(&write.actions, &mut item)?;
            table.check_index_types(&item)?;
            Table::check_size(&item, true)?;
            Some(item)
        }
    };
    Ok(Planned { key, old, new })
}

/// The log entry that records a planned write, if it changes anything.
pub(crate) fn log_entry(table: &Table, write: &Prepared, planned: &Planned) -> Option<LogEntry> {
    match (&write.kind, &planned.new) {
        (Kind::Check, _) => None,
        (_, Some(item)) => Some(LogEntry::Put {
            table: table.meta.name.clone(),
            item: item.clone(),
        }),
        (_, None) => planned.old.as_ref().map(|old| LogEntry::Delete {
            table: table.meta.name.clone(),
            key: Table::key_attributes(&table.meta.key, old),
        }),
    }
}

/// Applies a planned (and logged) write.
pub(crate) fn apply(table: &mut Table, write: &Prepared, planned: Planned) {
    match (write.kind, planned.new) {
        (Kind::Check, _) => {}
        (_, Some(item)) => {
            table.put(planned.key, item);
        }
        (_, None) => {
            table.delete(&planned.key);
        }
    }
}

/// `Attributes` of the answer, by `ReturnValues`.
fn returned(write: &Prepared, old: Option<&Item>, new: Option<&Item>) -> Option<Item> {
    let updated = |item: Option<&Item>| {
        let item = item?;
        let heads: Vec<&str> = write.actions.iter().map(|a| a.path().head()).collect();
        Some(
            item.iter()
                .filter(|(k, _)| heads.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Item>(),
        )
    };
    match write.return_values.as_str() {
        "ALL_OLD" => old.cloned(),
        "ALL_NEW" => new.cloned(),
        "UPDATED_OLD" => updated(old),
        "UPDATED_NEW" => updated(new),
        _ => None,
    }
    .filter(|item| !item.is_empty())
}

/// The projection of a read: a ProjectionExpression, or the legacy AttributesToGet.
pub(crate) fn read_projection(
    exprs: &mut Expressions,
    projection: Option<&str>,
    attributes_to_get: Option<&[String]>,
) -> Result<Option<Vec<Path>>, DdbError> {
    match (projection, attributes_to_get) {
        (Some(_), Some(_)) => Err(mixing_error(
            &["AttributesToGet"],
            &["ProjectionExpression"],
        )),
        (Some(text), None) => Ok(Some(exprs.projection(text)?)),
        (None, Some(names)) => Ok(Some(names.iter().map(Path::attr).collect())),
        (None, None) => Ok(None),
    }
}

impl DynamoDb {
    /// Prepares, plans, logs and applies one write under the table's lock.
    fn write_one(&self, kind: Kind, input: WriteInput) -> Result<Value, DdbError> {
        let write = prepare(kind, input)?;
        let table = self.active_table(&write.table)?;
        let mut table = table.lock();
        let planned = plan(&table, &write)?;
        if let Some(entry) = log_entry(&table, &write, &planned) {
            self.commit(&[entry])?;
        }
        let attributes = returned(&write, planned.old.as_ref(), planned.new.as_ref());
        apply(&mut table, &write, planned);
        Ok(match attributes {
            Some(item) => json!({ "Attributes": item }),
            None => json!({}),
        })
    }

    pub(crate) fn put_item(&self, input: WriteInput) -> Result<Value, DdbError> {
        self.write_one(Kind::Put, input)
    }

    pub(crate) fn update_item(&self, input: WriteInput) -> Result<Value, DdbError> {
        self.write_one(Kind::Update, input)
    }

    pub(crate) fn delete_item(&self, input: WriteInput) -> Result<Value, DdbError> {
        self.write_one(Kind::Delete, input)
    }

    pub(crate) fn get_item(&self, input: GetItemInput) -> Result<Value, DdbError> {
        let name = table_name(&input.table_name)?;
        let mut exprs = Expressions::new(input.expression_attribute_names, None)?;
        let projection = read_projection(
            &mut exprs,
            input.projection_expression.as_deref(),
            input.attributes_to_get.as_deref(),
        )?;
        exprs.finish()?;
        let key = validate_item(
            input
                .key
                .ok_or_else(|| validation(vec![crate::error::missing("key")]))?,
        )?;
        let table = self.active_table(&name)?;
        let table = table.lock();
        let key = table.key_of(&key)?;
        Ok(match table.get(&key) {
            Some(item) => {
                let item = match &projection {
                    Some(paths) => eval::project(item, paths),
                    None => item.clone(),
                };
                json!({ "Item": item })
            }
            None => json!({}),
        })
    }
}

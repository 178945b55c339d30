//! DynamoDB's expression languages: condition (also used for filters and key conditions),
//! update and projection expressions, with `#name` and `:value` placeholders.
//!
//! [`Expressions`] holds a request's `ExpressionAttributeNames` and `ExpressionAttributeValues`,
//! parses each expression of the request against them (see [`parser`] for the grammar), and
//! finally checks that every placeholder given was used, as DynamoDB requires. Errors are
//! ValidationExceptions in DynamoDB's words, such as
//! `Invalid ConditionExpression: Syntax error; token: "x", near: "a x b"`.

pub(crate) mod ast;
pub(crate) mod eval;
mod lexer;
pub(crate) mod parser;
mod reserved;
pub(crate) mod update;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use ast::{Condition, Path, UpdateAction};

use super::error::DdbError;
use super::value::{AttributeValue, Item, WireItem};

/// A request's placeholders and which of them its expressions used.
#[derive(Debug, Default)]
pub(crate) struct Expressions {
    names: Option<BTreeMap<String, String>>,
    values: Option<BTreeMap<String, AttributeValue>>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
    parsed: usize,
}

fn valid_placeholder(key: &str, sigil: char) -> bool {
    let mut chars = key.chars();
    chars.next() == Some(sigil)
        && key.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Expressions {
    /// Checks the placeholder maps of a request.
    pub(crate) fn new(
        names: Option<BTreeMap<String, String>>,
        values: Option<WireItem>,
    ) -> Result<Self, DdbError> {
        if let Some(names) = &names {
            if names.is_empty() {
                return Err(DdbError::Validation(
                    "ExpressionAttributeNames must not be empty".into(),
                ));
            }
            if let Some(key) = names.keys().find(|k| !valid_placeholder(k, '#')) {
                return Err(DdbError::Validation(format!(
                    "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{key}\""
                )));
            }
        }
        let values = match values {
            None => None,
            Some(values) if values.is_empty() => {
                return Err(DdbError::Validation(
                    "ExpressionAttributeValues must not be empty".into(),
                ));
            }
            Some(values) => {
                let mut checked = BTreeMap::new();
                for (key, value) in values {
                    if !valid_placeholder(&key, ':') {
                        return Err(DdbError::Validation(format!(
                            "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{key}\""
                        )));
                    }
                    let value = value.validate().map_err(|e| {
                        DdbError::Validation(format!(
                            "ExpressionAttributeValues contains invalid value: {e} for key {key}"
                        ))
                    })?;
                    checked.insert(key, value);
                }
                Some(checked)
            }
        };
        Ok(Self {
            names,
            values,
            ..Self::default()
        })
    }

    pub(crate) fn name(&mut self, placeholder: &str) -> Option<String> {
        let name = self.names.as_ref()?.get(placeholder)?.clone();
        self.used_names.insert(placeholder.to_owned());
        Some(name)
    }

    pub(crate) fn value(&mut self, placeholder: &str) -> Option<AttributeValue> {
        let value = self.values.as_ref()?.get(placeholder)?.clone();
        self.used_values.insert(placeholder.to_owned());
        Some(value)
    }

    /// Parses a condition; `kind` names the parameter (`ConditionExpression`, …) in errors.
    pub(crate) fn condition(&mut self, kind: &str, text: &str) -> Result<Condition, DdbError> {
        self.parsed += 1;
        parser::parse_condition(text, self).map_err(|m| invalid(kind, &m))
    }

    /// Parses an UpdateExpression.
    pub(crate) fn update(&mut self, text: &str) -> Result<Vec<UpdateAction>, DdbError> {
        self.parsed += 1;
        parser::parse_update(text, self).map_err(|m| invalid("UpdateExpression", &m))
    }

    /// Parses a ProjectionExpression.
    pub(crate) fn projection(&mut self, text: &str) -> Result<Vec<Path>, DdbError> {
        self.parsed += 1;
        parser::parse_projection(text, self).map_err(|m| invalid("ProjectionExpression", &m))
    }

    /// Fails if a placeholder was given but no expression used it, or maps were given without
    /// any expression.
    pub(crate) fn finish(self) -> Result<(), DdbError> {
        if self.parsed == 0 {
            if self.names.is_some() {
                return Err(DdbError::Validation(
                    "ExpressionAttributeNames can only be specified when using expressions".into(),
                ));
            }
            if self.values.is_some() {
                return Err(DdbError::Validation(
                    "ExpressionAttributeValues can only be specified when using expressions".into(),
                ));
            }
        }
        let unused_names = unused(self.names.as_ref().map(|n| n.keys()), &self.used_names);
        if !unused_names.is_empty() {
            return Err(DdbError::Validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                unused_names.join(", ")
            )));
        }
        let unused_values = unused(self.values.as_ref().map(|v| v.keys()), &self.used_values);
        if !unused_values.is_empty() {
            return Err(DdbError::Validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                unused_values.join(", ")
            )));
        }
        Ok(())
    }
}

fn unused<'k>(
    given: Option<impl Iterator<Item = &'k String>>,
    used: &BTreeSet<String>,
) -> Vec<&'k str> {
    given
        .into_iter()
        .flatten()
        .filter(|k| !used.contains(k.as_str()))
        .map(String::as_str)
        .collect()
}

fn invalid(kind: &str, message: &str) -> DdbError {
    DdbError::Validation(format!("Invalid {kind}: {message}"))
}

/// Runs every expression parser on `text` and evaluates what parses against a sample item.
/// For the fuzz target: it must return, never panic, whatever `text` is.
#[doc(hidden)]
pub fn fuzz_expression(text: &str) {
    let names: BTreeMap<String, String> = [("#a", "a"), ("#b", "b"), ("#k", "leaseKey")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let values: WireItem = serde_json::from_str(
        r#"{":s":{"S":"x"},":n":{"N":"1"},":l":{"L":[{"N":"2"}]},":ss":{"SS":["x","y"]},":t":{"S":"N"}}"#,
    )
    .unwrap_or_default();
    let mut item = Item::new();
    item.insert("a".into(), AttributeValue::L(vec![AttributeValue::Null]));
    item.insert("b".into(), AttributeValue::M(Item::new()));
    let fresh = || Expressions::new(Some(names.clone()), Some(values.clone()));
    if let Ok(mut e) = fresh()
        && let Ok(condition) = e.condition("ConditionExpression", text)
    {
        eval::evaluate(&condition, Some(&item));
    }
    if let Ok(mut e) = fresh()
        && let Ok(actions) = e.update(text)
    {
        let _ = update::apply(&actions, &mut item.clone());
    }
    if let Ok(mut e) = fresh()
        && let Ok(paths) = e.projection(text)
    {
        eval::project(&item, &paths);
    }
}

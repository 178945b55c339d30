//! DynamoDB's expression languages: condition (also used for filters and key conditions),
//! update and projection expressions, with `#name` and `:value` placeholders.
//!
//! [`Expressions`] holds a request's `ExpressionAttributeNames` and `ExpressionAttributeValues`,
//! parses each expression of the request against them (see [`parser`] for the grammar), and
//! finally checks that every placeholder given was used, as DynamoDB requires. Errors are
//! ValidationExceptions in DynamoDB's words, such as
//! `Invalid ConditionExpression: Syntax error; token: "x", near: "a x b"`.
//!
//! DynamoDB's expression limits apply: 4 KB of text per expression, 300 operators and functions
//! per expression, 32 elements per document path, 100 operands for `IN`, 255 bytes per
//! placeholder and 2 MB for all placeholders and what they stand for together.

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
pub(crate) use parser::Limits;

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
    limits: Limits,
}

/// The longest placeholder (`#name` or `:value`), in bytes.
const MAX_PLACEHOLDER_BYTES: usize = 255;
/// The most bytes all placeholders and their names and values may add up to.
const MAX_SUBSTITUTION_BYTES: usize = 2 * 1024 * 1024;

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
        let mut substitution_bytes = 0_usize;
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
            check_key_lengths(names.keys())?;
            substitution_bytes = names.iter().map(|(k, v)| k.len() + v.len()).sum();
            if substitution_bytes > MAX_SUBSTITUTION_BYTES {
                return Err(DdbError::Validation(
                    "ExpressionAttributeNames exceeds max size".into(),
                ));
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
                check_key_lengths(values.keys())?;
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
                    substitution_bytes += key.len() + value.size();
                    checked.insert(key, value);
                }
                if substitution_bytes > MAX_SUBSTITUTION_BYTES {
                    return Err(DdbError::Validation(if names.is_some() {
                        "Combined size of ExpressionAttributeNames and ExpressionAttributeValues exceeds max size".into()
                    } else {
                        "ExpressionAttributeValues exceeds max size".into()
                    }));
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

    /// The same placeholders under other limits (tests of what the limits protect).
    #[cfg(test)]
    pub(crate) fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Parses a condition; `kind` names the parameter (`ConditionExpression`, …) in errors.
    pub(crate) fn condition(&mut self, kind: &str, text: &str) -> Result<Condition, DdbError> {
        self.parsed += 1;
        self.check_size(kind, text)?;
        parser::parse_condition(text, self).map_err(|m| invalid(kind, &m))
    }

    /// Parses an UpdateExpression.
    pub(crate) fn update(&mut self, text: &str) -> Result<Vec<UpdateAction>, DdbError> {
        self.parsed += 1;
        self.check_size("UpdateExpression", text)?;
        parser::parse_update(text, self).map_err(|m| invalid("UpdateExpression", &m))
    }

    /// Parses a ProjectionExpression.
    pub(crate) fn projection(&mut self, text: &str) -> Result<Vec<Path>, DdbError> {
        self.parsed += 1;
        self.check_size("ProjectionExpression", text)?;
        parser::parse_projection(text, self).map_err(|m| invalid("ProjectionExpression", &m))
    }

    /// DynamoDB's 4 KB limit, on the raw text (before placeholders are substituted), checked
    /// before anything else. Conditions and filters state the size, as DynamoDB's do.
    fn check_size(&self, kind: &str, text: &str) -> Result<(), DdbError> {
        if text.len() <= self.limits.expression_bytes {
            return Ok(());
        }
        let mut message = "Expression size has exceeded the maximum allowed size;".to_owned();
        if matches!(kind, "ConditionExpression" | "FilterExpression") {
            message.push_str(&format!(" expression size: {}", text.len()));
        }
        Err(invalid(kind, &message))
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

/// DynamoDB's 255-byte limit on each placeholder.
fn check_key_lengths<'k>(mut keys: impl Iterator<Item = &'k String>) -> Result<(), DdbError> {
    if keys.any(|k| k.len() > MAX_PLACEHOLDER_BYTES) {
        return Err(DdbError::Validation(
            "The expression attribute map contains a key that is too long".into(),
        ));
    }
    Ok(())
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

//! The legacy conditional parameters the Java KCL still uses: `Expected` (with
//! `ConditionalOperator`) becomes a [`Condition`], and `AttributeUpdates` becomes a list of
//! [`UpdateAction`]s, so that one evaluator serves both forms.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::DdbError;
use super::expr::ast::{
    Comparator, Condition, Operand, Path, SetValue, UpdateAction, UpdateOperand,
};
use super::value::{AttributeValue, WireValue};

/// One entry of `Expected`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ExpectedWire {
    value: Option<WireValue>,
    exists: Option<bool>,
    comparison_operator: Option<String>,
    attribute_value_list: Option<Vec<WireValue>>,
}

/// One entry of `AttributeUpdates`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct AttributeUpdateWire {
    value: Option<WireValue>,
    action: Option<String>,
}

/// Translates `Expected` and `ConditionalOperator` into a condition.
pub(crate) fn expected(
    expected: BTreeMap<String, ExpectedWire>,
    operator: Option<&str>,
) -> Result<Option<Condition>, DdbError> {
    let or = match operator {
        None | Some("AND") => false,
        Some("OR") => true,
        Some(other) => {
            return Err(super::tables::validation(vec![crate::error::violation(
                other,
                "conditionalOperator",
                "satisfy enum value set: [OR, AND]",
            )]));
        }
    };
    // One flat node however many entries there are, so that evaluating it never recurses deeply.
    let mut terms = expected
        .into_iter()
        .map(|(name, entry)| one_expected(&name, entry))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match terms.len() {
        0 => None,
        1 => terms.pop(),
        _ if or => Some(Condition::Or(terms)),
        _ => Some(Condition::And(terms)),
    })
}

fn one_expected(name: &str, entry: ExpectedWire) -> Result<Condition, DdbError> {
    let path = || Path::attr(name);
    let attr = || Operand::Path(path());
    if entry.value.is_some() && entry.attribute_value_list.is_some() {
        return Err(DdbError::invalid(format!(
            "Value and AttributeValueList cannot be used together for Attribute: {name}"
        )));
    }
    let Some(operator) = entry.comparison_operator else {
        if entry.attribute_value_list.is_some() {
            return Err(DdbError::invalid(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
            )));
        }
        return match (entry.exists, entry.value) {
            (Some(false), Some(_)) => Err(DdbError::invalid(format!(
                "Value cannot be used when Exists is false for Attribute: {name}"
            ))),
            (Some(false), None) => Ok(Condition::NotExists(path())),
            (exists, None) => Err(DdbError::invalid(format!(
                "Value must be provided when Exists is {} for Attribute: {name}",
                if exists.is_some() { "true" } else { "null" }
            ))),
            (_, Some(value)) => Ok(Condition::Compare(
                attr(),
                Comparator::Eq,
                Operand::Value(value.validate()?),
            )),
        };
    };
    if entry.exists.is_some() {
        return Err(DdbError::invalid(format!(
            "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
        )));
    }
    let args: Vec<AttributeValue> = entry
        .attribute_value_list
        .or_else(|| entry.value.map(|v| vec![v]))
        .unwrap_or_default()
        .into_iter()
        .map(WireValue::validate)
        .collect::<Result<_, _>>()?;
    let arity_ok = match operator.as_str() {
        "NULL" | "NOT_NULL" => args.is_empty(),
        "IN" => !args.is_empty(),
        "BETWEEN" => args.len() == 2,
        _ => args.len() == 1,
    };
    let known = [
        "EQ",
        "NE",
        "LE",
        "LT",
        "GE",
        "GT",
        "NOT_NULL",
        "NULL",
        "CONTAINS",
        "NOT_CONTAINS",
        "BEGINS_WITH",
        "IN",
        "BETWEEN",
    ];
    if !known.contains(&operator.as_str()) {
        return Err(super::tables::validation(vec![crate::error::violation(
            &operator,
            &format!("expected.{name}.member.comparisonOperator"),
            "satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]",
        )]));
    }
    if !arity_ok {
        return Err(DdbError::invalid(format!(
            "Invalid number of argument(s) for the {operator} ComparisonOperator"
        )));
    }
    let operands: Vec<Operand> = args.into_iter().map(Operand::Value).collect();
    let arg = |i: usize| {
        operands
            .get(i)
            .cloned()
            .unwrap_or(Operand::Value(AttributeValue::Null))
    };
    let compare = |c| Condition::Compare(attr(), c, arg(0));
    Ok(match operator.as_str() {
        "EQ" => compare(Comparator::Eq),
        "NE" => compare(Comparator::Ne),
        "LE" => compare(Comparator::Le),
        "LT" => compare(Comparator::Lt),
        "GE" => compare(Comparator::Ge),
        "GT" => compare(Comparator::Gt),
        "NOT_NULL" => Condition::Exists(path()),
        "NULL" => Condition::NotExists(path()),
        "CONTAINS" => Condition::Contains(attr(), arg(0)),
        "NOT_CONTAINS" => Condition::And(vec![
            Condition::Exists(path()),
            Condition::Not(Box::new(Condition::Contains(attr(), arg(0)))),
        ]),
        "BEGINS_WITH" => Condition::BeginsWith(attr(), arg(0)),
        "IN" => Condition::In(attr(), operands.clone()),
        _ => Condition::Between(attr(), arg(0), arg(1)),
    })
}

/// Translates `AttributeUpdates` into update actions.
pub(crate) fn attribute_updates(
    updates: BTreeMap<String, AttributeUpdateWire>,
) -> Result<Vec<UpdateAction>, DdbError> {
    let mut actions = Vec::new();
    for (name, update) in updates {
        let path = Path::attr(&name);
        let value = update.value.map(WireValue::validate).transpose()?;
        let action = update.action.as_deref().unwrap_or("PUT");
        actions.push(match (action, value) {
            ("PUT", Some(value)) => {
                UpdateAction::Set(path, SetValue::Operand(UpdateOperand::Value(value)))
            }
            ("DELETE", None) => UpdateAction::Remove(path),
            ("DELETE", Some(value)) => {
                if !matches!(
                    value,
                    AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
                ) {
                    return Err(DdbError::invalid(format!(
                        "Action DELETE is not supported for the type {}",
                        value.type_name()
                    )));
                }
                UpdateAction::Delete(path, value)
            }
            ("ADD", Some(value)) => {
                if !matches!(
                    value,
                    AttributeValue::N(_)
                        | AttributeValue::Ss(_)
                        | AttributeValue::Ns(_)
                        | AttributeValue::Bs(_)
                ) {
                    return Err(DdbError::invalid(format!(
                        "Action ADD is not supported for the type {}",
                        value.type_name()
                    )));
                }
                UpdateAction::Add(path, value)
            }
            ("PUT" | "ADD", None) => {
                return Err(DdbError::invalid(
                    "Only DELETE action is allowed when no attribute value is specified",
                ));
            }
            (other, _) => {
                return Err(super::tables::validation(vec![crate::error::violation(
                    other,
                    &format!("attributeUpdates.{name}.member.action"),
                    "satisfy enum value set: [ADD, PUT, DELETE]",
                )]));
            }
        });
    }
    Ok(actions)
}

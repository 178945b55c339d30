//! Applies update actions to an item. Every right-hand side is computed from the item as it was
//! before the update, then the actions are applied; a failing action leaves the item unchanged
//! because the caller works on a copy.

use super::ast::{Path, PathElem, SetValue, UpdateAction, UpdateOperand};
use super::eval::resolve;
use crate::dynamodb::error::DdbError;
use crate::dynamodb::value::{AttributeValue, Item};

fn invalid_path() -> DdbError {
    DdbError::Validation(
        "The document path provided in the update expression is invalid for update".into(),
    )
}

fn wrong_type() -> DdbError {
    DdbError::Validation("An operand in the update expression has an incorrect data type".into())
}

fn missing_attribute() -> DdbError {
    DdbError::Validation(
        "The provided expression refers to an attribute that does not exist in the item".into(),
    )
}

/// Applies `actions` to `item` in place.
pub(crate) fn apply(actions: &[UpdateAction], item: &mut Item) -> Result<(), DdbError> {
    let original = item.clone();
    let mut sets = Vec::new();
    for action in actions {
        if let UpdateAction::Set(path, value) = action {
            sets.push((path, set_value(value, &original)?));
        }
    }
    for (path, value) in sets {
        put(item, path, value)?;
    }
    // Remove higher list indexes first so that lower ones still point where they did.
    let mut removes: Vec<&Path> = actions
        .iter()
        .filter_map(|a| match a {
            UpdateAction::Remove(p) => Some(p),
            _ => None,
        })
        .collect();
    removes.sort_by(|a, b| b.cmp(a));
    for path in removes {
        remove(item, path);
    }
    for action in actions {
        match action {
            UpdateAction::Add(path, value) => {
                let current = resolve(item, path).cloned();
                let next = match current {
                    None => value.clone(),
                    Some(current) => add(&current, value)?,
                };
                put(item, path, next)?;
            }
            UpdateAction::Delete(path, value) => {
                let Some(current) = resolve(item, path).cloned() else {
                    continue;
                };
                match subtract(&current, value)? {
                    Some(next) => put(item, path, next)?,
                    None => remove(item, path),
                }
            }
            _ => {}
        }
    }
    // Values that each passed the nesting limit can be put together past it.
    crate::dynamodb::value::check_nesting(item)
}

fn set_value(value: &SetValue, item: &Item) -> Result<AttributeValue, DdbError> {
    match value {
        SetValue::Operand(operand) => update_operand(operand, item),
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
            let (a, b) = (update_operand(a, item)?, update_operand(b, item)?);
            let (AttributeValue::N(a), AttributeValue::N(b)) = (a, b) else {
                return Err(wrong_type());
            };
            let b = if matches!(value, SetValue::Minus(..)) {
                b.negate()
            } else {
                b
            };
            a.add(&b)
                .map(AttributeValue::N)
                .map_err(|e| DdbError::Validation(e.message("")))
        }
    }
}

fn update_operand(operand: &UpdateOperand, item: &Item) -> Result<AttributeValue, DdbError> {
    match operand {
        UpdateOperand::Path(path) => resolve(item, path).cloned().ok_or_else(missing_attribute),
        UpdateOperand::Value(value) => Ok(value.clone()),
        UpdateOperand::IfNotExists(path, fallback) => match resolve(item, path) {
            Some(value) => Ok(value.clone()),
            None => update_operand(fallback, item),
        },
        UpdateOperand::ListAppend(a, b) => {
            let (a, b) = (update_operand(a, item)?, update_operand(b, item)?);
            let (AttributeValue::L(mut a), AttributeValue::L(b)) = (a, b) else {
                return Err(wrong_type());
            };
            a.extend(b);
            Ok(AttributeValue::L(a))
        }
    }
}

/// ADD: numbers are summed, sets united.
fn add(current: &AttributeValue, value: &AttributeValue) -> Result<AttributeValue, DdbError> {
    fn union<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
        let mut out = a.to_vec();
        out.extend(b.iter().filter(|x| !a.contains(x)).cloned());
        out
    }
    Ok(match (current, value) {
        (AttributeValue::N(a), AttributeValue::N(b)) => {
            AttributeValue::N(a.add(b).map_err(|e| DdbError::Validation(e.message("")))?)
        }
        (AttributeValue::Ss(a), AttributeValue::Ss(b)) => AttributeValue::Ss(union(a, b)),
        (AttributeValue::Ns(a), AttributeValue::Ns(b)) => AttributeValue::Ns(union(a, b)),
        (AttributeValue::Bs(a), AttributeValue::Bs(b)) => AttributeValue::Bs(union(a, b)),
        _ => return Err(wrong_type()),
    })
}

/// DELETE: removes elements from a set; `None` once the set is empty.
fn subtract(
    current: &AttributeValue,
    value: &AttributeValue,
) -> Result<Option<AttributeValue>, DdbError> {
    fn minus<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().filter(|x| !b.contains(x)).cloned().collect()
    }
    let out = match (current, value) {
        (AttributeValue::Ss(a), AttributeValue::Ss(b)) => AttributeValue::Ss(minus(a, b)),
        (AttributeValue::Ns(a), AttributeValue::Ns(b)) => AttributeValue::Ns(minus(a, b)),
        (AttributeValue::Bs(a), AttributeValue::Bs(b)) => AttributeValue::Bs(minus(a, b)),
        _ => return Err(wrong_type()),
    };
    let empty = match &out {
        AttributeValue::Ss(v) => v.is_empty(),
        AttributeValue::Ns(v) => v.is_empty(),
        AttributeValue::Bs(v) => v.is_empty(),
        _ => false,
    };
    Ok((!empty).then_some(out))
}

/// Writes `value` at `path`; the parent must exist. An index past the end of a list appends.
fn put(item: &mut Item, path: &Path, value: AttributeValue) -> Result<(), DdbError> {
    let Some((PathElem::Attr(head), rest)) = path.0.split_first() else {
        return Err(invalid_path());
    };
    let Some((last, middle)) = rest.split_last() else {
        item.insert(head.clone(), value);
        return Ok(());
    };
    let mut current = item.get_mut(head).ok_or_else(invalid_path)?;
    for elem in middle {
        current = match (elem, current) {
            (PathElem::Attr(key), AttributeValue::M(map)) => map.get_mut(key),
            (PathElem::Index(index), AttributeValue::L(list)) => list.get_mut(*index),
            _ => None,
        }
        .ok_or_else(invalid_path)?;
    }
    match (last, current) {
        (PathElem::Attr(key), AttributeValue::M(map)) => {
            map.insert(key.clone(), value);
        }
        (PathElem::Index(index), AttributeValue::L(list)) => {
            if *index < list.len() {
                list[*index] = value;
            } else {
                list.push(value);
            }
        }
        _ => return Err(invalid_path()),
    }
    Ok(())
}

/// Removes what `path` names, if it is there.
fn remove(item: &mut Item, path: &Path) {
    let Some((PathElem::Attr(head), rest)) = path.0.split_first() else {
        return;
    };
    let Some((last, middle)) = rest.split_last() else {
        item.remove(head);
        return;
    };
    let Some(mut current) = item.get_mut(head) else {
        return;
    };
    for elem in middle {
        let next = match (elem, current) {
            (PathElem::Attr(key), AttributeValue::M(map)) => map.get_mut(key),
            (PathElem::Index(index), AttributeValue::L(list)) => list.get_mut(*index),
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    match (last, current) {
        (PathElem::Attr(key), AttributeValue::M(map)) => {
            map.remove(key);
        }
        (PathElem::Index(index), AttributeValue::L(list)) if *index < list.len() => {
            list.remove(*index);
        }
        _ => {}
    }
}

//! Evaluates conditions against an item, reads document paths and applies projections.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::ast::{Comparator, Condition, Operand, Path, PathElem};
use crate::dynamodb::number::Number;
use crate::dynamodb::value::{AttributeValue, Item};

/// The value at `path` in `item`, if there is one.
pub(crate) fn resolve<'i>(item: &'i Item, path: &Path) -> Option<&'i AttributeValue> {
    let mut elems = path.0.iter();
    let Some(PathElem::Attr(head)) = elems.next() else {
        return None;
    };
    let mut current = item.get(head)?;
    for elem in elems {
        current = match (elem, current) {
            (PathElem::Attr(key), AttributeValue::M(map)) => map.get(key)?,
            (PathElem::Index(index), AttributeValue::L(list)) => list.get(*index)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Whether `condition` holds for `item` (`None`: the item does not exist).
pub(crate) fn evaluate(condition: &Condition, item: Option<&Item>) -> bool {
    let empty = Item::new();
    let item = item.unwrap_or(&empty);
    eval(condition, item)
}

fn eval(condition: &Condition, item: &Item) -> bool {
    match condition {
        Condition::Compare(a, op, b) => {
            let (a, b) = (operand(a, item), operand(b, item));
            match op {
                Comparator::Eq => matches!((&a, &b), (Some(a), Some(b)) if values_equal(a, b)),
                Comparator::Ne => !matches!((&a, &b), (Some(a), Some(b)) if values_equal(a, b)),
                _ => {
                    let (Some(a), Some(b)) = (a, b) else {
                        return false;
                    };
                    let Some(ordering) = compare_values(&a, &b) else {
                        return false;
                    };
                    match op {
                        Comparator::Lt => ordering == Ordering::Less,
                        Comparator::Le => ordering != Ordering::Greater,
                        Comparator::Gt => ordering == Ordering::Greater,
                        _ => ordering != Ordering::Less,
                    }
                }
            }
        }
        Condition::Between(a, low, high) => {
            let (Some(a), Some(low), Some(high)) =
                (operand(a, item), operand(low, item), operand(high, item))
            else {
                return false;
            };
            compare_values(&a, &low).is_some_and(|o| o != Ordering::Less)
                && compare_values(&a, &high).is_some_and(|o| o != Ordering::Greater)
        }
        Condition::In(a, list) => {
            let Some(a) = operand(a, item) else {
                return false;
            };
            list.iter()
                .any(|b| operand(b, item).is_some_and(|b| values_equal(&a, &b)))
        }
        Condition::And(terms) => terms.iter().all(|term| eval(term, item)),
        Condition::Or(terms) => terms.iter().any(|term| eval(term, item)),
        Condition::Not(a) => !eval(a, item),
        Condition::Exists(path) => resolve(item, path).is_some(),
        Condition::NotExists(path) => resolve(item, path).is_none(),
        Condition::Type(path, kind) => match (resolve(item, path), operand(kind, item)) {
            (Some(value), Some(kind)) => kind.as_s() == Some(value.type_name()),
            _ => false,
        },
        Condition::BeginsWith(a, prefix) => match (operand(a, item), operand(prefix, item)) {
            (Some(a), Some(prefix)) => match (a.as_ref(), prefix.as_ref()) {
                (AttributeValue::S(a), AttributeValue::S(p)) => a.starts_with(p.as_str()),
                (AttributeValue::B(a), AttributeValue::B(p)) => a.starts_with(p),
                _ => false,
            },
            _ => false,
        },
        Condition::Contains(a, b) => match (operand(a, item), operand(b, item)) {
            (Some(a), Some(b)) => contains(&a, &b),
            _ => false,
        },
    }
}

fn contains(haystack: &AttributeValue, needle: &AttributeValue) -> bool {
    match (haystack, needle) {
        (AttributeValue::S(h), AttributeValue::S(n)) => h.contains(n.as_str()),
        (AttributeValue::B(h), AttributeValue::B(n)) => {
            n.is_empty() || h.windows(n.len()).any(|w| w == n.as_slice())
        }
        (AttributeValue::Ss(h), AttributeValue::S(n)) => h.contains(n),
        (AttributeValue::Ns(h), AttributeValue::N(n)) => h.contains(n),
        (AttributeValue::Bs(h), AttributeValue::B(n)) => h.contains(n),
        (AttributeValue::L(h), n) => h.iter().any(|e| values_equal(e, n)),
        _ => false,
    }
}

fn operand<'i>(operand: &'i Operand, item: &'i Item) -> Option<Cow<'i, AttributeValue>> {
    match operand {
        Operand::Path(path) => resolve(item, path).map(Cow::Borrowed),
        Operand::Value(value) => Some(Cow::Borrowed(value)),
        Operand::Size(path) => {
            let size = match resolve(item, path)? {
                AttributeValue::S(s) => s.chars().count(),
                AttributeValue::B(b) => b.len(),
                AttributeValue::Ss(v) => v.len(),
                AttributeValue::Ns(v) => v.len(),
                AttributeValue::Bs(v) => v.len(),
                AttributeValue::L(v) => v.len(),
                AttributeValue::M(m) => m.len(),
                _ => return None,
            };
            Number::parse(&size.to_string())
                .ok()
                .map(|n| Cow::Owned(AttributeValue::N(n)))
        }
    }
}

/// Equality as DynamoDB defines it: sets compare regardless of order.
pub(crate) fn values_equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    fn same_set<T: PartialEq>(a: &[T], b: &[T]) -> bool {
        a.len() == b.len() && a.iter().all(|x| b.contains(x))
    }
    match (a, b) {
        (AttributeValue::Ss(a), AttributeValue::Ss(b)) => same_set(a, b),
        (AttributeValue::Ns(a), AttributeValue::Ns(b)) => same_set(a, b),
        (AttributeValue::Bs(a), AttributeValue::Bs(b)) => same_set(a, b),
        (AttributeValue::L(a), AttributeValue::L(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| values_equal(x, y))
        }
        (AttributeValue::M(a), AttributeValue::M(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| values_equal(x, y)))
        }
        _ => a == b,
    }
}

/// Order of two scalars of the same type (S, N or B); `None` for anything else.
pub(crate) fn compare_values(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (AttributeValue::N(a), AttributeValue::N(b)) => Some(a.cmp(b)),
        (AttributeValue::B(a), AttributeValue::B(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// A projection being built: the parts of the item the paths pick.
enum Picked {
    Leaf(AttributeValue),
    Map(BTreeMap<String, Picked>),
    List(BTreeMap<usize, Picked>),
}

/// Keeps only the parts of `item` that `paths` name. Picked list elements keep their order
/// and close up, as in DynamoDB.
pub(crate) fn project(item: &Item, paths: &[Path]) -> Item {
    let mut root: BTreeMap<String, Picked> = BTreeMap::new();
    for path in paths {
        let Some(value) = resolve(item, path) else {
            continue;
        };
        let Some((PathElem::Attr(head), rest)) = path.0.split_first() else {
            continue;
        };
        let slot = root
            .entry(head.clone())
            .or_insert_with(|| container(rest.first()));
        pick(slot, rest, value);
    }
    root.into_iter().map(|(k, v)| (k, build(v))).collect()
}

fn container(next: Option<&PathElem>) -> Picked {
    match next {
        Some(PathElem::Attr(_)) => Picked::Map(BTreeMap::new()),
        Some(PathElem::Index(_)) => Picked::List(BTreeMap::new()),
        None => Picked::Leaf(AttributeValue::Null),
    }
}

fn pick(slot: &mut Picked, rest: &[PathElem], value: &AttributeValue) {
    let Some((first, tail)) = rest.split_first() else {
        *slot = Picked::Leaf(value.clone());
        return;
    };
    match (slot, first) {
        (Picked::Map(map), PathElem::Attr(key)) => {
            let child = map
                .entry(key.clone())
                .or_insert_with(|| container(tail.first()));
            pick(child, tail, value);
        }
        (Picked::List(list), PathElem::Index(index)) => {
            let child = list
                .entry(*index)
                .or_insert_with(|| container(tail.first()));
            pick(child, tail, value);
        }
        // A whole value was already picked above this path; it includes this part.
        _ => {}
    }
}

fn build(picked: Picked) -> AttributeValue {
    match picked {
        Picked::Leaf(value) => value,
        Picked::Map(map) => {
            AttributeValue::M(map.into_iter().map(|(k, v)| (k, build(v))).collect())
        }
        Picked::List(list) => AttributeValue::L(list.into_values().map(build).collect()),
    }
}

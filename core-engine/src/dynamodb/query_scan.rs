//! Query and Scan, on a table or on a global secondary index, with pages bounded by `Limit` and
//! by 1 MB of items read, resumable with `ExclusiveStartKey`; Scan also splits the key space
//! into `TotalSegments` parallel segments by a hash of the partition key.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::DynamoDb;
use super::error::DdbError;
use super::expr::Expressions;
use super::expr::ast::{Comparator, Condition, Operand, Path};
use super::expr::eval;
use super::items::read_projection;
use super::legacy::{self, ExpectedWire};
use super::table::{IndexMeta, KeySchema, Table, walk, walk_partition};
use super::tables::{table_name, validation};
use super::value::{AttributeValue, Item, KeyValue, WireItem, item_size, validate_item};
use crate::error::violation;

/// A page holds at most this many bytes of items read.
const PAGE_BYTES: usize = 1 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ReadInput {
    table_name: Option<String>,
    index_name: Option<String>,
    key_condition_expression: Option<String>,
    key_conditions: Option<BTreeMap<String, ExpectedWire>>,
    filter_expression: Option<String>,
    query_filter: Option<BTreeMap<String, ExpectedWire>>,
    scan_filter: Option<BTreeMap<String, ExpectedWire>>,
    conditional_operator: Option<String>,
    projection_expression: Option<String>,
    attributes_to_get: Option<Vec<String>>,
    expression_attribute_names: Option<BTreeMap<String, String>>,
    expression_attribute_values: Option<WireItem>,
    limit: Option<i64>,
    exclusive_start_key: Option<WireItem>,
    scan_index_forward: Option<bool>,
    select: Option<String>,
    consistent_read: Option<bool>,
    segment: Option<i64>,
    total_segments: Option<i64>,
}

/// A condition on the sort key of a Query.
#[derive(Debug)]
enum RangeCondition {
    Compare(Comparator, AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

/// A parsed read, before the table is looked at.
struct Read {
    table: String,
    index: Option<String>,
    key_condition: Option<Condition>,
    filter: Option<Condition>,
    projection: Option<Vec<Path>>,
    limit: Option<usize>,
    start: Option<Item>,
    forward: bool,
    count_only: bool,
    consistent: bool,
    segment: Option<(u64, u64)>,
}

fn key_error(message: &str) -> DdbError {
    DdbError::Validation(message.into())
}

fn prepare(input: ReadInput, query: bool) -> Result<Read, DdbError> {
    let table = table_name(&input.table_name)?;
    let mut exprs = Expressions::new(
        input.expression_attribute_names,
        input.expression_attribute_values,
    )?;
    let legacy_filter = if query {
        input.query_filter
    } else {
        input.scan_filter
    };
    let mut legacy_params = Vec::new();
    let mut expression_params = Vec::new();
    if input.key_conditions.is_some() {
        legacy_params.push(if query { "KeyConditions" } else { "ScanFilter" });
    }
    if legacy_filter.is_some() {
        legacy_params.push(if query { "QueryFilter" } else { "ScanFilter" });
    }
    if input.attributes_to_get.is_some() {
        legacy_params.push("AttributesToGet");
    }
    for (present, name) in [
        (
            input.key_condition_expression.is_some(),
            "KeyConditionExpression",
        ),
        (input.filter_expression.is_some(), "FilterExpression"),
        (
            input.projection_expression.is_some(),
            "ProjectionExpression",
        ),
    ] {
        if present {
            expression_params.push(name);
        }
    }
    if !legacy_params.is_empty() && !expression_params.is_empty() {
        return Err(DdbError::Validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            legacy_params.join(", "),
            expression_params.join(", ")
        )));
    }
    let key_condition = if query {
        match (&input.key_condition_expression, input.key_conditions) {
            (Some(text), _) => Some(exprs.condition("KeyConditionExpression", text)?),
            (None, Some(conditions)) => legacy::expected(conditions, None)?,
            (None, None) => {
                return Err(key_error(
                    "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
                ));
            }
        }
    } else {
        None
    };
    let filter = match (&input.filter_expression, legacy_filter) {
        (Some(text), _) => Some(exprs.condition("FilterExpression", text)?),
        (None, Some(conditions)) => {
            legacy::expected(conditions, input.conditional_operator.as_deref())?
        }
        (None, None) => None,
    };
    let projection = read_projection(
        &mut exprs,
        input.projection_expression.as_deref(),
        input.attributes_to_get.as_deref(),
    )?;
    exprs.finish()?;
    let limit = match input.limit {
        Some(limit) if limit < 1 => {
            return Err(validation(vec![violation(
                limit,
                "limit",
                "have value greater than or equal to 1",
            )]));
        }
        Some(limit) => Some(usize::try_from(limit).unwrap_or(usize::MAX)),
        None => None,
    };
    let select = input.select.unwrap_or_else(|| "ALL_ATTRIBUTES".into());
    if ![
        "ALL_ATTRIBUTES",
        "ALL_PROJECTED_ATTRIBUTES",
        "SPECIFIC_ATTRIBUTES",
        "COUNT",
    ]
    .contains(&select.as_str())
    {
        return Err(validation(vec![violation(
            &select,
            "select",
            "satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]",
        )]));
    }
    if select == "COUNT" && projection.is_some() {
        return Err(key_error(
            "Cannot specify the AttributesToGet or ProjectionExpression when choosing to get only the COUNT",
        ));
    }
    let segment = match (input.segment, input.total_segments) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(key_error(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ));
        }
        (None, Some(_)) => {
            return Err(key_error(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            ));
        }
        (Some(segment), Some(total)) => {
            if !(1..=1_000_000).contains(&total) {
                let constraint = if total < 1 {
                    "have value greater than or equal to 1"
                } else {
                    "have value less than or equal to 1000000"
                };
                return Err(validation(vec![violation(
                    total,
                    "totalSegments",
                    constraint,
                )]));
            }
            if segment < 0 {
                return Err(validation(vec![violation(
                    segment,
                    "segment",
                    "have value greater than or equal to 0",
                )]));
            }
            if segment >= total {
                return Err(key_error(&format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {segment} is not less than TotalSegments: {total}"
                )));
            }
            Some((segment as u64, total as u64))
        }
    };
    let start = input.exclusive_start_key.map(validate_item).transpose()?;
    if let Some(index) = &input.index_name {
        super::tables::table_name(&Some(index.clone())).map_err(|_| {
            validation(vec![violation(
                index,
                "indexName",
                "satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
            )])
        })?;
    }
    Ok(Read {
        table,
        index: input.index_name,
        key_condition,
        filter,
        projection,
        limit,
        start,
        forward: input.scan_index_forward.unwrap_or(true),
        count_only: select == "COUNT",
        consistent: input.consistent_read.unwrap_or(false),
        segment,
    })
}

/// Splits a key condition into the partition key value and an optional sort key condition.
fn key_condition(
    condition: &Condition,
    schema: &KeySchema,
) -> Result<(KeyValue, Option<RangeCondition>), DdbError> {
    let mut parts = Vec::new();
    flatten_and(condition, &mut parts)?;
    if parts.len() > 2 {
        return Err(key_error(
            "KeyConditionExpressions must only contain one condition per key",
        ));
    }
    let mut hash = None;
    let mut range = None;
    for part in parts {
        let (path, condition) = match part {
            Condition::Compare(Operand::Path(p), op, Operand::Value(v)) => {
                (p, RangeCondition::Compare(*op, v.clone()))
            }
            Condition::Compare(Operand::Value(v), op, Operand::Path(p)) => {
                let flipped = match op {
                    Comparator::Lt => Comparator::Gt,
                    Comparator::Le => Comparator::Ge,
                    Comparator::Gt => Comparator::Lt,
                    Comparator::Ge => Comparator::Le,
                    other => *other,
                };
                (p, RangeCondition::Compare(flipped, v.clone()))
            }
            Condition::Between(Operand::Path(p), Operand::Value(lo), Operand::Value(hi)) => {
                (p, RangeCondition::Between(lo.clone(), hi.clone()))
            }
            Condition::BeginsWith(Operand::Path(p), Operand::Value(v)) => {
                (p, RangeCondition::BeginsWith(v.clone()))
            }
            other => {
                return Err(key_error(&format!(
                    "Invalid operator used in KeyConditionExpression: {}",
                    operator_name(other)
                )));
            }
        };
        if !path.is_top_level() {
            return Err(key_error(
                "KeyConditionExpressions cannot have conditions on nested attributes",
            ));
        }
        if matches!(condition, RangeCondition::Compare(Comparator::Ne, _)) {
            return Err(key_error(
                "Invalid operator used in KeyConditionExpression: <>",
            ));
        }
        let name = path.head();
        let attr = if schema.hash.name == name {
            &schema.hash
        } else if let Some(r) = schema.range.as_ref().filter(|r| r.name == name) {
            r
        } else {
            return Err(key_error("Query condition missed key schema element"));
        };
        let values: Vec<&AttributeValue> = match &condition {
            RangeCondition::Compare(_, v) | RangeCondition::BeginsWith(v) => vec![v],
            RangeCondition::Between(a, b) => vec![a, b],
        };
        if values.iter().any(|v| v.type_name() != attr.kind) {
            return Err(DdbError::invalid(
                "Condition parameter type does not match schema type",
            ));
        }
        if attr.name == schema.hash.name {
            let RangeCondition::Compare(Comparator::Eq, value) = condition else {
                return Err(key_error("Query key condition not supported"));
            };
            if hash.is_some() {
                return Err(key_error(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
            hash = KeyValue::from_attr(&value);
        } else {
            if range.is_some() {
                return Err(key_error(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
            if matches!(condition, RangeCondition::BeginsWith(_)) && attr.kind == "N" {
                return Err(key_error("Query key condition not supported"));
            }
            range = Some(condition);
        }
    }
    let hash = hash.ok_or_else(|| {
        key_error(&format!(
            "Query condition missed key schema element: {}",
            schema.hash.name
        ))
    })?;
    Ok((hash, range))
}

fn flatten_and<'c>(condition: &'c Condition, out: &mut Vec<&'c Condition>) -> Result<(), DdbError> {
    match condition {
        Condition::And(terms) => terms.iter().try_for_each(|term| flatten_and(term, out)),
        Condition::Or(..) | Condition::Not(..) => Err(key_error(&format!(
            "Invalid operator used in KeyConditionExpression: {}",
            operator_name(condition)
        ))),
        other => {
            out.push(other);
            Ok(())
        }
    }
}

fn operator_name(condition: &Condition) -> &'static str {
    match condition {
        Condition::Or(..) => "OR",
        Condition::Not(..) => "NOT",
        Condition::In(..) => "IN",
        Condition::Exists(_) => "attribute_exists",
        Condition::NotExists(_) => "attribute_not_exists",
        Condition::Type(..) => "attribute_type",
        Condition::Contains(..) => "contains",
        Condition::Compare(_, Comparator::Ne, _) => "<>",
        _ => "=",
    }
}

fn range_matches(value: Option<&AttributeValue>, condition: &RangeCondition) -> bool {
    let Some(value) = value else {
        return false;
    };
    match condition {
        RangeCondition::Compare(op, bound) => {
            let Some(ordering) = eval::compare_values(value, bound) else {
                return false;
            };
            match op {
                Comparator::Eq => ordering.is_eq(),
                Comparator::Lt => ordering.is_lt(),
                Comparator::Le => ordering.is_le(),
                Comparator::Gt => ordering.is_gt(),
                Comparator::Ge => ordering.is_ge(),
                Comparator::Ne => ordering.is_ne(),
            }
        }
        RangeCondition::Between(low, high) => {
            eval::compare_values(value, low).is_some_and(|o| o.is_ge())
                && eval::compare_values(value, high).is_some_and(|o| o.is_le())
        }
        RangeCondition::BeginsWith(prefix) => match (value, prefix) {
            (AttributeValue::S(v), AttributeValue::S(p)) => v.starts_with(p.as_str()),
            (AttributeValue::B(v), AttributeValue::B(p)) => v.starts_with(p),
            _ => false,
        },
    }
}

/// Which scan segment a partition key falls in.
fn segment_of(hash: &KeyValue, total: u64) -> u64 {
    (u64::from(crc32fast::hash(&hash.hash_bytes())) * total) >> 32
}

fn bad_start_key() -> DdbError {
    key_error(
        "The provided starting key is invalid: The provided key element does not match the schema",
    )
}

/// Collects one page from `entries` (full table items in read order).
fn page<'a>(
    table: &Table,
    index: Option<&IndexMeta>,
    read: &Read,
    mut entries: impl Iterator<Item = &'a Item>,
) -> Value {
    let limit = read.limit.unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut scanned = 0usize;
    let mut bytes = 0usize;
    let mut last: Option<&Item> = None;
    for item in entries.by_ref() {
        let view = match index {
            Some(index) => table.index_projection(index, item),
            None => item.clone(),
        };
        scanned += 1;
        bytes += item_size(&view);
        last = Some(item);
        if read
            .filter
            .as_ref()
            .is_none_or(|f| eval::evaluate(f, Some(&view)))
        {
            items.push(match &read.projection {
                Some(paths) => eval::project(&view, paths),
                None => view,
            });
        }
        if scanned >= limit || bytes >= PAGE_BYTES {
            break;
        }
    }
    let mut out = json!({ "Count": items.len(), "ScannedCount": scanned });
    if !read.count_only {
        out["Items"] = json!(items);
    }
    // Only say there is more when there is.
    if let Some(last) = last
        && entries.next().is_some()
    {
        let mut key = Table::key_attributes(&table.meta.key, last);
        if let Some(index) = index {
            key.extend(Table::key_attributes(&index.key, last));
        }
        out["LastEvaluatedKey"] = json!(key);
    }
    out
}

impl DynamoDb {
    fn index_of<'t>(
        &self,
        table: &'t Table,
        read: &Read,
    ) -> Result<Option<&'t IndexMeta>, DdbError> {
        let Some(name) = &read.index else {
            return Ok(None);
        };
        let index = table.index(name).ok_or_else(|| {
            key_error(&format!(
                "The table does not have the specified index: {name}"
            ))
        })?;
        if read.consistent {
            return Err(key_error(
                "Consistent reads are not supported on global secondary indexes",
            ));
        }
        if self.is_creating(index.created_ms) {
            return Err(key_error(&format!(
                "Cannot read from backfilling global secondary index: {name}"
            )));
        }
        Ok(Some(index))
    }

    pub(crate) fn query(&self, input: ReadInput) -> Result<Value, DdbError> {
        let read = prepare(input, true)?;
        let table = self.active_table(&read.table)?;
        let table = table.lock();
        let index = self.index_of(&table, &read)?;
        let schema = index.map_or(&table.meta.key, |i| &i.key);
        let Some(condition) = &read.key_condition else {
            return Err(key_error("Query condition missed key schema element"));
        };
        let (hash, range) = key_condition(condition, schema)?;
        let range_name = schema.range.as_ref().map(|r| r.name.as_str());
        let in_range = |item: &Item| match (&range, range_name) {
            (Some(condition), Some(name)) => range_matches(item.get(name), condition),
            _ => true,
        };
        let out = match index {
            None => {
                let after = match &read.start {
                    Some(start) => Some(table.key_of(start).map_err(|_| bad_start_key())?.1),
                    None => None,
                };
                let entries = table
                    .items
                    .get(&hash)
                    .into_iter()
                    .flat_map(|p| walk_partition(p, after.as_ref(), read.forward))
                    .map(|(_, item)| item)
                    .filter(|item| in_range(item));
                page(&table, None, &read, entries)
            }
            Some(index) => {
                let after = match &read.start {
                    Some(start) => Some(table.index_position(index, start)?.1),
                    None => None,
                };
                let entries = table
                    .indexes
                    .get(&index.name)
                    .and_then(|partitions| partitions.get(&hash))
                    .into_iter()
                    .flat_map(|p| walk_partition(p, after.as_ref(), read.forward))
                    .filter_map(|((_, pk), ())| table.get(pk))
                    .filter(|item| in_range(item));
                page(&table, Some(index), &read, entries)
            }
        };
        Ok(out)
    }

    pub(crate) fn scan(&self, input: ReadInput) -> Result<Value, DdbError> {
        let read = prepare(input, false)?;
        let table = self.active_table(&read.table)?;
        let table = table.lock();
        let index = self.index_of(&table, &read)?;
        let in_segment = |hash: &KeyValue| {
            read.segment
                .is_none_or(|(segment, total)| segment_of(hash, total) == segment)
        };
        let out = match index {
            None => {
                let start = match &read.start {
                    Some(start) => Some(table.key_of(start).map_err(|_| bad_start_key())?),
                    None => None,
                };
                let entries = walk(&table.items, start.as_ref().map(|(h, s)| (h, s)))
                    .filter(|(h, _, _)| in_segment(h))
                    .map(|(_, _, item)| item);
                page(&table, None, &read, entries)
            }
            Some(index) => {
                let start = match &read.start {
                    Some(start) => Some(table.index_position(index, start)?),
                    None => None,
                };
                let empty = BTreeMap::new();
                let partitions = table.indexes.get(&index.name).unwrap_or(&empty);
                let entries = walk(partitions, start.as_ref().map(|(h, s)| (h, s)))
                    .filter(|(h, _, _)| in_segment(h))
                    .filter_map(|(_, (_, pk), ())| table.get(pk));
                page(&table, Some(index), &read, entries)
            }
        };
        Ok(out)
    }
}

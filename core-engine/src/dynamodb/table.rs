//! A table: its definition, its items ordered for Query and Scan, and its global secondary
//! indexes, kept up to date on every write.
//!
//! Items live in a map from partition key to a map from sort key to item, so a Query walks one
//! partition in sort-key order and a Scan walks everything; either can resume after any key
//! (`ExclusiveStartKey`). Each index holds the same shape over (index sort key, table key).

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::error::DdbError;
use super::value::{AttributeValue, Item, KeyValue, item_size};

/// A key attribute: its name and scalar type (`S`, `N` or `B`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyAttr {
    pub(crate) name: String,
    pub(crate) kind: String,
}

/// A partition key and an optional sort key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeySchema {
    pub(crate) hash: KeyAttr,
    pub(crate) range: Option<KeyAttr>,
}

impl KeySchema {
    pub(crate) fn attrs(&self) -> impl Iterator<Item = &KeyAttr> {
        std::iter::once(&self.hash).chain(self.range.as_ref())
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.attrs().any(|a| a.name == name)
    }
}

/// A global secondary index's definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct IndexMeta {
    pub(crate) name: String,
    pub(crate) key: KeySchema,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub(crate) projection_type: String,
    pub(crate) non_key_attributes: Vec<String>,
    pub(crate) created_ms: i64,
    pub(crate) read_capacity: i64,
    pub(crate) write_capacity: i64,
}

/// A table's definition, as persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct TableMeta {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) created_ms: i64,
    pub(crate) key: KeySchema,
    /// Every attribute definition, in the order given.
    pub(crate) attributes: Vec<KeyAttr>,
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub(crate) billing_mode: String,
    pub(crate) read_capacity: i64,
    pub(crate) write_capacity: i64,
    pub(crate) indexes: Vec<IndexMeta>,
    pub(crate) deletion_protection: bool,
    /// Tags by key (TagResource); absent in logs written before tags existed.
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    /// The TTL attribute once UpdateTimeToLive enabled it.
    #[serde(default)]
    pub(crate) ttl_attribute: Option<String>,
}

/// A table's primary key value: partition key and optional sort key.
pub(crate) type PrimaryKey = (KeyValue, Option<KeyValue>);

/// Where an item sits in an index partition: index sort key, then the table key for uniqueness.
pub(crate) type IndexSort = (Option<KeyValue>, PrimaryKey);

/// Partition key to sort position to value.
pub(crate) type Partitions<S, V> = BTreeMap<KeyValue, BTreeMap<S, V>>;

/// A table with its items.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) meta: TableMeta,
    pub(crate) items: Partitions<Option<KeyValue>, Item>,
    pub(crate) indexes: BTreeMap<String, Partitions<IndexSort, ()>>,
    pub(crate) item_count: usize,
    pub(crate) size_bytes: usize,
    /// Counters for `/metrics`.
    pub(crate) counters: crate::observe::TableCounters,
}

fn mismatch() -> DdbError {
    DdbError::Validation("The provided key element does not match the schema".into())
}

/// The key value of `attr` in `item`, if present with the right type.
fn typed_key(item: &Item, attr: &KeyAttr) -> Option<KeyValue> {
    let value = item.get(&attr.name)?;
    (value.type_name() == attr.kind)
        .then(|| KeyValue::from_attr(value))
        .flatten()
}

/// The index key of an item, or `None` if the item is not in the (sparse) index.
pub(crate) fn index_key(schema: &KeySchema, item: &Item) -> Option<(KeyValue, Option<KeyValue>)> {
    let hash = typed_key(item, &schema.hash)?;
    let range = match &schema.range {
        Some(attr) => Some(typed_key(item, attr)?),
        None => None,
    };
    Some((hash, range))
}

fn check_key_size(
    attr: &KeyAttr,
    value: &AttributeValue,
    is_hash: bool,
    in_item: bool,
) -> Result<(), DdbError> {
    let len = match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        _ => 0,
    };
    if len == 0 && attr.kind != "N" {
        let kind = if attr.kind == "S" { "string" } else { "binary" };
        let lead = if in_item {
            "One or more parameter values are not valid."
        } else {
            "One or more parameter values were invalid:"
        };
        return Err(DdbError::Validation(format!(
            "{lead} The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
            attr.name
        )));
    }
    if is_hash && len > 2048 {
        return Err(DdbError::invalid(
            "Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    if !is_hash && len > 1024 {
        return Err(DdbError::invalid(
            "Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ));
    }
    Ok(())
}

impl Table {
    pub(crate) fn new(meta: TableMeta) -> Self {
        let indexes = meta
            .indexes
            .iter()
            .map(|i| (i.name.clone(), BTreeMap::new()))
            .collect();
        Self {
            meta,
            items: BTreeMap::new(),
            indexes,
            item_count: 0,
            size_bytes: 0,
            counters: Default::default(),
        }
    }

    /// The primary key of a `Key` parameter: exactly the key attributes, with their types.
    pub(crate) fn key_of(&self, key: &Item) -> Result<PrimaryKey, DdbError> {
        self.key_by_schema(&self.meta.key, key)
    }

    fn key_by_schema(&self, schema: &KeySchema, key: &Item) -> Result<PrimaryKey, DdbError> {
        if key.len() != schema.attrs().count() {
            return Err(mismatch());
        }
        let mut parts = Vec::with_capacity(2);
        for (i, attr) in schema.attrs().enumerate() {
            let value = key.get(&attr.name).ok_or_else(mismatch)?;
            if value.type_name() != attr.kind {
                return Err(mismatch());
            }
            check_key_size(attr, value, i == 0, false)?;
            parts.push(KeyValue::from_attr(value).ok_or_else(mismatch)?);
        }
        let range = if parts.len() == 2 { parts.pop() } else { None };
        let hash = parts.pop().ok_or_else(mismatch)?;
        Ok((hash, range))
    }

    /// The primary key of a whole item (PutItem), with DynamoDB's item-specific messages, after
    /// checking the index key types and the size limit.
    pub(crate) fn item_key(&self, item: &Item) -> Result<PrimaryKey, DdbError> {
        let mut parts = Vec::with_capacity(2);
        for (i, attr) in self.meta.key.attrs().enumerate() {
            let Some(value) = item.get(&attr.name) else {
                return Err(DdbError::invalid(format!(
                    "Missing the key {} in the item",
                    attr.name
                )));
            };
            if value.type_name() != attr.kind {
                return Err(DdbError::invalid(format!(
                    "Type mismatch for key {} expected: {} actual: {}",
                    attr.name,
                    attr.kind,
                    value.type_name()
                )));
            }
            check_key_size(attr, value, i == 0, true)?;
            parts.push(KeyValue::from_attr(value).ok_or_else(mismatch)?);
        }
        self.check_index_types(item)?;
        let range = if parts.len() == 2 { parts.pop() } else { None };
        let hash = parts.pop().ok_or_else(mismatch)?;
        Ok((hash, range))
    }

    /// Index key attributes present on an item must have the index's types.
    pub(crate) fn check_index_types(&self, item: &Item) -> Result<(), DdbError> {
        for index in &self.meta.indexes {
            for attr in index.key.attrs() {
                if let Some(value) = item.get(&attr.name) {
                    if value.type_name() != attr.kind {
                        return Err(DdbError::invalid(format!(
                            "Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                            attr.name,
                            attr.kind,
                            value.type_name(),
                            index.name
                        )));
                    }
                    check_key_size(attr, value, index.key.hash.name == attr.name, true)?;
                }
            }
        }
        Ok(())
    }

    /// Checks the 400 KB limit.
    pub(crate) fn check_size(item: &Item, update: bool) -> Result<(), DdbError> {
        if item_size(item) > super::value::MAX_ITEM_BYTES {
            let what = if update {
                "Item size to update"
            } else {
                "Item size"
            };
            return Err(DdbError::Validation(format!(
                "{what} has exceeded the maximum allowed size"
            )));
        }
        Ok(())
    }

    pub(crate) fn get(&self, key: &PrimaryKey) -> Option<&Item> {
        self.items.get(&key.0)?.get(&key.1)
    }

    /// Stores `item` under `key` (already validated); returns the item it replaced.
    pub(crate) fn put(&mut self, key: PrimaryKey, item: Item) -> Option<Item> {
        let old = self.delete(&key);
        for index in &self.meta.indexes {
            if let Some((hash, range)) = index_key(&index.key, &item)
                && let Some(entries) = self.indexes.get_mut(&index.name)
            {
                entries
                    .entry(hash)
                    .or_default()
                    .insert((range, key.clone()), ());
            }
        }
        self.item_count += 1;
        self.size_bytes += item_size(&item);
        self.items.entry(key.0).or_default().insert(key.1, item);
        old
    }

    /// Removes the item under `key`; returns it.
    pub(crate) fn delete(&mut self, key: &PrimaryKey) -> Option<Item> {
        let partition = self.items.get_mut(&key.0)?;
        let old = partition.remove(&key.1)?;
        if partition.is_empty() {
            self.items.remove(&key.0);
        }
        for index in &self.meta.indexes {
            if let Some((hash, range)) = index_key(&index.key, &old)
                && let Some(entries) = self.indexes.get_mut(&index.name)
                && let Some(part) = entries.get_mut(&hash)
            {
                part.remove(&(range, key.clone()));
                if part.is_empty() {
                    entries.remove(&hash);
                }
            }
        }
        self.item_count -= 1;
        self.size_bytes -= item_size(&old);
        Some(old)
    }

    /// Adds an index and fills it from the current items.
    pub(crate) fn add_index(&mut self, index: IndexMeta) {
        let mut entries: Partitions<IndexSort, ()> = BTreeMap::new();
        for (hash, partition) in &self.items {
            for (range, item) in partition {
                if let Some((ih, ir)) = index_key(&index.key, item) {
                    entries
                        .entry(ih)
                        .or_default()
                        .insert((ir, (hash.clone(), range.clone())), ());
                }
            }
        }
        self.indexes.insert(index.name.clone(), entries);
        self.meta.indexes.push(index);
    }

    /// Drops an index.
    pub(crate) fn remove_index(&mut self, name: &str) {
        self.indexes.remove(name);
        self.meta.indexes.retain(|i| i.name != name);
    }

    pub(crate) fn index(&self, name: &str) -> Option<&IndexMeta> {
        self.meta.indexes.iter().find(|i| i.name == name)
    }

    /// The key attributes of an item (for `LastEvaluatedKey` and KEYS_ONLY projections).
    pub(crate) fn key_attributes(schema: &KeySchema, item: &Item) -> Item {
        schema
            .attrs()
            .filter_map(|a| item.get(&a.name).map(|v| (a.name.clone(), v.clone())))
            .collect()
    }

    /// What an index holds of an item, by its projection.
    pub(crate) fn index_projection(&self, index: &IndexMeta, item: &Item) -> Item {
        if index.projection_type == "ALL" {
            return item.clone();
        }
        item.iter()
            .filter(|(name, _)| {
                self.meta.key.contains(name)
                    || index.key.contains(name)
                    || index.non_key_attributes.iter().any(|n| n == *name)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The position an `ExclusiveStartKey` names in an index: its index key and table key.
    pub(crate) fn index_position(
        &self,
        index: &IndexMeta,
        start: &Item,
    ) -> Result<(KeyValue, IndexSort), DdbError> {
        let invalid = || {
            DdbError::Validation(
                "The provided starting key is invalid: The provided key element does not match the schema".into(),
            )
        };
        let (hash, range) = index_key(&index.key, start).ok_or_else(invalid)?;
        let table_key: Item = self
            .meta
            .key
            .attrs()
            .filter_map(|a| start.get(&a.name).map(|v| (a.name.clone(), v.clone())))
            .collect();
        let pk = self.key_of(&table_key).map_err(|_| invalid())?;
        Ok((hash, (range, pk)))
    }
}

/// Everything in `partitions` after `after` (or from the start), in order.
pub(crate) fn walk<'a, S: Ord + Clone, V>(
    partitions: &'a Partitions<S, V>,
    after: Option<(&'a KeyValue, &'a S)>,
) -> Box<dyn Iterator<Item = (&'a KeyValue, &'a S, &'a V)> + 'a> {
    match after {
        None => Box::new(
            partitions
                .iter()
                .flat_map(|(h, part)| part.iter().map(move |(s, v)| (h, s, v))),
        ),
        Some((hash, sort)) => {
            let rest_of_partition =
                partitions
                    .get_key_value(hash)
                    .into_iter()
                    .flat_map(move |(h, part)| {
                        part.range((Bound::Excluded(sort.clone()), Bound::Unbounded))
                            .map(move |(s, v)| (h, s, v))
                    });
            let later = partitions
                .range((Bound::Excluded(hash.clone()), Bound::Unbounded))
                .flat_map(|(h, part)| part.iter().map(move |(s, v)| (h, s, v)));
            Box::new(rest_of_partition.chain(later))
        }
    }
}

/// One partition in sort order (or reversed), after `after` in that direction.
pub(crate) fn walk_partition<'a, S: Ord + Clone, V>(
    partition: &'a BTreeMap<S, V>,
    after: Option<&'a S>,
    forward: bool,
) -> Box<dyn Iterator<Item = (&'a S, &'a V)> + 'a> {
    match (after, forward) {
        (None, true) => Box::new(partition.iter()),
        (None, false) => Box::new(partition.iter().rev()),
        (Some(s), true) => {
            Box::new(partition.range((Bound::Excluded(s.clone()), Bound::Unbounded)))
        }
        (Some(s), false) => Box::new(
            partition
                .range((Bound::Unbounded, Bound::Excluded(s.clone())))
                .rev(),
        ),
    }
}

impl Table {
    /// Replaces the definition, building added indexes and dropping removed ones.
    pub(crate) fn set_meta(&mut self, meta: TableMeta) {
        let removed: Vec<String> = self
            .meta
            .indexes
            .iter()
            .filter(|old| !meta.indexes.iter().any(|i| i.name == old.name))
            .map(|i| i.name.clone())
            .collect();
        for name in removed {
            self.remove_index(&name);
        }
        let added: Vec<IndexMeta> = meta
            .indexes
            .iter()
            .filter(|i| !self.indexes.contains_key(&i.name))
            .cloned()
            .collect();
        for index in added {
            self.add_index(index);
        }
        self.meta = meta;
    }
}

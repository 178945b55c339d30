//! CreateTable, DescribeTable, UpdateTable, DeleteTable and ListTables.

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::DdbError;
use super::store::LogEntry;
use super::table::{IndexMeta, KeyAttr, KeySchema, Table, TableMeta};
use super::{DynamoDb, TableRef};
use crate::error::{missing, violation};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct AttributeDefinition {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct KeySchemaElement {
    attribute_name: String,
    key_type: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Throughput {
    read_capacity_units: Option<i64>,
    write_capacity_units: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Projection {
    projection_type: Option<String>,
    non_key_attributes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct IndexInput {
    index_name: String,
    key_schema: Vec<KeySchemaElement>,
    projection: Option<Projection>,
    provisioned_throughput: Option<Throughput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct CreateTableInput {
    table_name: Option<String>,
    attribute_definitions: Option<Vec<AttributeDefinition>>,
    key_schema: Option<Vec<KeySchemaElement>>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<Throughput>,
    global_secondary_indexes: Option<Vec<IndexInput>>,
    local_secondary_indexes: Option<Vec<serde_json::Value>>,
    deletion_protection_enabled: Option<bool>,
    tags: Option<Vec<super::control::Tag>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TableNameInput {
    table_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct IndexUpdate {
    create: Option<IndexInput>,
    delete: Option<IndexNameOnly>,
    update: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct IndexNameOnly {
    index_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct UpdateTableInput {
    table_name: Option<String>,
    attribute_definitions: Option<Vec<AttributeDefinition>>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<Throughput>,
    global_secondary_index_updates: Option<Vec<IndexUpdate>>,
    deletion_protection_enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ListTablesInput {
    exclusive_start_table_name: Option<String>,
    limit: Option<i64>,
}

/// Checks a table name as DynamoDB does: 3 to 255 characters of `[a-zA-Z0-9_.-]`.
pub(crate) fn table_name(name: &Option<String>) -> Result<String, DdbError> {
    check_name(name, "tableName")
}

fn check_name(name: &Option<String>, path: &str) -> Result<String, DdbError> {
    let Some(name) = name else {
        return Err(validation(vec![missing(path)]));
    };
    let mut errors = Vec::new();
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        errors.push(violation(
            name,
            path,
            "satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    if name.len() < 3 {
        errors.push(violation(
            name,
            path,
            "have length greater than or equal to 3",
        ));
    }
    if name.len() > 255 {
        errors.push(violation(
            name,
            path,
            "have length less than or equal to 255",
        ));
    }
    if errors.is_empty() {
        Ok(name.clone())
    } else {
        Err(validation(errors))
    }
}

/// `N validation error(s) detected: …`, as for Kinesis.
pub(crate) fn validation(violations: Vec<String>) -> DdbError {
    DdbError::Validation(crate::error::ApiError::Validation(violations).to_string())
}

fn key_schema(
    elements: &[KeySchemaElement],
    definitions: &[KeyAttr],
) -> Result<KeySchema, DdbError> {
    let find = |name: &str| {
        definitions.iter().find(|d| d.name == name).cloned().ok_or_else(|| {
            DdbError::Validation(
                "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: ["
                    .to_owned()
                    + name
                    + "], AttributeDefinitions: ["
                    + &definitions.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
                    + "]",
            )
        })
    };
    match elements {
        [hash] if hash.key_type == "HASH" => Ok(KeySchema {
            hash: find(&hash.attribute_name)?,
            range: None,
        }),
        [hash, range] => {
            if hash.key_type != "HASH" {
                return Err(DdbError::Validation(
                    "Invalid KeySchema: The first KeySchemaElement is not a HASH key type".into(),
                ));
            }
            if range.key_type != "RANGE" {
                return Err(DdbError::Validation(
                    "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type".into(),
                ));
            }
            if hash.attribute_name == range.attribute_name {
                return Err(DdbError::Validation(
                    "Both the Hash Key and the Range Key element in the KeySchema have the same name".into(),
                ));
            }
            Ok(KeySchema {
                hash: find(&hash.attribute_name)?,
                range: Some(find(&range.attribute_name)?),
            })
        }
        [_] => Err(DdbError::Validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type".into(),
        )),
        _ => Err(validation(vec![violation(
            format!(
                "[{}]",
                elements
                    .iter()
                    .map(|e| e.attribute_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "keySchema",
            "have length less than or equal to 2",
        )])),
    }
}

fn definitions(input: &[AttributeDefinition]) -> Result<Vec<KeyAttr>, DdbError> {
    let mut out: Vec<KeyAttr> = Vec::new();
    for (i, def) in input.iter().enumerate() {
        if !["S", "N", "B"].contains(&def.attribute_type.as_str()) {
            return Err(validation(vec![violation(
                &def.attribute_type,
                &format!("attributeDefinitions.{}.member.attributeType", i + 1),
                "satisfy enum value set: [B, N, S]",
            )]));
        }
        if out.iter().any(|d| d.name == def.attribute_name) {
            return Err(DdbError::invalid(format!(
                "Duplicate AttributeName in AttributeDefinitions: {}",
                def.attribute_name
            )));
        }
        out.push(KeyAttr {
            name: def.attribute_name.clone(),
            kind: def.attribute_type.clone(),
        });
    }
    Ok(out)
}

/// (billing mode, read, write) after checking they fit together.
fn billing(
    mode: Option<&str>,
    throughput: Option<&Throughput>,
) -> Result<(String, i64, i64), DdbError> {
    let mode = mode.unwrap_or("PROVISIONED");
    match (mode, throughput) {
        ("PAY_PER_REQUEST", None) => Ok((mode.into(), 0, 0)),
        ("PAY_PER_REQUEST", Some(_)) => Err(DdbError::invalid(
            "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        )),
        (
            "PROVISIONED",
            Some(Throughput {
                read_capacity_units: Some(r),
                write_capacity_units: Some(w),
            }),
        ) => {
            for (value, name) in [(r, "ReadCapacityUnits"), (w, "WriteCapacityUnits")] {
                if *value < 1 {
                    return Err(DdbError::Validation(format!(
                        "Given value {value} for {name} is out of bounds"
                    )));
                }
            }
            Ok((mode.into(), *r, *w))
        }
        ("PROVISIONED", _) => Err(DdbError::invalid(
            "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        )),
        (other, _) => Err(validation(vec![violation(
            other,
            "billingMode",
            "satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]",
        )])),
    }
}

fn index_meta(
    input: &IndexInput,
    definitions: &[KeyAttr],
    billing_mode: &str,
    now: i64,
) -> Result<IndexMeta, DdbError> {
    check_name(&Some(input.index_name.clone()), "indexName")?;
    let key = key_schema(&input.key_schema, definitions)?;
    let projection = input.projection.as_ref();
    let projection_type = projection
        .and_then(|p| p.projection_type.clone())
        .ok_or_else(|| DdbError::invalid("Unknown ProjectionType: null"))?;
    if !["ALL", "KEYS_ONLY", "INCLUDE"].contains(&projection_type.as_str()) {
        return Err(DdbError::invalid(format!(
            "Unknown ProjectionType: {projection_type}"
        )));
    }
    let non_key_attributes = projection
        .and_then(|p| p.non_key_attributes.clone())
        .unwrap_or_default();
    if projection_type != "INCLUDE" && !non_key_attributes.is_empty() {
        return Err(DdbError::invalid(format!(
            "ProjectionType is {projection_type}, but NonKeyAttributes is specified"
        )));
    }
    let (_, read, write) = billing(Some(billing_mode), input.provisioned_throughput.as_ref())?;
    Ok(IndexMeta {
        name: input.index_name.clone(),
        key,
        projection_type,
        non_key_attributes,
        created_ms: now,
        read_capacity: read,
        write_capacity: write,
    })
}

impl DynamoDb {
    pub(crate) fn create_table(&self, input: CreateTableInput) -> Result<Value, DdbError> {
        let name = table_name(&input.table_name)?;
        let mut missing_members = Vec::new();
        if input.attribute_definitions.is_none() {
            missing_members.push(missing("attributeDefinitions"));
        }
        if input.key_schema.is_none() {
            missing_members.push(missing("keySchema"));
        }
        if !missing_members.is_empty() {
            return Err(validation(missing_members));
        }
        if input.local_secondary_indexes.is_some() {
            return Err(DdbError::Validation(
                "LocalSecondaryIndexes are not supported by this engine".into(),
            ));
        }
        let defs = definitions(input.attribute_definitions.as_deref().unwrap_or_default())?;
        let key = key_schema(input.key_schema.as_deref().unwrap_or_default(), &defs)?;
        let (billing_mode, read, write) = billing(
            input.billing_mode.as_deref(),
            input.provisioned_throughput.as_ref(),
        )?;
        let now = self.now_ms();
        let mut indexes: Vec<IndexMeta> = Vec::new();
        for index in input.global_secondary_indexes.iter().flatten() {
            let meta = index_meta(index, &defs, &billing_mode, now)?;
            if indexes.iter().any(|i| i.name == meta.name) {
                return Err(DdbError::invalid(format!(
                    "Duplicate index name: {}",
                    meta.name
                )));
            }
            indexes.push(meta);
        }
        if indexes.len() > 20 {
            return Err(DdbError::invalid(
                "GlobalSecondaryIndex count exceeds the per-table limit of 20",
            ));
        }
        let used =
            |d: &KeyAttr| key.contains(&d.name) || indexes.iter().any(|i| i.key.contains(&d.name));
        if !defs.iter().all(used) {
            return Err(DdbError::invalid(
                "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ));
        }
        let tags = super::control::check_tags(input.tags.as_deref().unwrap_or_default())?;
        let meta = TableMeta {
            name: name.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            created_ms: now,
            key,
            attributes: defs,
            billing_mode,
            read_capacity: read,
            write_capacity: write,
            indexes,
            deletion_protection: input.deletion_protection_enabled.unwrap_or(false),
            tags: tags.into_iter().collect(),
            ttl_attribute: None,
        };
        let mut tables = self.tables.write();
        if tables.contains_key(&name) {
            return Err(DdbError::ResourceInUse(format!(
                "Table already exists: {name}"
            )));
        }
        self.commit(&[LogEntry::CreateTable(meta.clone())])?;
        let table = Table::new(meta);
        let description = self.describe(&table, None);
        tables.insert(name, std::sync::Arc::new(parking_lot::Mutex::new(table)));
        Ok(json!({ "TableDescription": description }))
    }

    pub(crate) fn describe_table(&self, input: TableNameInput) -> Result<Value, DdbError> {
        let name = table_name(&input.table_name)?;
        let table = self.table(&name)?;
        let table = table.lock();
        Ok(json!({ "Table": self.describe(&table, None) }))
    }

    pub(crate) fn update_table(&self, input: UpdateTableInput) -> Result<Value, DdbError> {
        let name = table_name(&input.table_name)?;
        let table: TableRef = self.table(&name)?;
        let mut table = table.lock();
        let mut meta = table.meta.clone();
        let mut defs = meta.attributes.clone();
        for def in definitions(input.attribute_definitions.as_deref().unwrap_or_default())? {
            match defs.iter().find(|d| d.name == def.name) {
                Some(existing) if existing.kind != def.kind => {
                    return Err(DdbError::invalid(format!(
                        "Cannot change the type of attribute {} from {} to {}",
                        def.name, existing.kind, def.kind
                    )));
                }
                Some(_) => {}
                None => defs.push(def),
            }
        }
        if input.billing_mode.is_some() || input.provisioned_throughput.is_some() {
            let mode = input
                .billing_mode
                .as_deref()
                .unwrap_or(&meta.billing_mode)
                .to_owned();
            let (mode, read, write) = billing(Some(&mode), input.provisioned_throughput.as_ref())?;
            meta.billing_mode = mode;
            meta.read_capacity = read;
            meta.write_capacity = write;
        }
        if let Some(enabled) = input.deletion_protection_enabled {
            meta.deletion_protection = enabled;
        }
        let now = self.now_ms();
        for update in input.global_secondary_index_updates.iter().flatten() {
            if let Some(create) = &update.create {
                let index = index_meta(create, &defs, &meta.billing_mode, now)?;
                if meta.indexes.iter().any(|i| i.name == index.name) {
                    return Err(DdbError::invalid(format!(
                        "Attempting to create an index which already exists: {}",
                        index.name
                    )));
                }
                meta.indexes.push(index);
            } else if let Some(delete) = &update.delete {
                if !meta.indexes.iter().any(|i| i.name == delete.index_name) {
                    return Err(DdbError::ResourceNotFound(format!(
                        "Requested resource not found: Index: {} not found for table: {name}",
                        delete.index_name
                    )));
                }
                meta.indexes.retain(|i| i.name != delete.index_name);
            } else if update.update.is_some() {
                // Throughput of on-demand or emulated indexes has no effect here.
            }
        }
        let used = |d: &KeyAttr| {
            meta.key.contains(&d.name) || meta.indexes.iter().any(|i| i.key.contains(&d.name))
        };
        defs.retain(used);
        meta.attributes = defs;
        self.commit(&[LogEntry::UpdateTable(meta.clone())])?;
        table.set_meta(meta);
        Ok(json!({ "TableDescription": self.describe(&table, None) }))
    }

    pub(crate) fn delete_table(&self, input: TableNameInput) -> Result<Value, DdbError> {
        let name = table_name(&input.table_name)?;
        let mut tables = self.tables.write();
        let table = tables.get(&name).cloned().ok_or_else(|| {
            DdbError::ResourceNotFound(format!(
                "Requested resource not found: Table: {name} not found"
            ))
        })?;
        // Wait for writes in flight on the table, so none lands after the delete in the log.
        let table = table.lock();
        if table.meta.deletion_protection {
            return Err(DdbError::Validation(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.".into(),
            ));
        }
        self.commit(&[LogEntry::DeleteTable(name.clone())])?;
        tables.remove(&name);
        Ok(json!({ "TableDescription": self.describe(&table, Some("DELETING")) }))
    }

    pub(crate) fn list_tables(&self, input: ListTablesInput) -> Result<Value, DdbError> {
        let limit = input.limit.unwrap_or(100);
        if !(1..=100).contains(&limit) {
            let constraint = if limit < 1 {
                "have value greater than or equal to 1"
            } else {
                "have value less than or equal to 100"
            };
            return Err(validation(vec![violation(limit, "limit", constraint)]));
        }
        let tables = self.tables.read();
        let start = input.exclusive_start_table_name.unwrap_or_default();
        let names: Vec<&String> = tables
            .keys()
            .filter(|n| n.as_str() > start.as_str())
            .take(limit as usize + 1)
            .collect();
        let more = names.len() > limit as usize;
        let page: Vec<&String> = names.into_iter().take(limit as usize).collect();
        let mut out = json!({ "TableNames": page });
        if more && let Some(last) = page.last() {
            out["LastEvaluatedTableName"] = json!(last);
        }
        Ok(out)
    }

    /// The TableDescription of `table`; `status` overrides the computed status.
    pub(crate) fn describe(&self, table: &Table, status: Option<&str>) -> Value {
        let meta = &table.meta;
        let creating = self.is_creating(meta.created_ms);
        let status = status.unwrap_or(if creating { "CREATING" } else { "ACTIVE" });
        let arn = self.table_arn(&meta.name);
        let key_schema = |key: &KeySchema| {
            let mut out = vec![json!({"AttributeName": key.hash.name, "KeyType": "HASH"})];
            if let Some(range) = &key.range {
                out.push(json!({"AttributeName": range.name, "KeyType": "RANGE"}));
            }
            out
        };
        let throughput = |read: i64, write: i64| json!({"ReadCapacityUnits": read, "WriteCapacityUnits": write, "NumberOfDecreasesToday": 0});
        let mut out = json!({
            "TableName": meta.name,
            "TableArn": arn,
            "TableId": meta.id,
            "TableStatus": status,
            "CreationDateTime": meta.created_ms as f64 / 1000.0,
            "KeySchema": key_schema(&meta.key),
            "AttributeDefinitions": meta.attributes.iter()
                .map(|a| json!({"AttributeName": a.name, "AttributeType": a.kind}))
                .collect::<Vec<_>>(),
            "ProvisionedThroughput": throughput(meta.read_capacity, meta.write_capacity),
            "BillingModeSummary": {"BillingMode": meta.billing_mode},
            "TableSizeBytes": table.size_bytes,
            "ItemCount": table.item_count,
            "DeletionProtectionEnabled": meta.deletion_protection,
        });
        if !meta.indexes.is_empty() {
            let indexes: Vec<Value> = meta
                .indexes
                .iter()
                .map(|index| {
                    let creating = self.is_creating(index.created_ms);
                    let count = table.indexes.get(&index.name).map_or(0, |p| p.values().map(|s| s.len()).sum::<usize>());
                    let mut projection = json!({"ProjectionType": index.projection_type});
                    if !index.non_key_attributes.is_empty() {
                        projection["NonKeyAttributes"] = json!(index.non_key_attributes);
                    }
                    json!({
                        "IndexName": index.name,
                        "KeySchema": key_schema(&index.key),
                        "Projection": projection,
                        "IndexStatus": if creating { "CREATING" } else { "ACTIVE" },
                        "Backfilling": false,
                        "ProvisionedThroughput": throughput(index.read_capacity, index.write_capacity),
                        "IndexSizeBytes": 0,
                        "ItemCount": count,
                        "IndexArn": format!("{arn}/index/{}", index.name),
                    })
                })
                .collect();
            out["GlobalSecondaryIndexes"] = json!(indexes);
        }
        out
    }
}

//! The control-plane operations infrastructure-as-code tools call around CreateTable:
//! DescribeContinuousBackups, TagResource, UntagResource, ListTagsOfResource, DescribeLimits,
//! DescribeEndpoints, DescribeTimeToLive and UpdateTimeToLive.
//!
//! Tags and the TTL setting are part of the table's metadata, so they are logged (and survive a
//! restart) like any other table change. Expired items are deleted by [`super::expiry`].

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::DdbError;
use super::store::LogEntry;
use super::tables::{table_name, validation};
use super::{DynamoDb, TableRef};
use crate::error::{missing, violation};

/// The most tags a table may carry.
const MAX_TAGS: usize = 50;
/// Tags per ListTagsOfResource page.
const TAGS_PAGE: usize = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Tag {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TagResourceInput {
    resource_arn: Option<String>,
    tags: Option<Vec<Tag>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct UntagResourceInput {
    resource_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ListTagsInput {
    resource_arn: Option<String>,
    next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TableInput {
    table_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TtlSpecification {
    enabled: Option<bool>,
    attribute_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct UpdateTtlInput {
    table_name: Option<String>,
    time_to_live_specification: Option<TtlSpecification>,
}

/// Checks tags as AWS does (key 1-128 characters, value 0-256, no `aws:` prefix) and returns
/// them as (key, value) pairs.
pub(crate) fn check_tags(tags: &[Tag]) -> Result<Vec<(String, String)>, DdbError> {
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    let mut checked = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let n = i + 1;
        let (Some(key), Some(value)) = (&tag.key, &tag.value) else {
            let member = if tag.key.is_none() { "key" } else { "value" };
            return Err(validation(vec![missing(&format!(
                "tags.{n}.member.{member}"
            ))]));
        };
        let key_len = key.chars().count();
        if !(1..=128).contains(&key_len) {
            return Err(validation(vec![violation(
                key,
                &format!("tags.{n}.member.key"),
                "have length between 1 and 128",
            )]));
        }
        if value.chars().count() > 256 {
            return Err(validation(vec![violation(
                value,
                &format!("tags.{n}.member.value"),
                "have length less than or equal to 256",
            )]));
        }
        if key
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("aws:"))
        {
            return Err(DdbError::Validation(
                "One or more parameter values were invalid: Tag keys starting with 'aws:' are reserved for system use".into(),
            ));
        }
        checked.push((key.clone(), value.clone()));
    }
    Ok(checked)
}

fn too_many_tags() -> DdbError {
    DdbError::Validation(format!(
        "One or more parameter values were invalid: the number of tags exceeds the limit of {MAX_TAGS}"
    ))
}

impl DynamoDb {
    /// The table a `ResourceArn` names: ValidationException if it is not a DynamoDB table ARN,
    /// ResourceNotFoundException if it names no table of this engine's region and account.
    fn table_by_arn(&self, arn: &Option<String>) -> Result<TableRef, DdbError> {
        let Some(arn) = arn else {
            return Err(validation(vec![missing("resourceArn")]));
        };
        let malformed = || DdbError::Validation(format!("Invalid TableArn: {arn}"));
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [arn_word, _partition, service, region, account, resource] = parts[..] else {
            return Err(malformed());
        };
        let name = resource.strip_prefix("table/").ok_or_else(malformed)?;
        if arn_word != "arn" || service != "dynamodb" || table_name(&Some(name.into())).is_err() {
            return Err(malformed());
        }
        let not_found = || {
            DdbError::ResourceNotFound(format!(
                "Requested resource not found: ResourcArn: {arn} not found"
            ))
        };
        if region != self.config.region || account != self.config.account_id {
            return Err(not_found());
        }
        self.tables.read().get(name).cloned().ok_or_else(not_found)
    }

    /// Logs `meta` as the table's new definition, then applies it.
    fn update_meta(
        &self,
        table: &TableRef,
        change: impl FnOnce(&mut super::table::TableMeta) -> Result<(), DdbError>,
    ) -> Result<(), DdbError> {
        let mut table = table.lock();
        let mut meta = table.meta.clone();
        change(&mut meta)?;
        self.commit(&[LogEntry::UpdateTable(meta.clone())])?;
        table.set_meta(meta);
        Ok(())
    }

    pub(crate) fn tag_resource(&self, input: TagResourceInput) -> Result<Value, DdbError> {
        let tags = input
            .tags
            .ok_or_else(|| validation(vec![missing("tags")]))?;
        let table = self.table_by_arn(&input.resource_arn)?;
        let tags = check_tags(&tags)?;
        self.update_meta(&table, |meta| {
            meta.tags.extend(tags);
            if meta.tags.len() > MAX_TAGS {
                return Err(too_many_tags());
            }
            Ok(())
        })?;
        Ok(json!({}))
    }

    pub(crate) fn untag_resource(&self, input: UntagResourceInput) -> Result<Value, DdbError> {
        let keys = input
            .tag_keys
            .ok_or_else(|| validation(vec![missing("tagKeys")]))?;
        let table = self.table_by_arn(&input.resource_arn)?;
        self.update_meta(&table, |meta| {
            for key in &keys {
                meta.tags.remove(key);
            }
            Ok(())
        })?;
        Ok(json!({}))
    }

    /// Tags in key order, [`TAGS_PAGE`] a page; the `NextToken` is the last key returned.
    pub(crate) fn list_tags_of_resource(&self, input: ListTagsInput) -> Result<Value, DdbError> {
        let table = self.table_by_arn(&input.resource_arn)?;
        let table = table.lock();
        let start = match &input.next_token {
            Some(token) => std::ops::Bound::Excluded(token.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let mut page = table
            .meta
            .tags
            .range((start, std::ops::Bound::Unbounded))
            .take(TAGS_PAGE + 1)
            .map(|(key, value)| json!({ "Key": key, "Value": value }))
            .collect::<Vec<_>>();
        let mut output = json!({});
        if page.len() > TAGS_PAGE {
            page.truncate(TAGS_PAGE);
            output["NextToken"] = page[TAGS_PAGE - 1]["Key"].clone();
        }
        output["Tags"] = Value::Array(page);
        Ok(output)
    }

    /// Point-in-time recovery is never on: the engine keeps no backups.
    pub(crate) fn describe_continuous_backups(&self, input: TableInput) -> Result<Value, DdbError> {
        let name = table_name(&input.table_name)?;
        if !self.tables.read().contains_key(&name) {
            return Err(DdbError::TableNotFound(format!("Table not found: {name}")));
        }
        Ok(json!({
            "ContinuousBackupsDescription": {
                "ContinuousBackupsStatus": "ENABLED",
                "PointInTimeRecoveryDescription": { "PointInTimeRecoveryStatus": "DISABLED" }
            }
        }))
    }

    /// AWS's default account and table quotas.
    pub(crate) fn describe_limits(&self) -> Value {
        json!({
            "AccountMaxReadCapacityUnits": 80000,
            "AccountMaxWriteCapacityUnits": 80000,
            "TableMaxReadCapacityUnits": 40000,
            "TableMaxWriteCapacityUnits": 40000
        })
    }

    /// The regional endpoint's name, as AWS answers (clients keep using the URL they have).
    pub(crate) fn describe_endpoints(&self) -> Value {
        json!({
            "Endpoints": [{
                "Address": format!("dynamodb.{}.amazonaws.com", self.config.region),
                "CachePeriodInMinutes": 1440
            }]
        })
    }

    /// The TTL setting.
    pub(crate) fn describe_time_to_live(&self, input: TableInput) -> Result<Value, DdbError> {
        let name = table_name(&input.table_name)?;
        let table = self.table(&name)?;
        let table = table.lock();
        let description = match &table.meta.ttl_attribute {
            Some(attribute) => json!({
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": attribute
            }),
            None => json!({ "TimeToLiveStatus": "DISABLED" }),
        };
        Ok(json!({ "TimeToLiveDescription": description }))
    }

    /// Enables or disables TTL; the change takes effect at once (AWS takes up to an hour to
    /// disable); expired items are deleted from the next sweep on.
    pub(crate) fn update_time_to_live(&self, input: UpdateTtlInput) -> Result<Value, DdbError> {
        let name = table_name(&input.table_name)?;
        let Some(spec) = input.time_to_live_specification else {
            return Err(validation(vec![missing("timeToLiveSpecification")]));
        };
        let mut missing_members = Vec::new();
        if spec.enabled.is_none() {
            missing_members.push(missing("timeToLiveSpecification.enabled"));
        }
        if spec.attribute_name.is_none() {
            missing_members.push(missing("timeToLiveSpecification.attributeName"));
        }
        let (Some(enabled), Some(attribute)) = (spec.enabled, spec.attribute_name) else {
            return Err(validation(missing_members));
        };
        let length = attribute.chars().count();
        if !(1..=255).contains(&length) {
            return Err(validation(vec![violation(
                &attribute,
                "timeToLiveSpecification.attributeName",
                "have length between 1 and 255",
            )]));
        }
        let table = self.table(&name)?;
        self.update_meta(&table, |meta| {
            match (&meta.ttl_attribute, enabled) {
                (Some(_), true) => {
                    return Err(DdbError::Validation("TimeToLive is already enabled".into()));
                }
                (None, false) => {
                    return Err(DdbError::Validation("TimeToLive is already disabled".into()));
                }
                (Some(current), false) if *current != attribute => {
                    return Err(DdbError::Validation(format!(
                        "TimeToLive is active on a different AttributeName: current AttributeName is {current}"
                    )));
                }
                _ => {}
            }
            meta.ttl_attribute = enabled.then(|| attribute.clone());
            Ok(())
        })?;
        Ok(json!({
            "TimeToLiveSpecification": { "Enabled": enabled, "AttributeName": attribute }
        }))
    }
}

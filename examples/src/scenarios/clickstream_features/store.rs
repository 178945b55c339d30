//! The feature table in DynamoDB: one item per user, written only if nobody wrote it since it
//! was read.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};

use super::model::Features;
use crate::scenarios::wait_until;

type Item = HashMap<String, AttributeValue>;

/// Creates the feature table (key `user`) and waits until it is active.
pub async fn create_table(ddb: &Client, table: &str) -> Result<()> {
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("user")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("user")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("creating table {table}"))?;
    let active = wait_until(Duration::from_secs(30), || async {
        let out = ddb.describe_table().table_name(table).send().await?;
        Ok(out.table.and_then(|t| t.table_status) == Some(TableStatus::Active))
    })
    .await?;
    if !active {
        bail!("table {table} did not become active within 30s");
    }
    Ok(())
}

/// A user's stored features (read consistently: they must include every committed write).
pub async fn load(ddb: &Client, table: &str, user: &str) -> Result<Option<Features>> {
    let out = ddb
        .get_item()
        .table_name(table)
        .key("user", AttributeValue::S(user.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .with_context(|| format!("reading the features of {user}"))?;
    out.item.map(|item| from_item(&item)).transpose()
}

/// Writes `features` if the stored item is still the one they were computed from: absent when
/// `expected_last_seq` is `None`, else at that `last_seq`. Returns false when it is not (another
/// writer, such as a worker that took the shard over, got there first).
pub async fn put_if_unchanged(
    ddb: &Client,
    table: &str,
    features: &Features,
    expected_last_seq: Option<u64>,
) -> Result<bool> {
    let request = ddb
        .put_item()
        .table_name(table)
        .set_item(Some(to_item(features)));
    let request = match expected_last_seq {
        // `user` is a reserved word in expressions, hence the placeholder.
        None => request
            .condition_expression("attribute_not_exists(#user)")
            .expression_attribute_names("#user", "user"),
        Some(seq) => request
            .condition_expression("last_seq = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(seq.to_string())),
    };
    match request.send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e)))
            .with_context(|| format!("writing the features of {}", features.user)),
    }
}

/// Every stored user's features.
pub async fn scan(ddb: &Client, table: &str) -> Result<HashMap<String, Features>> {
    let mut out = HashMap::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .with_context(|| format!("scanning {table}"))?;
        for item in page.items() {
            let features = from_item(item)?;
            out.insert(features.user.clone(), features);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(out);
        }
    }
}

fn to_item(f: &Features) -> Item {
    let n = |v: u64| AttributeValue::N(v.to_string());
    let strings =
        |v: Vec<String>| AttributeValue::L(v.into_iter().map(AttributeValue::S).collect());
    HashMap::from([
        ("user".to_owned(), AttributeValue::S(f.user.clone())),
        ("last_seq".to_owned(), n(f.last_seq)),
        ("clicks".to_owned(), n(f.clicks)),
        (
            "recent_pages".to_owned(),
            strings(f.recent_pages.iter().cloned().collect()),
        ),
        (
            "distinct_pages".to_owned(),
            strings(f.distinct_pages.iter().cloned().collect()),
        ),
        ("last_seen_ms".to_owned(), n(f.last_seen_ms)),
        ("sessions".to_owned(), n(f.sessions)),
    ])
}

fn from_item(item: &Item) -> Result<Features> {
    let s = |name: &str| -> Result<String> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .with_context(|| format!("attribute {name} missing or not a string"))
    };
    let n = |name: &str| -> Result<u64> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("attribute {name} missing or not a whole number"))
    };
    let strings = |name: &str| -> Result<Vec<String>> {
        let list = item
            .get(name)
            .and_then(|v| v.as_l().ok())
            .with_context(|| format!("attribute {name} missing or not a list"))?;
        list.iter()
            .map(|v| {
                v.as_s()
                    .cloned()
                    .map_err(|_| anyhow!("{name} holds a non-string"))
            })
            .collect()
    };
    Ok(Features {
        user: s("user")?,
        last_seq: n("last_seq")?,
        clicks: n("clicks")?,
        recent_pages: strings("recent_pages")?
            .into_iter()
            .collect::<VecDeque<_>>(),
        distinct_pages: strings("distinct_pages")?
            .into_iter()
            .collect::<BTreeSet<_>>(),
        last_seen_ms: n("last_seen_ms")?,
        sessions: n("sessions")?,
    })
}

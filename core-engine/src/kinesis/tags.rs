//! AddTagsToStream, RemoveTagsFromStream and ListTagsForStream.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

use super::Kinesis;
use super::validate::Violations;

/// Most tags one stream (or consumer) may carry.
pub(crate) const MAX_TAGS_PER_STREAM: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AddTagsInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RemoveTagsInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    exclusive_start_tag_key: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsOutput {
    tags: Vec<TagOut>,
    has_more_tags: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagOut {
    key: String,
    value: String,
}

pub(crate) fn check_tag_map(tags: &BTreeMap<String, String>, v: &mut Violations) {
    let summary = format!("{{{} tags}}", tags.len());
    v.check(
        !tags.is_empty(),
        &summary,
        "tags",
        "have length greater than or equal to 1",
    );
    v.check(
        tags.len() <= 200,
        &summary,
        "tags",
        "have length less than or equal to 200",
    );
    for (key, value) in tags {
        v.length(key, "tags.key", 1, 128);
        v.length(value, "tags.value", 0, 256);
    }
}

/// Fails unless every key and value uses the characters AWS allows in tags and no key starts
/// with the `aws:` prefix AWS reserves.
pub(crate) fn check_tag_content<'a>(
    tags: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), ApiError> {
    let allowed = |text: &str| {
        text.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@%".contains(c))
    };
    for (key, value) in tags {
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::InvalidArgument(format!(
                "Tag key {key} uses the prefix aws:, which is reserved for AWS use."
            )));
        }
        if !allowed(key) || !allowed(value) {
            return Err(ApiError::InvalidArgument(format!(
                "Tag {key}={value} has characters tags may not contain: use Unicode letters, \
                 digits, white space and _ . : / = + - @ only."
            )));
        }
    }
    Ok(())
}

/// Fails if adding `tags` to a stream that has `existing` other tags exceeds the limit.
pub(crate) fn check_new_tags(
    tags: &BTreeMap<String, String>,
    existing: usize,
    stream: &str,
) -> Result<(), ApiError> {
    if existing + tags.len() > MAX_TAGS_PER_STREAM {
        return Err(ApiError::InvalidArgument(format!(
            "Failed to add tags to stream {stream} because a given stream cannot have more than \
             {MAX_TAGS_PER_STREAM} tags."
        )));
    }
    Ok(())
}

impl Kinesis {
    pub(crate) fn add_tags(&self, input: AddTagsInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.tags, "tags");
        let tags = input.tags.unwrap_or_default();
        if v.is_empty() {
            check_tag_map(&tags, &mut v);
        }
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        check_tag_content(&tags)?;
        let stream = self.stream(&name)?;
        self.keep(&stream, |meta| {
            let others = meta.tags.keys().filter(|k| !tags.contains_key(*k)).count();
            check_new_tags(&tags, others, &name)?;
            meta.tags.extend(tags);
            Ok(())
        })
    }

    pub(crate) fn remove_tags(&self, input: RemoveTagsInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.tag_keys, "tagKeys");
        let keys = input.tag_keys.unwrap_or_default();
        if v.is_empty() {
            let summary = format!("[{} keys]", keys.len());
            v.check(
                !keys.is_empty(),
                &summary,
                "tagKeys",
                "have length greater than or equal to 1",
            );
            v.check(
                keys.len() <= 50,
                &summary,
                "tagKeys",
                "have length less than or equal to 50",
            );
            for key in &keys {
                v.length(key, "tagKeys.member", 1, 128);
            }
        }
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let stream = self.stream(&name)?;
        self.keep(&stream, |meta| {
            for key in &keys {
                meta.tags.remove(key);
            }
            Ok(())
        })
    }

    pub(crate) fn list_tags(&self, input: ListTagsInput) -> Result<ListTagsOutput, ApiError> {
        let mut v = Violations::default();
        if let Some(limit) = input.limit {
            v.range(limit, "limit", 1, 50);
        }
        if let Some(start) = &input.exclusive_start_tag_key {
            v.length(start, "exclusiveStartTagKey", 1, 128);
        }
        let name = self.stream_target(
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            &mut v,
        )?;
        let stream = self.stream(&name)?;
        let state = stream.state.lock();
        let limit = input.limit.map_or(MAX_TAGS_PER_STREAM, |l| l as usize);
        let mut tags: Vec<TagOut> = state
            .tags
            .iter()
            .filter(|(k, _)| {
                input
                    .exclusive_start_tag_key
                    .as_ref()
                    .is_none_or(|s| *k > s)
            })
            .take(limit + 1)
            .map(|(key, value)| TagOut {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        let has_more_tags = tags.len() > limit;
        tags.truncate(limit);
        Ok(ListTagsOutput {
            tags,
            has_more_tags,
        })
    }
}

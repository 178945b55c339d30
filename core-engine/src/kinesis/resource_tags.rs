//! TagResource, UntagResource and ListTagsForResource: tags of a stream or a consumer, named by
//! ARN. A stream's tags are the same ones AddTagsToStream and ListTagsForStream see.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::stream::StreamMeta;

use super::Kinesis;
use super::resource::Resource;
use super::tags::{MAX_TAGS_PER_STREAM, check_tag_content, check_tag_map};
use super::validate::Violations;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagResourceInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UntagResourceInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsForResourceInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsForResourceOutput {
    tags: Vec<TagOut>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagOut {
    key: String,
    value: String,
}

/// The tags of `resource` in its stream's persistent description.
fn tags_of<'a>(
    meta: &'a mut StreamMeta,
    resource: &Resource,
) -> Result<&'a mut BTreeMap<String, String>, ApiError> {
    match resource {
        Resource::Stream(_) => Ok(&mut meta.tags),
        Resource::Consumer(_, name) => meta
            .consumers
            .iter_mut()
            .find(|c| c.name == *name)
            .map(|c| &mut c.tags)
            .ok_or_else(|| ApiError::ResourceNotFound(format!("Consumer {name} not found."))),
    }
}

impl Kinesis {
    pub(crate) fn tag_resource(&self, input: TagResourceInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.tags, "tags");
        let tags = input.tags.unwrap_or_default();
        if v.is_empty() {
            check_tag_map(&tags, &mut v);
        }
        let arn = input.resource_arn.as_deref();
        if let Some(queue) = self.queue_named_by(arn) {
            v.finish()?;
            check_tag_content(&tags)?;
            return self.tag_queue(&queue, tags);
        }
        let resource = self.resolve_resource(arn, v)?;
        check_tag_content(&tags)?;
        self.keep(resource.stream(), |meta| {
            let kept = tags_of(meta, &resource)?;
            let others = kept.keys().filter(|k| !tags.contains_key(*k)).count();
            if others + tags.len() > MAX_TAGS_PER_STREAM {
                return Err(ApiError::InvalidArgument(format!(
                    "Failed to add tags to resource {} because a resource cannot have more than \
                     {MAX_TAGS_PER_STREAM} tags.",
                    arn.unwrap_or_default()
                )));
            }
            kept.extend(tags);
            Ok(())
        })
    }

    pub(crate) fn untag_resource(&self, input: UntagResourceInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.require(&input.tag_keys, "tagKeys");
        let keys = input.tag_keys.unwrap_or_default();
        if v.is_empty() {
            let summary = format!("[{}]", keys.join(", "));
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
        if let Some(queue) = self.queue_named_by(input.resource_arn.as_deref()) {
            v.finish()?;
            return self.untag_queue(&queue, &keys);
        }
        let resource = self.resolve_resource(input.resource_arn.as_deref(), v)?;
        self.keep(resource.stream(), |meta| {
            let kept = tags_of(meta, &resource)?;
            for key in &keys {
                kept.remove(key);
            }
            Ok(())
        })
    }

    pub(crate) fn list_tags_for_resource(
        &self,
        input: ListTagsForResourceInput,
    ) -> Result<ListTagsForResourceOutput, ApiError> {
        if let Some(queue) = self.queue_named_by(input.resource_arn.as_deref()) {
            let tags = self.queue_tags(&queue);
            let tags = tags.into_iter().map(|(key, value)| TagOut { key, value });
            return Ok(ListTagsForResourceOutput {
                tags: tags.collect(),
            });
        }
        let resource =
            self.resolve_resource(input.resource_arn.as_deref(), Violations::default())?;
        let state = resource.stream().state.lock();
        let tags = match &resource {
            Resource::Stream(_) => Some(&state.tags),
            Resource::Consumer(_, name) => state.consumers.get(name).map(|c| &c.tags),
        };
        let Some(tags) = tags else {
            return Err(ApiError::ResourceNotFound(format!(
                "Resource {} not found.",
                input.resource_arn.unwrap_or_default()
            )));
        };
        Ok(ListTagsForResourceOutput {
            tags: tags
                .iter()
                .map(|(key, value)| TagOut {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
        })
    }
}

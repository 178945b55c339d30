//! A queue's tags: set by CreateQueue, then TagResource, UntagResource and
//! ListTagsForResource with the queue's ARN.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::ApiError;

use super::super::Kinesis;
use super::super::tags::MAX_TAGS_PER_STREAM;
use super::Queue;

impl Kinesis {
    /// The queue whose ARN is exactly `arn`, if there is one.
    pub(crate) fn queue_named_by(&self, arn: Option<&str>) -> Option<Arc<Queue>> {
        arn.and_then(|arn| self.queues.by_arn.lock().get(arn).cloned())
    }

    /// Adds or replaces tags of a queue (at most 50 in all).
    pub(crate) fn tag_queue(
        &self,
        queue: &Queue,
        tags: BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        self.change_queue(queue, |inner| {
            let others = inner.tags.keys().filter(|k| !tags.contains_key(*k)).count();
            if others + tags.len() > MAX_TAGS_PER_STREAM {
                return Err(ApiError::InvalidArgument(format!(
                    "Failed to add tags to resource {} because a resource cannot have more than \
                     {MAX_TAGS_PER_STREAM} tags.",
                    queue.def.arn
                )));
            }
            inner.tags.extend(tags);
            Ok(())
        })
    }

    /// Removes tags of a queue.
    pub(crate) fn untag_queue(&self, queue: &Queue, keys: &[String]) -> Result<(), ApiError> {
        self.change_queue(queue, |inner| {
            for key in keys {
                inner.tags.remove(key);
            }
            Ok(())
        })
    }

    /// A queue's tags, by key.
    pub(crate) fn queue_tags(&self, queue: &Queue) -> BTreeMap<String, String> {
        queue.inner.lock().tags.clone()
    }
}

//! CreateQueue, DescribeQueue, ListQueues, UpdateQueue and DeleteQueue.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::ApiError;
use crate::model::consumer::MAX_CONSUMERS_PER_STREAM;
use crate::model::stream::StreamMode;
use crate::protocol::json::Timestamp;

use super::super::Kinesis;
use super::super::page_token::PageToken;
use super::super::validate::Violations;
use super::shapes::{
    CreateQueueInput, ListQueuesInput, ListQueuesOutput, QueueAttributes, QueueDescription,
    QueueDescriptionOutput, QueueRef, QueueStreamIdentifier, QueueSummary, StartingPosition,
    StreamConfigurationOut, UpdateQueueInput, arn_of, queue_arn_member, stream_arn,
};
use super::state::DeliveryState;
use super::{Queue, QueueDef, QueueInner, QueueStatus};

/// ListQueues' page size when MaxResults is left out.
const LIST_DEFAULT: usize = 100;

impl Kinesis {
    pub(crate) fn create_queue(
        &self,
        input: CreateQueueInput,
    ) -> Result<QueueDescriptionOutput, ApiError> {
        input.check()?;
        let name = input.queue_name.unwrap_or_default();
        let config = input
            .stream_configuration_list
            .and_then(|l| l.into_iter().next())
            .expect("checked: one stream configuration");
        let arn = config.stream_arn.unwrap_or_default();
        let stream_name = self.stream_target(None, Some(&arn), &mut Violations::default())?;
        let stream = self.active_stream(&stream_name)?;
        let start = config.starting_position.unwrap_or(StartingPosition {
            kind: Some("LATEST".into()),
            timestamp: None,
        });
        let attributes = input.queue_attributes.unwrap_or_default().with_defaults();
        let now = self.now_ms();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let queue_arn = format!(
            "arn:aws:kinesis:{}:{}:queue/{id}",
            self.config.region, self.config.account_id
        );
        let mut by_arn = self.queues.by_arn.lock();
        if by_arn.values().any(|q| q.def.name == name) {
            return Err(ApiError::ResourceInUse(format!(
                "Queue {name} under account {} already exists.",
                self.config.account_id
            )));
        }
        let (cursors, effective_ms) = {
            let state = stream.state.lock();
            if state.mode != StreamMode::OnDemand {
                return Err(ApiError::InvalidArgument(format!(
                    "Stream {stream_name} is in PROVISIONED mode: queues are supported only on data streams in on-demand capacity mode."
                )));
            }
            let on_stream = by_arn
                .values()
                .filter(|q| q.def.stream_name == stream_name)
                .count();
            if state.consumers.len() + on_stream >= MAX_CONSUMERS_PER_STREAM {
                return Err(ApiError::LimitExceeded(format!(
                    "Stream {stream_name} already has {MAX_CONSUMERS_PER_STREAM} consumers and queues, the most allowed."
                )));
            }
            let earliest = stream.created_ms.max(now - state.retention_ms());
            let kind = start.kind.as_deref().unwrap_or("LATEST");
            let at = start.timestamp.map_or(now, |t| t.0);
            let cursors: Vec<(u32, u128)> = state
                .shards
                .iter()
                .map(|shard| {
                    let position = match kind {
                        "TRIM_HORIZON" => 0,
                        "AT_TIMESTAMP" => shard.position_at_timestamp(at),
                        _ => shard.latest_position(),
                    };
                    (shard.index, position)
                })
                .collect();
            let effective = match kind {
                "TRIM_HORIZON" => earliest,
                "AT_TIMESTAMP" => at.max(earliest),
                _ => now,
            };
            (cursors, effective)
        };
        let def = QueueDef {
            id,
            name: name.clone(),
            arn: queue_arn.clone(),
            stream_name: stream_name.clone(),
            stream_arn: stream.arn.clone(),
            stream_created_ms: stream.created_ms,
            created_ms: now,
        };
        let inner = QueueInner {
            start: StartingPosition {
                kind: start.kind,
                timestamp: Some(Timestamp(effective_ms)),
            },
            attributes,
            tags: input.tags.unwrap_or_default(),
            updated_ms: None,
            delivery: DeliveryState::starting_at(cursors),
            deleted: false,
        };
        // Saved before it is listed, so an acknowledged queue survives a crash.
        self.queue_store().save(&def, &inner)?;
        let queue = Arc::new(Queue {
            def,
            inner: Mutex::new(inner),
        });
        by_arn.insert(queue_arn, queue.clone());
        drop(by_arn);
        tracing::info!(queue = %name, stream = %stream_name, "created queue");
        Ok(self.queue_description(&queue))
    }

    pub(crate) fn describe_queue(
        &self,
        input: QueueRef,
    ) -> Result<QueueDescriptionOutput, ApiError> {
        let queue = self.checked_queue(input.queue_arn.as_deref())?;
        Ok(self.queue_description(&queue))
    }

    pub(crate) fn update_queue(
        &self,
        input: UpdateQueueInput,
    ) -> Result<QueueDescriptionOutput, ApiError> {
        let mut v = Violations::default();
        queue_arn_member(&mut v, input.queue_arn.as_deref());
        v.require(&input.queue_attributes, "queueAttributes");
        if let Some(attributes) = &input.queue_attributes {
            attributes.check(&mut v, "queueAttributes");
        }
        v.finish()?;
        let update = input.queue_attributes.unwrap_or_default();
        update.check_semantics()?;
        let queue = self.checked_queue(input.queue_arn.as_deref())?;
        let now = self.now_ms();
        self.change_queue(&queue, |inner| {
            if self.queue_status(&queue.def, inner) != QueueStatus::Active {
                return Err(ApiError::ResourceInUse(format!(
                    "Queue {} is not ACTIVE.",
                    queue.def.arn
                )));
            }
            inner.attributes = inner.attributes.merged(update);
            inner.updated_ms = Some(now);
            Ok(())
        })?;
        tracing::info!(queue = %queue.def.name, "updated queue");
        Ok(self.queue_description(&queue))
    }

    pub(crate) fn delete_queue(&self, input: QueueRef) -> Result<(), ApiError> {
        let queue = self.checked_queue(input.queue_arn.as_deref())?;
        let mut by_arn = self.queues.by_arn.lock();
        let mut inner = queue.inner.lock();
        if inner.deleted {
            return Err(super::queue_not_found(&queue.def.arn));
        }
        self.queue_store().forget(&queue.def.id)?;
        inner.deleted = true;
        by_arn.remove(&queue.def.arn);
        tracing::info!(queue = %queue.def.name, "deleted queue");
        Ok(())
    }

    pub(crate) fn list_queues(&self, input: ListQueuesInput) -> Result<ListQueuesOutput, ApiError> {
        let mut v = Violations::default();
        if let Some(max) = input.max_results {
            v.range(max, "maxResults", 1, 10_000);
        }
        if let Some(token) = &input.next_token {
            v.length(token, "nextToken", 1, 1_048_576);
        }
        if let Some(filters) = &input.stream_filter {
            v.check(
                !filters.is_empty(),
                "[]",
                "streamFilter",
                "have length greater than or equal to 1",
            );
            for (i, filter) in filters.iter().enumerate() {
                let path = format!("streamFilter.{}.member.streamARN", i + 1);
                v.require(&filter.stream_arn, &path);
                if let Some(arn) = &filter.stream_arn {
                    stream_arn(&mut v, arn, &path);
                }
            }
        }
        v.finish()?;
        let filter_key = input
            .stream_filter
            .iter()
            .flatten()
            .map(|f| {
                let at = f.stream_creation_timestamp.map(|t| t.0.to_string());
                format!(
                    "{}@{}",
                    f.stream_arn.as_deref().unwrap_or_default(),
                    at.unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        let after = match &input.next_token {
            Some(token) => {
                let token = PageToken::parse(token, self.now_ms(), &self.config.token_key)?;
                if token.filter != filter_key {
                    return Err(ApiError::InvalidArgument(
                        "The NextToken was issued for another StreamFilter.".into(),
                    ));
                }
                Some(token.after)
            }
            None => None,
        };
        let filters = input.stream_filter.unwrap_or_default();
        let matches = |q: &Queue| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    f.stream_arn.as_deref() == Some(q.def.stream_arn.as_str())
                        && f.stream_creation_timestamp
                            .is_none_or(|t| t.0 / 1000 == q.def.stream_created_ms / 1000)
                })
        };
        let mut queues: Vec<Arc<Queue>> = self
            .queues
            .by_arn
            .lock()
            .values()
            .filter(|q| matches(q))
            .cloned()
            .collect();
        // By name, then ARN: a stable order for paging.
        queues.sort_by(|a, b| (&a.def.name, &a.def.arn).cmp(&(&b.def.name, &b.def.arn)));
        let page_key = |q: &Queue| format!("{}\n{}", q.def.name, q.def.arn);
        let rest: Vec<_> = queues
            .into_iter()
            .filter(|q| {
                after
                    .as_ref()
                    .is_none_or(|a| page_key(q).as_str() > a.as_str())
            })
            .collect();
        let max = input
            .max_results
            .map_or(LIST_DEFAULT, |m| usize::try_from(m).unwrap_or(LIST_DEFAULT));
        let more = rest.len() > max;
        let page: Vec<_> = rest.into_iter().take(max).collect();
        let next_token = (more && !page.is_empty()).then(|| {
            PageToken {
                issued_ms: self.now_ms(),
                scope: String::new(),
                filter: filter_key.clone(),
                after: page_key(page.last().expect("non-empty page")),
            }
            .encode(&self.config.token_key)
        });
        let queue_summaries = page
            .iter()
            .map(|q| {
                let inner = q.inner.lock();
                QueueSummary {
                    queue_name: q.def.name.clone(),
                    queue_arn: q.def.arn.clone(),
                    queue_status: self.queue_status(&q.def, &inner).as_str(),
                    queue_creation_timestamp: Timestamp(q.def.created_ms),
                    streams: vec![QueueStreamIdentifier {
                        stream_arn: q.def.stream_arn.clone(),
                        stream_creation_timestamp: Timestamp(q.def.stream_created_ms),
                    }],
                }
            })
            .collect();
        Ok(ListQueuesOutput {
            queue_summaries,
            next_token,
        })
    }

    /// The queue a QueueARN member names, its shape checked first (ValidationException).
    fn checked_queue(&self, arn: Option<&str>) -> Result<Arc<Queue>, ApiError> {
        let mut v = Violations::default();
        queue_arn_member(&mut v, arn);
        v.finish()?;
        self.queue_in_account(arn.unwrap_or_default())
    }

    /// The queue a well-formed ARN names.
    pub(super) fn queue_in_account(&self, arn: &str) -> Result<Arc<Queue>, ApiError> {
        match arn_of(arn, "queue/") {
            Some((region, account, _))
                if region == self.config.region && account == self.config.account_id =>
            {
                self.queue(arn)
            }
            _ => Err(super::queue_not_found(arn)),
        }
    }

    fn queue_description(&self, queue: &Queue) -> QueueDescriptionOutput {
        let inner = queue.inner.lock();
        let status = self.queue_status(&queue.def, &inner);
        let mut start = inner.start.clone();
        // While CREATING, the model echoes what was configured: no effective time yet.
        if status == QueueStatus::Creating && start.kind.as_deref() != Some("AT_TIMESTAMP") {
            start.timestamp = None;
        }
        QueueDescriptionOutput {
            queue_description: QueueDescription {
                queue_name: queue.def.name.clone(),
                queue_arn: queue.def.arn.clone(),
                queue_status: status.as_str(),
                queue_creation_timestamp: Timestamp(queue.def.created_ms),
                stream_configuration_list: vec![StreamConfigurationOut {
                    stream_arn: queue.def.stream_arn.clone(),
                    starting_position: start,
                }],
                queue_attributes: QueueAttributes::clone(&inner.attributes),
            },
        }
    }
}

//! CreateChannel, DescribeChannel, ListChannels, UpdateChannel and DeleteChannel.
//!
//! A channel delivers its stream's records to a general purpose S3 destination; the engine
//! stands a local directory in for S3 (see [`delivery`] for the files and what delivery
//! guarantees). The engine's subset of the model, each refusal an InvalidArgumentException:
//! S3 Tables destinations and GZIP/ZSTD compression are not supported; `OutputKeyTemplate`,
//! `StorageClass`, the dead-letter and logging configurations and `EncryptionConfiguration` are
//! kept and returned but change nothing.
//!
//! Status changes (CREATING → ACTIVE, UPDATING → ACTIVE, DELETING → gone) take the stream
//! creation delay of the engine (zero by default, so a channel is ACTIVE at once).

mod delivery;
mod shapes;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

pub(crate) use delivery::deliver_due;
use shapes::{
    ChannelDef, ChannelDescription, ChannelSummary, CreateChannelInput, DescribeChannelOutput,
    ListChannelsInput, ListChannelsOutput, UpdateChannelInput,
};
pub(crate) use shapes::{ChannelRef, ChannelStatus};

use crate::error::ApiError;
use crate::model::stream::StreamMode;
use crate::storage::StorageError;

use super::Kinesis;
use super::validate::Violations;

/// Most channels ListChannels returns in one page.
const LIST_MAX: usize = 100;
/// Most DataFreshnessInSeconds the engine accepts (the model gives no bound; this is the
/// largest buffering interval of Firehose's S3 delivery).
const MAX_FRESHNESS_S: i64 = 900;

/// The channels of the account and where they deliver.
#[derive(Debug, Default)]
pub(crate) struct Channels {
    /// Set once at start by [`Kinesis::open_channels`].
    dir: OnceLock<delivery::ChannelDir>,
    by_name: Mutex<BTreeMap<String, Arc<Channel>>>,
}

/// One channel: its definition, and its delivery progress (whose lock is held by a delivery).
#[derive(Debug)]
pub(crate) struct Channel {
    def: Mutex<ChannelDef>,
    progress: Mutex<delivery::Progress>,
}

impl Kinesis {
    /// Sets the directory standing in for S3 and, for a durable engine, restores the channels
    /// saved there (resuming each one's delivery after the last batch written).
    pub(crate) fn open_channels(&self, dir: PathBuf) -> Result<(), StorageError> {
        let dir = delivery::ChannelDir::new(dir, self.config.durable)?;
        let restored = if self.config.durable {
            dir.restore()?
        } else {
            Vec::new()
        };
        let mut by_name = self.channels.by_name.lock();
        for (def, progress) in restored {
            by_name.insert(
                def.name.clone(),
                Arc::new(Channel {
                    def: Mutex::new(def),
                    progress: Mutex::new(progress),
                }),
            );
        }
        tracing::info!(dir = %dir.root().display(), "channel directory");
        let _ = self.channels.dir.set(dir);
        Ok(())
    }

    /// The directory channels deliver to, once set.
    pub(crate) fn channel_root(&self) -> Option<PathBuf> {
        self.channels.dir.get().map(|d| d.root().to_owned())
    }

    fn channel_dir(&self) -> Result<&delivery::ChannelDir, ApiError> {
        self.channels
            .dir
            .get()
            .ok_or_else(|| ApiError::InternalFailure("The engine has no channel directory.".into()))
    }

    fn channel_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kinesis:{}:{}:channel/{name}",
            self.config.region, self.config.account_id
        )
    }

    /// The status of a channel now; a channel whose deletion finished is gone.
    fn channel_status(&self, def: &ChannelDef) -> Option<ChannelStatus> {
        let now = self.now_ms();
        let delay = self.config.create_delay_ms;
        if let Some(since) = def.deleting_ms {
            return (now < since + delay).then_some(ChannelStatus::Deleting);
        }
        if now < def.created_ms + delay {
            Some(ChannelStatus::Creating)
        } else if def.updated_ms.is_some_and(|at| now < at + delay) {
            Some(ChannelStatus::Updating)
        } else {
            Some(ChannelStatus::Active)
        }
    }

    /// The channel an ARN names, with its status; gone channels are dropped on the way.
    fn find_channel(
        &self,
        arn: Option<&str>,
        mut v: Violations,
    ) -> Result<(Arc<Channel>, ChannelStatus), ApiError> {
        v.require(&arn, "channelARN");
        if let Some(arn) = arn {
            shapes::check_channel_arn(&mut v, arn);
        }
        v.finish()?;
        let arn = arn.unwrap_or_default();
        let not_found = || {
            ApiError::ResourceNotFound(format!(
                "Channel {arn} under account {} not found.",
                self.config.account_id
            ))
        };
        let name = arn
            .strip_prefix(&self.channel_arn(""))
            .ok_or_else(not_found)?;
        self.purge_deleted_channels();
        let channel = self
            .channels
            .by_name
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(not_found)?;
        let status = self
            .channel_status(&channel.def.lock())
            .ok_or_else(not_found)?;
        Ok((channel, status))
    }

    /// Forgets channels whose deletion is over.
    fn purge_deleted_channels(&self) {
        self.channels
            .by_name
            .lock()
            .retain(|_, c| self.channel_status(&c.def.lock()).is_some());
    }

    /// The channels now ACTIVE, for delivery.
    pub(crate) fn active_channels(&self) -> Vec<Arc<Channel>> {
        self.purge_deleted_channels();
        self.channels
            .by_name
            .lock()
            .values()
            .filter(|c| self.channel_status(&c.def.lock()) == Some(ChannelStatus::Active))
            .cloned()
            .collect()
    }

    /// Whether a channel (not being deleted) reads from the stream with this ARN.
    pub(crate) fn stream_has_channels(&self, stream_arn: &str) -> bool {
        self.purge_deleted_channels();
        self.channels.by_name.lock().values().any(|c| {
            let def = c.def.lock();
            def.deleting_ms.is_none() && def.stream.stream_arn == stream_arn
        })
    }

    pub(crate) fn create_channel(
        &self,
        input: CreateChannelInput,
    ) -> Result<DescribeChannelOutput, ApiError> {
        let mut v = Violations::default();
        input.check(&mut v);
        v.finish()?;
        let config = input.checked_config()?;
        let stream_name = config
            .stream_arn
            .strip_prefix(&self.stream_arn(""))
            .unwrap_or_default()
            .to_owned();
        let stream = self.registry.get(&stream_name).ok_or_else(|| {
            ApiError::ResourceNotFound(format!("Stream {} not found.", config.stream_arn))
        })?;
        if stream.state.lock().mode != StreamMode::OnDemand {
            return Err(ApiError::InvalidArgument(format!(
                "Stream {} is not in on-demand capacity mode; channels are supported only for on-demand streams.",
                stream.name
            )));
        }
        let dir = self.channel_dir()?;
        let name = input.channel_name.clone().unwrap_or_default();
        let _guard = self.control.lock();
        self.purge_deleted_channels();
        if self.channels.by_name.lock().contains_key(&name) {
            return Err(ApiError::ResourceInUse(format!(
                "Channel {name} under account {} already exists.",
                self.config.account_id
            )));
        }
        let now = self.now_ms();
        let def = input.into_def(
            self.channel_arn(&name),
            uuid::Uuid::new_v4().to_string(),
            now,
            stream.created_ms,
            config,
        );
        // Delivery starts at the stream's tip: records put from now on. Batch numbers follow
        // any left in the directory by an earlier channel of this name, which stay as they are.
        let progress = delivery::Progress::at_tip(&stream.state.lock(), dir.last_batch(&def));
        dir.save(&def, &progress)?;
        let description = self.describe(&def);
        self.channels.by_name.lock().insert(
            name.clone(),
            Arc::new(Channel {
                def: Mutex::new(def),
                progress: Mutex::new(progress),
            }),
        );
        tracing::info!(channel = %name, stream = %stream.name, "created channel");
        Ok(DescribeChannelOutput {
            channel_description: description,
        })
    }

    fn describe(&self, def: &ChannelDef) -> ChannelDescription {
        let status = self.channel_status(def).unwrap_or(ChannelStatus::Deleting);
        def.description(status)
    }

    pub(crate) fn describe_channel(
        &self,
        input: ChannelRef,
    ) -> Result<DescribeChannelOutput, ApiError> {
        let (channel, _) =
            self.find_channel(input.channel_arn.as_deref(), Violations::default())?;
        let description = self.describe(&channel.def.lock());
        Ok(DescribeChannelOutput {
            channel_description: description,
        })
    }

    pub(crate) fn list_channels(
        &self,
        input: ListChannelsInput,
    ) -> Result<ListChannelsOutput, ApiError> {
        let mut v = Violations::default();
        input.check(&mut v);
        v.finish()?;
        let after = match &input.next_token {
            Some(token) => Some(shapes::decode_token(token)?),
            None => None,
        };
        let limit = input
            .max_results
            .map_or(LIST_MAX, |m| (m as usize).min(LIST_MAX));
        self.purge_deleted_channels();
        let by_name = self.channels.by_name.lock();
        let mut summaries: Vec<ChannelSummary> = Vec::new();
        let mut more = false;
        for (name, channel) in by_name.iter() {
            if after.as_ref().is_some_and(|a| name <= a) {
                continue;
            }
            let def = channel.def.lock();
            if !input.matches(&def.stream.stream_arn) {
                continue;
            }
            if summaries.len() == limit {
                more = true;
                break;
            }
            let status = self.channel_status(&def).unwrap_or(ChannelStatus::Deleting);
            summaries.push(def.summary(status));
        }
        let next_token = more
            .then(|| {
                summaries
                    .last()
                    .map(|s| shapes::encode_token(&s.channel_name))
            })
            .flatten();
        Ok(ListChannelsOutput {
            channel_summaries: summaries,
            next_token,
        })
    }

    pub(crate) fn update_channel(
        &self,
        input: UpdateChannelInput,
    ) -> Result<DescribeChannelOutput, ApiError> {
        let mut v = Violations::default();
        input.check(&mut v);
        let (channel, status) = self.find_channel(input.channel_arn.as_deref(), v)?;
        let dir = self.channel_dir()?;
        let _guard = self.control.lock();
        let mut def = channel.def.lock().clone();
        if status != ChannelStatus::Active {
            return Err(ApiError::ResourceInUse(format!(
                "Channel {} is {}; only an ACTIVE channel can be updated.",
                def.name,
                status.as_str()
            )));
        }
        input.apply(&mut def)?;
        def.updated_ms = Some(self.now_ms());
        // Saved with the delivery progress as it stands; a delivery meanwhile saves again.
        // Under the progress lock, so a delivery under way does not save the old definition.
        let progress = channel.progress.lock();
        dir.save(&def, &progress)?;
        let description = self.describe(&def);
        *channel.def.lock() = def;
        drop(progress);
        tracing::info!(channel = %description.channel_name, "updated channel");
        Ok(DescribeChannelOutput {
            channel_description: description,
        })
    }

    /// Deletes a channel: delivery stops at once; batches already written stay.
    pub(crate) fn delete_channel(&self, input: ChannelRef) -> Result<(), ApiError> {
        let (channel, status) =
            self.find_channel(input.channel_arn.as_deref(), Violations::default())?;
        let dir = self.channel_dir()?;
        let _guard = self.control.lock();
        if status == ChannelStatus::Deleting {
            return Err(ApiError::ResourceInUse(format!(
                "Channel {} is already being deleted.",
                channel.def.lock().name
            )));
        }
        // Waits for a delivery under way, so that none follows the deletion.
        let _progress = channel.progress.lock();
        let name = channel.def.lock().name.clone();
        dir.forget(&name)?;
        channel.def.lock().deleting_ms = Some(self.now_ms());
        self.purge_deleted_channels();
        tracing::info!(channel = %name, "deleted channel");
        Ok(())
    }
}

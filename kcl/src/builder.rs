//! [`SchedulerBuilder`]: every setting of a [`Scheduler`] named, checked when it is built.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::processor::RecordProcessorFactory;
use crate::scheduler::{Scheduler, Streams};
use crate::streams::StreamTracker;

/// Builds a [`Scheduler`]; get one from [`Scheduler::builder`].
///
/// The application, the stream (or the streams, or a stream tracker), the worker id, both
/// clients and the processor factory are required; the [`Config`] defaults to [`Config::default`]. [`build`](Self::build) checks them
/// all and the config ([`Config::validate`]) and names the first one wrong in
/// [`Error::InvalidConfig`].
///
/// ```no_run
/// # use kcl::{Config, RecordProcessorFactory, Scheduler};
/// # async fn run(factory: impl RecordProcessorFactory) -> kcl::Result<()> {
/// let aws = aws_config::load_from_env().await;
/// let scheduler = Scheduler::builder()
///     .application("my-application")
///     .stream("my-stream")
///     .worker_id("worker-1")
///     .kinesis(aws_sdk_kinesis::Client::new(&aws))
///     .dynamodb(aws_sdk_dynamodb::Client::new(&aws))
///     .processor_factory(factory)
///     .config(Config::default())
///     .build()?;
/// scheduler.run().await?;
/// # Ok(())
/// # }
/// ```
pub struct SchedulerBuilder<F: RecordProcessorFactory> {
    application: Option<String>,
    stream: Option<String>,
    streams: Option<Vec<String>>,
    tracker: Option<Box<dyn StreamTracker>>,
    worker_id: Option<String>,
    kinesis: Option<aws_sdk_kinesis::Client>,
    dynamodb: Option<aws_sdk_dynamodb::Client>,
    factory: Option<F>,
    config: Config,
}

impl<F: RecordProcessorFactory> std::fmt::Debug for SchedulerBuilder<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerBuilder")
            .field("application", &self.application)
            .field("stream", &self.stream)
            .field("streams", &self.streams)
            .field("stream_tracker", &self.tracker.is_some())
            .field("worker_id", &self.worker_id)
            .field("kinesis", &self.kinesis.is_some())
            .field("dynamodb", &self.dynamodb.is_some())
            .field("processor_factory", &self.factory.is_some())
            .field("config", &self.config)
            .finish()
    }
}

impl<F: RecordProcessorFactory> Default for SchedulerBuilder<F> {
    fn default() -> Self {
        Self {
            application: None,
            stream: None,
            streams: None,
            tracker: None,
            worker_id: None,
            kinesis: None,
            dynamodb: None,
            factory: None,
            config: Config::default(),
        }
    }
}

impl<F: RecordProcessorFactory> SchedulerBuilder<F> {
    /// The application's name (required): the lease table's name unless
    /// [`Config::table_name`] says otherwise, and the fan-out consumer's name unless
    /// [`FanOutConfig::consumer_name`](crate::FanOutConfig::consumer_name) does. Every worker
    /// of one application uses the same name.
    pub fn application(mut self, name: impl Into<String>) -> Self {
        self.application = Some(name.into());
        self
    }

    /// The stream to read (required): a name or an ARN.
    pub fn stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }

    /// The streams of a multi-stream application (names or ARNs), a fixed set; instead of
    /// [`stream`](Self::stream). Leases get the Java KCL's multi-stream keys
    /// (`account:stream:creationEpoch:shardId`), even for a set of one stream.
    pub fn streams<I, S>(mut self, streams: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.streams = Some(streams.into_iter().map(Into::into).collect());
        self
    }

    /// A multi-stream application whose streams `tracker` says, asked every
    /// [`Config::shard_sync_interval`], so streams are added and removed while it runs; instead
    /// of [`stream`](Self::stream). See [`StreamTracker`].
    pub fn stream_tracker(mut self, tracker: impl StreamTracker) -> Self {
        self.tracker = Some(Box::new(tracker));
        self
    }

    /// This worker's id (required), written as `leaseOwner`; unique in the fleet.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// The Kinesis client (required).
    pub fn kinesis(mut self, client: aws_sdk_kinesis::Client) -> Self {
        self.kinesis = Some(client);
        self
    }

    /// The DynamoDB client of the lease table (required).
    pub fn dynamodb(mut self, client: aws_sdk_dynamodb::Client) -> Self {
        self.dynamodb = Some(client);
        self
    }

    /// Makes one processor per held lease (required).
    pub fn processor_factory(mut self, factory: F) -> Self {
        self.factory = Some(factory);
        self
    }

    /// The configuration (default [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Which metrics are emitted (sets [`Config::metrics_level`]; call it after
    /// [`config`](Self::config), which replaces the whole configuration).
    pub fn metrics_level(mut self, level: crate::MetricsLevel) -> Self {
        self.config.metrics_level = level;
        self
    }

    /// The scheduler, or [`Error::InvalidConfig`] naming the first setting missing or wrong:
    /// `application`, `stream` (none or several of `stream`, `streams`, `stream_tracker` set),
    /// `streams` (an empty set), `worker_id`, `kinesis`, `dynamodb`, `processor_factory`, or a
    /// field of the [`Config`].
    pub fn build(self) -> Result<Scheduler<F>> {
        let application = non_empty("application", self.application)?;
        let streams = match (self.stream, self.streams, self.tracker) {
            (Some(stream), None, None) => Streams::One(non_empty("stream", Some(stream))?),
            (None, Some(list), None) => {
                if list.is_empty() || list.iter().any(String::is_empty) {
                    return Err(Error::InvalidConfig {
                        field: "streams",
                        reason: "must name at least one stream, none empty".into(),
                    });
                }
                Streams::Tracked(Box::new(move || list.clone()))
            }
            (None, None, Some(tracker)) => Streams::Tracked(tracker),
            (None, None, None) => return Err(missing("stream")),
            _ => {
                return Err(Error::InvalidConfig {
                    field: "stream",
                    reason: "set one of stream, streams and stream_tracker".into(),
                });
            }
        };
        let worker_id = non_empty("worker_id", self.worker_id)?;
        let kinesis = self.kinesis.ok_or_else(|| missing("kinesis"))?;
        let dynamodb = self.dynamodb.ok_or_else(|| missing("dynamodb"))?;
        let factory = self.factory.ok_or_else(|| missing("processor_factory"))?;
        self.config.validate()?;
        Ok(Scheduler::from_parts(
            kinesis,
            dynamodb,
            application,
            streams,
            worker_id,
            factory,
            self.config,
        ))
    }
}

fn missing(field: &'static str) -> Error {
    Error::InvalidConfig {
        field,
        reason: "not set".into(),
    }
}

fn non_empty(field: &'static str, value: Option<String>) -> Result<String> {
    match value {
        None => Err(missing(field)),
        Some(v) if v.is_empty() => Err(Error::InvalidConfig {
            field,
            reason: "must not be empty".into(),
        }),
        Some(v) => Ok(v),
    }
}

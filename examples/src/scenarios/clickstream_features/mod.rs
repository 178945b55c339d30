//! Real-time feature computation: a clickstream folded into a per-user feature table.
//!
//! # The situation
//! A recommendation or fraud model needs fresh per-user features ("pages viewed in the last 10
//! clicks", "distinct pages", "last seen", "sessions") at request time. The web tier sends every
//! click to Kinesis; a consumer application keeps the features in a DynamoDB table that the
//! model server reads by user id.
//!
//! # Data flow
//! ```text
//! web tier --kpl, key = user--> stream `clickstream` --kcl app `feature-writer`--> table `user-features`
//! ```
//! Each click carries the user's own event counter `seq` (from 0). A [`writer::FeatureWriter`]
//! gets a shard's records in order, groups a batch by user, folds the clicks into the user's
//! [`model::Features`] and writes the item back with **one conditional write per user per
//! batch**, then checkpoints.
//!
//! # Guarantees it relies on
//! - **At-least-once delivery.** Records after the last checkpoint are delivered again after a
//!   crash or a lease move, and a producer retry can store one click twice. Features are not
//!   idempotent (a count would double), so the item keeps `last_seq`, the last click applied:
//!   a click with a `seq` not above it is skipped.
//! - **Per-key order.** All clicks of a user go to one shard (partition key = user id) and are
//!   produced with `preserve_order`, so they arrive in `seq` order and `last_seq` is enough to
//!   recognise a replay.
//! - **Conditional writes.** The write is conditioned on the `last_seq` it was computed from, so
//!   if two workers briefly both process a shard (a lease moving), one write fails, and the loser
//!   rereads and refolds instead of overwriting.
//! - **Checkpoints after writes.** A crash between the write and the checkpoint only replays.
//!
//! The run proves it: after the live application has caught up, a second application with a
//! fresh lease table (as after a redeploy that lost its checkpoints) replays the whole stream
//! from TRIM_HORIZON into the same table, and every click must be skipped. The report compares
//! each stored item with features recomputed from the acknowledged clicks.
//!
//! # Running it
//! ```text
//! cargo run -p examples --bin clickstream_features -- --duration 10 --rate 500
//! cargo run -p examples --bin clickstream_features -- --endpoint http://127.0.0.1:4567
//! AWS_PROFILE=dev AWS_REGION=eu-west-1 cargo run -p examples --bin clickstream_features -- --aws
//! ```
//! The binary runs on an in-process engine unless `--endpoint` or the AWS configuration names
//! another place (see [`crate::scenarios::cli`]).

pub mod model;
pub mod store;
pub mod writer;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::app::Worker;
use super::resources::Resources;
use super::{Clients, kcl_config, produce, wait_until};
use crate::verdict::{self, SharedActivity, Verdict};
use model::{ClickGenerator, Features};
use writer::{Counters, SharedCounters, WriterFactory, lock};

/// How to run the scenario.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long to produce.
    pub duration: Duration,
    /// Clicks per second.
    pub rate: u64,
    /// Distinct users.
    pub users: usize,
    /// Shards of the stream.
    pub shards: i32,
    /// Workers of the live application.
    pub workers: usize,
    /// How many recent pages a user's features keep.
    pub recent: usize,
    /// Seed of the click generator.
    pub seed: u64,
    /// Replay the whole stream with a second application after the first caught up.
    pub replay: bool,
    /// Longest wait for an application to catch up after producing stopped.
    pub catch_up_timeout: Duration,
    /// Appended to every stream, table and application name.
    pub suffix: String,
    /// How the consumer applications read their shards (default: enhanced fan-out).
    pub retrieval: kcl::Retrieval,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retrieval: kcl::Retrieval::fan_out(),
            duration: Duration::from_secs(10),
            rate: 200,
            users: 50,
            shards: 2,
            workers: 2,
            recent: 10,
            seed: 7,
            replay: true,
            catch_up_timeout: Duration::from_secs(60),
            suffix: String::new(),
        }
    }
}

/// What happened, and whether the table is right.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Users with acknowledged clicks.
    pub users: usize,
    /// Clicks the producer got acknowledged.
    pub events: u64,
    /// Clicks the producer failed to deliver, each counted once.
    pub producer_failures: u64,
    /// Shards two workers processed at the same time (live and replay applications).
    pub overlapping_shards: u64,
    /// Items in the feature table.
    pub stored_users: usize,
    /// Users whose stored features differ from the recomputed ones (missing ones included).
    pub mismatched: Vec<String>,
    /// Whether the live application caught up before the timeout.
    pub caught_up: bool,
    /// Clicks the live application applied (exactly `events` if nothing double-counted).
    pub applied: u64,
    /// Clicks the live application skipped as already applied.
    pub skipped: u64,
    /// Conditional writes the live application lost and redid.
    pub conflicts: u64,
    /// Records that were not clicks.
    pub malformed: u64,
    /// Whether the replay ran and read every user's last click.
    pub replay_complete: Option<bool>,
    /// Clicks the replay skipped (all of them, if the guard works).
    pub replay_skipped: u64,
    /// Clicks the replay applied: must be 0.
    pub replay_applied: u64,
    /// The stored features of the most active user, as an example.
    pub busiest: Option<Features>,
}

impl Report {
    /// The checks: clicks acknowledged and none failed, no shard processed by two workers at
    /// once, the table equal to the recomputation, nothing counted twice.
    pub fn verdict(&self) -> Verdict {
        let mut verdict = verdict::Delivery {
            acknowledged: self.events,
            producer_failures: self.producer_failures,
            overlapping_shards: self.overlapping_shards,
            // Losses and order show as items that differ from the recomputation.
            ..verdict::Delivery::default()
        }
        .verdict();
        verdict
            .require(self.caught_up, "the live application did not catch up")
            .require_none(self.malformed, "records that were not clicks")
            .require_none(
                self.mismatched.len() as u64,
                "users whose features differ from the recomputation",
            )
            .require(
                self.stored_users == self.users,
                format!(
                    "{} users in the table, {} expected",
                    self.stored_users, self.users
                ),
            )
            .require(
                self.applied == self.events,
                format!(
                    "{} clicks applied, {} acknowledged",
                    self.applied, self.events
                ),
            )
            .require(
                self.replay_complete != Some(false),
                "the replay did not finish",
            )
            .require_none(self.replay_applied, "clicks applied again by the replay");
        verdict
    }

    /// Whether every check of [`Report::verdict`] passed.
    pub fn ok(&self) -> bool {
        self.verdict().ok()
    }
}

/// The names of what a run creates, each with [`Options::suffix`] appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The clickstream.
    pub stream: String,
    /// The feature table.
    pub table: String,
    /// The live application, and its lease table.
    pub app: String,
    /// The replaying application, and its lease table.
    pub replay_app: String,
}

impl Names {
    /// The names for `options`.
    pub fn new(options: &Options) -> Self {
        let suffix = &options.suffix;
        Self {
            stream: format!("clickstream{suffix}"),
            table: format!("user-features{suffix}"),
            app: format!("feature-writer{suffix}"),
            replay_app: format!("feature-writer{suffix}-replay"),
        }
    }
}

/// What a run with `options` creates: the stream, the feature table and the lease tables (the
/// replay's if it replays).
pub fn resources(options: &Options) -> Resources {
    let names = Names::new(options);
    let mut tables = vec![names.table, names.app];
    if options.replay {
        tables.push(names.replay_app);
    }
    Resources {
        streams: vec![names.stream],
        tables,
    }
}

/// Runs the scenario against `clients` (see [`resources`] for what it creates).
pub async fn run(clients: &Clients, options: &Options) -> Result<Report> {
    let Names {
        stream,
        table,
        app,
        replay_app,
    } = Names::new(options);
    crate::clients::create_stream(&clients.kinesis, &stream, options.shards).await?;
    store::create_table(&clients.dynamodb, &table).await?;

    let live = Arc::new(std::sync::Mutex::new(Counters::default()));
    let (live_activity, replay_activity) = (SharedActivity::default(), SharedActivity::default());
    let factory = |counters: &SharedCounters, activity: &SharedActivity| WriterFactory {
        ddb: clients.dynamodb.clone(),
        table: table.clone(),
        recent: options.recent,
        counters: counters.clone(),
        activity: activity.clone(),
    };
    let workers = (1..=options.workers.max(1))
        .map(|n| {
            let id = format!("worker-{n}");
            let factory = factory(&live, &live_activity);
            Worker::start(
                clients,
                &app,
                &stream,
                &id,
                factory,
                kcl_config(&options.retrieval),
            )
        })
        .collect::<Result<Vec<_>>>()?;

    let producer = produce::producer(&clients.kinesis, &stream).await?;
    let mut generator = ClickGenerator::new(options.users, options.seed);
    let produced = produce::paced(&producer, options.rate, options.duration, || {
        let click = generator.next_click();
        let data = serde_json::to_vec(&click).unwrap_or_default();
        (kpl::Record::new(click.user.clone(), data), click)
    })
    .await?;
    // `paced` settled every put, each failure counted once there: nothing is left unsent.
    producer.shutdown(Duration::from_secs(5)).await;
    let expected = model::recompute(&produced.acked, options.recent);

    // Caught up when every user's item has its last acknowledged click.
    let caught_up = wait_until(options.catch_up_timeout, || async {
        let stored = store::scan(&clients.dynamodb, &table).await?;
        Ok(expected.values().all(|f| {
            stored
                .get(&f.user)
                .is_some_and(|s| s.last_seq >= f.last_seq)
        }))
    })
    .await?;
    for worker in workers {
        worker.stop().await?;
    }

    let replay = Arc::new(std::sync::Mutex::new(Counters::default()));
    let replay_complete = if options.replay {
        let worker = Worker::start(
            clients,
            &replay_app,
            &stream,
            "replayer",
            factory(&replay, &replay_activity),
            kcl_config(&options.retrieval),
        )?;
        let complete = wait_until(options.catch_up_timeout, || async {
            let counters = lock(&replay);
            Ok(expected
                .values()
                .all(|f| counters.seen.get(&f.user).is_some_and(|&s| s >= f.last_seq)))
        })
        .await?;
        worker.stop().await?;
        Some(complete)
    } else {
        None
    };

    let stored = store::scan(&clients.dynamodb, &table).await?;
    let mut mismatched: Vec<String> = expected
        .values()
        .filter(|f| stored.get(&f.user) != Some(*f))
        .map(|f| f.user.clone())
        .chain(
            stored
                .keys()
                .filter(|u| !expected.contains_key(*u))
                .cloned(),
        )
        .collect();
    mismatched.sort();
    let (live, replay) = (lock(&live), lock(&replay));
    Ok(Report {
        users: expected.len(),
        events: produced.acked.len() as u64,
        producer_failures: produced.failures,
        overlapping_shards: live_activity.overlapping_shards()
            + replay_activity.overlapping_shards(),
        stored_users: stored.len(),
        mismatched,
        caught_up,
        applied: live.applied,
        skipped: live.skipped,
        conflicts: live.conflicts + replay.conflicts,
        malformed: live.malformed + replay.malformed,
        replay_complete,
        replay_skipped: replay.skipped,
        replay_applied: replay.applied,
        busiest: stored
            .into_values()
            .max_by_key(|f| (f.clicks, f.user.clone())),
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "produced {} clicks of {} users ({} failed); {} shards processed by two workers at once",
            self.events, self.users, self.producer_failures, self.overlapping_shards
        )?;
        writeln!(
            f,
            "live app: applied {}, skipped {} as already applied, {} write conflicts{}",
            self.applied,
            self.skipped,
            self.conflicts,
            if self.caught_up {
                ""
            } else {
                ", DID NOT CATCH UP"
            }
        )?;
        if let Some(complete) = self.replay_complete {
            writeln!(
                f,
                "replay from TRIM_HORIZON: skipped {}, applied {} (must be 0){}",
                self.replay_skipped,
                self.replay_applied,
                if complete { "" } else { ", DID NOT FINISH" }
            )?;
        }
        writeln!(
            f,
            "feature table: {} users, {} differ from the recomputation{}",
            self.stored_users,
            self.mismatched.len(),
            match self.mismatched.first() {
                Some(user) => format!(" (first: {user})"),
                None => String::new(),
            }
        )?;
        if let Some(b) = &self.busiest {
            writeln!(
                f,
                "busiest {}: {} clicks, {} sessions, {} distinct pages, {} checkouts in the last {}",
                b.user,
                b.clicks,
                b.sessions,
                b.distinct_pages.len(),
                b.recent_checkouts(),
                b.recent_pages.len()
            )?;
        }
        write!(f, "result: {}", self.verdict())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> Report {
        Report {
            users: 2,
            events: 10,
            stored_users: 2,
            caught_up: true,
            applied: 10,
            replay_complete: Some(true),
            replay_skipped: 10,
            ..Report::default()
        }
    }

    #[test]
    fn the_verdict_fails_on_nothing_acknowledged_failed_puts_and_overlaps() {
        assert!(clean().ok(), "{}", clean().verdict());
        let nothing = Report {
            users: 0,
            events: 0,
            stored_users: 0,
            applied: 0,
            replay_skipped: 0,
            ..clean()
        };
        assert_eq!(
            nothing.verdict().reasons,
            ["no record was acknowledged by the producer"]
        );
        let failed = Report {
            producer_failures: 1,
            ..clean()
        };
        assert_eq!(
            failed.verdict().reasons,
            ["1 unexpected producer failures (must be 0)"]
        );
        let overlapped = Report {
            overlapping_shards: 1,
            ..clean()
        };
        assert_eq!(
            overlapped.verdict().reasons,
            ["1 shards processed by two workers at the same time (must be 0)"]
        );
    }
}

//! IoT telemetry anomaly alerts: per-device rolling statistics, alerts to a second stream.
//!
//! # The situation
//! Machines on a factory floor report temperature and vibration a few times a second. An
//! overheating bearing or a loose mount shows as a reading far outside the device's own recent
//! behaviour; the maintenance team wants an alert for each, and nothing else (alert fatigue is
//! why fixed thresholds are not used: every device has its own normal level).
//!
//! # Data flow
//! ```text
//! devices --kpl, key = device--> stream `telemetry` --kcl app `anomaly-detector`--kpl--> stream `alerts`
//! ```
//! An [`processor::AlertProcessor`] keeps, per device, an exponentially weighted moving mean and
//! variance of each metric ([`model::observe`]). After a warm-up, a reading more than
//! [`model::Z_THRESHOLD`] standard deviations from the mean raises an alert (and is kept out of
//! the statistics, so one spike does not hide the next). Alerts are put on the `alerts` stream,
//! keyed by device, for pagers and dashboards to consume.
//!
//! # Guarantees it relies on
//! - **Per-key order.** A device's readings all go to one shard and arrive in order, so its
//!   statistics see the same sequence the device sent; the detection is deterministic.
//! - **At-least-once, end to end.** A batch is checkpointed only after the producer confirmed
//!   every alert it raised; if a put fails, the batch is processed again from the statistics as
//!   they were before it. An alert can therefore be published twice (consumers dedupe by device
//!   and `seq`), but never lost.
//! - **Checkpoints with in-memory state.** The statistics live in the processor: a worker that
//!   takes a shard over starts cold and does not alert during its warm-up. This run uses one
//!   worker; a fleet would store the statistics next to the checkpoint (e.g. in a DynamoDB item
//!   per shard written before each checkpoint) and load them in `initialize`.
//!
//! The simulated devices ([`model::Devices`]) inject spikes at known readings; noise is bounded
//! and the detector's standard deviation has a floor, so a normal reading can never alert. The
//! report reads the `alerts` stream back and checks each injected anomaly was alerted, with no
//! false positives.
//!
//! # Running it
//! ```text
//! cargo run -p examples --bin iot_alerts -- --duration 10 --devices 20
//! cargo run -p examples --bin iot_alerts -- --endpoint http://127.0.0.1:4567
//! AWS_PROFILE=dev AWS_REGION=eu-west-1 cargo run -p examples --bin iot_alerts -- --aws
//! ```
//! The binary runs on an in-process engine unless `--endpoint` or the AWS configuration names
//! another place (see [`crate::scenarios::cli`]).

pub mod model;
pub mod processor;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;

use super::app::Worker;
use super::resources::Resources;
use super::{Clients, kcl_config, produce, read, wait_until};
use crate::verdict::{self, SharedActivity, Verdict};
use model::{Alert, Devices, Metric};
use processor::{AlertFactory, Progress};

/// How to run the scenario.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long devices report.
    pub duration: Duration,
    /// Readings per second, over all devices.
    pub rate: u64,
    /// Devices.
    pub devices: usize,
    /// Shards of the telemetry stream.
    pub shards: i32,
    /// Seed of the simulation.
    pub seed: u64,
    /// Longest wait for the detector to catch up after the devices stopped.
    pub catch_up_timeout: Duration,
    /// Appended to every stream and application name.
    pub suffix: String,
    /// How the consumer applications read their shards (default: enhanced fan-out).
    pub retrieval: kcl::Retrieval,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retrieval: kcl::Retrieval::fan_out(),
            duration: Duration::from_secs(10),
            rate: 100,
            devices: 8,
            shards: 2,
            seed: 3,
            catch_up_timeout: Duration::from_secs(60),
            suffix: String::new(),
        }
    }
}

/// A reading's identity: device and `seq`.
pub type ReadingId = (String, u64);

/// What the alerts stream holds, against what was injected.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Readings the producer got acknowledged.
    pub readings: u64,
    /// Readings (and alerts) the producers failed to deliver, each counted once.
    pub producer_failures: u64,
    /// Shards two detectors processed at the same time.
    pub overlapping_shards: u64,
    /// Devices that reported.
    pub devices: usize,
    /// Anomalies injected into acknowledged readings.
    pub injected: usize,
    /// Alert records on the alerts stream (duplicates included).
    pub alert_records: usize,
    /// Distinct readings alerted.
    pub alerted: usize,
    /// Injected anomalies without an alert.
    pub missed: Vec<ReadingId>,
    /// Alerts for readings that were normal.
    pub false_positives: Vec<ReadingId>,
    /// Alerts naming another metric than the one injected.
    pub wrong_metric: usize,
    /// Records on either stream that did not parse.
    pub malformed: u64,
    /// Whether the detector caught up before the timeout.
    pub caught_up: bool,
    /// The alert with the largest z-score, as an example.
    pub strongest: Option<Alert>,
}

impl Report {
    /// The checks: readings acknowledged and none failed, no shard processed by two detectors
    /// at once, every anomaly alerted on the right metric, and nothing else alerted.
    pub fn verdict(&self) -> Verdict {
        let mut verdict = verdict::Delivery {
            acknowledged: self.readings,
            producer_failures: self.producer_failures,
            overlapping_shards: self.overlapping_shards,
            // A lost or reordered reading shows as a missed or a false alert.
            ..verdict::Delivery::default()
        }
        .verdict();
        verdict
            .require(self.caught_up, "the detector did not catch up")
            .require_none(self.malformed, "records that did not parse")
            .require_none(self.missed.len() as u64, "anomalies without an alert")
            .require_none(
                self.false_positives.len() as u64,
                "alerts for normal readings",
            )
            .require_none(self.wrong_metric as u64, "alerts on the wrong metric");
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
    /// The telemetry stream.
    pub telemetry: String,
    /// The alerts stream.
    pub alerts: String,
    /// The detector application, and its lease table.
    pub app: String,
}

impl Names {
    /// The names for `options`.
    pub fn new(options: &Options) -> Self {
        let suffix = &options.suffix;
        Self {
            telemetry: format!("telemetry{suffix}"),
            alerts: format!("alerts{suffix}"),
            app: format!("anomaly-detector{suffix}"),
        }
    }
}

/// What a run with `options` creates: the two streams and the lease table.
pub fn resources(options: &Options) -> Resources {
    let names = Names::new(options);
    Resources {
        streams: vec![names.telemetry, names.alerts],
        tables: vec![names.app],
    }
}

/// Runs the scenario against `clients` (see [`resources`] for what it creates).
pub async fn run(clients: &Clients, options: &Options) -> Result<Report> {
    let Names {
        telemetry,
        alerts,
        app,
    } = Names::new(options);
    crate::clients::create_stream(&clients.kinesis, &telemetry, options.shards).await?;
    crate::clients::create_stream(&clients.kinesis, &alerts, 1).await?;

    let alert_producer = produce::producer(&clients.kinesis, &alerts).await?;
    let progress = Progress::default();
    let malformed = Arc::new(Mutex::new(0));
    let activity = SharedActivity::default();
    let factory = AlertFactory {
        alerts: alert_producer.clone(),
        progress: progress.clone(),
        malformed: malformed.clone(),
        activity: activity.clone(),
    };
    let worker = Worker::start(
        clients,
        &app,
        &telemetry,
        "detector-1",
        factory,
        kcl_config(&options.retrieval),
    )?;

    let producer = produce::producer(&clients.kinesis, &telemetry).await?;
    let mut devices = Devices::new(options.devices, options.seed);
    let produced = produce::paced(&producer, options.rate, options.duration, || {
        let (reading, anomaly) = devices.next_reading();
        let data = serde_json::to_vec(&reading).unwrap_or_default();
        let id = (reading.device.clone(), reading.seq);
        (kpl::Record::new(reading.device, data), (id, anomaly))
    })
    .await?;
    // `paced` settled every put, each failure counted once there: nothing is left unsent.
    producer.shutdown(Duration::from_secs(5)).await;

    let mut last: HashMap<String, u64> = HashMap::new();
    for ((device, seq), _) in &produced.acked {
        let entry = last.entry(device.clone()).or_insert(*seq);
        *entry = (*entry).max(*seq);
    }
    let caught_up = wait_until(options.catch_up_timeout, || async {
        let done = progress.lock().unwrap_or_else(|e| e.into_inner());
        Ok(last
            .iter()
            .all(|(device, seq)| done.get(device).is_some_and(|d| d >= seq)))
    })
    .await?;
    worker.stop().await?;
    // Processors await each alert, so this is only what a stopped worker left behind.
    let unsent_alerts = alert_producer.shutdown(Duration::from_secs(5)).await.len() as u64;

    let injected: HashMap<ReadingId, Metric> = produced
        .acked
        .iter()
        .filter_map(|(id, anomaly)| anomaly.map(|m| (id.clone(), m)))
        .collect();
    let mut report = Report {
        readings: produced.acked.len() as u64,
        producer_failures: produced.failures + unsent_alerts,
        overlapping_shards: activity.overlapping_shards(),
        devices: last.len(),
        injected: injected.len(),
        caught_up,
        malformed: *malformed.lock().unwrap_or_else(|e| e.into_inner()),
        ..Report::default()
    };
    let mut alerted = HashSet::new();
    for record in read::read_all(&clients.kinesis, &alerts).await? {
        report.alert_records += 1;
        let Ok(alert) = serde_json::from_slice::<Alert>(&record.data) else {
            report.malformed += 1;
            continue;
        };
        let id = (alert.device.clone(), alert.seq);
        match injected.get(&id) {
            None => report.false_positives.push(id.clone()),
            Some(metric) if *metric != alert.metric => report.wrong_metric += 1,
            Some(_) => {}
        }
        alerted.insert(id);
        if report.strongest.as_ref().is_none_or(|s| s.z < alert.z) {
            report.strongest = Some(alert);
        }
    }
    report.alerted = alerted.len();
    report.false_positives.sort();
    report.false_positives.dedup();
    report.missed = injected
        .keys()
        .filter(|id| !alerted.contains(*id))
        .cloned()
        .collect();
    report.missed.sort();
    Ok(report)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} readings from {} devices ({} failed), {} anomalies injected{}",
            self.readings,
            self.devices,
            self.producer_failures,
            self.injected,
            if self.caught_up {
                ""
            } else {
                "; detector DID NOT CATCH UP"
            }
        )?;
        writeln!(
            f,
            "alerts stream: {} records, {} distinct readings alerted",
            self.alert_records, self.alerted
        )?;
        writeln!(
            f,
            "missed {}, false positives {}, wrong metric {}, malformed {}, shards processed by two detectors at once {}",
            self.missed.len(),
            self.false_positives.len(),
            self.wrong_metric,
            self.malformed,
            self.overlapping_shards
        )?;
        if let Some(a) = &self.strongest {
            writeln!(
                f,
                "strongest: {} reading {}: {:?} {:.2} (z = {:.0})",
                a.device, a.seq, a.metric, a.value, a.z
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
            readings: 10,
            devices: 2,
            caught_up: true,
            ..Report::default()
        }
    }

    #[test]
    fn the_verdict_fails_on_nothing_acknowledged_failed_puts_and_overlaps() {
        assert!(clean().ok(), "{}", clean().verdict());
        let nothing = Report {
            readings: 0,
            ..clean()
        };
        assert_eq!(
            nothing.verdict().reasons,
            ["no record was acknowledged by the producer"]
        );
        let failed = Report {
            producer_failures: 2,
            ..clean()
        };
        assert_eq!(
            failed.verdict().reasons,
            ["2 unexpected producer failures (must be 0)"]
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

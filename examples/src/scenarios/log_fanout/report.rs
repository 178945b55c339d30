//! The verdict of a fan-out run.

use std::fmt;
use std::time::Duration;

use super::apps::Rate;

/// How one application did.
#[derive(Clone, Debug, Default)]
pub struct AppReport {
    /// Application (and lease table) name.
    pub name: String,
    /// Whether it read every line before the timeout.
    pub caught_up: bool,
    /// When it started, from the start of the run.
    pub started_at: Duration,
    /// When it had every line (or gave up), from the start of the run.
    pub caught_up_at: Duration,
    /// Lines handed to it, redeliveries included.
    pub deliveries: u64,
    /// Distinct lines it has.
    pub distinct: u64,
    /// Acknowledged lines it does not have. Must be 0.
    pub lost: u64,
    /// Shards with a checkpoint in its own lease table.
    pub checkpointed_shards: usize,
}

/// What both applications saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Lines the producer got acknowledged.
    pub lines: u64,
    /// Lines the producer failed to deliver.
    pub producer_failures: u64,
    /// Shards of the stream.
    pub shards: usize,
    /// The archiver.
    pub archiver: AppReport,
    /// The error monitor.
    pub monitor: AppReport,
    /// Per service: (name, rate in the produced lines, rate the monitor counted).
    pub services: Vec<(String, Rate, Rate)>,
    /// Records either application could not parse.
    pub malformed: u64,
}

impl Report {
    /// Whether each application has every line, with its own checkpoints, and the monitor's
    /// counts are exact.
    pub fn ok(&self) -> bool {
        let app_ok = |a: &AppReport| {
            a.caught_up
                && a.lost == 0
                && a.distinct == self.lines
                && a.checkpointed_shards >= self.shards
        };
        self.producer_failures == 0
            && self.malformed == 0
            && app_ok(&self.archiver)
            && app_ok(&self.monitor)
            && self.services.iter().all(|(_, want, got)| want == got)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "produced {} lines over {} shards ({} failed)",
            self.lines, self.shards, self.producer_failures
        )?;
        for app in [&self.archiver, &self.monitor] {
            writeln!(
                f,
                "{:<16} started {:>5.1}s, {} at {:>5.1}s: {} lines ({} deliveries), lost {}, {} shards checkpointed",
                app.name,
                app.started_at.as_secs_f64(),
                if app.caught_up {
                    "caught up"
                } else {
                    "GAVE UP"
                },
                app.caught_up_at.as_secs_f64(),
                app.distinct,
                app.deliveries,
                app.lost,
                app.checkpointed_shards
            )?;
        }
        for (service, want, got) in &self.services {
            writeln!(
                f,
                "  {service:<10} error rate {:>5.1}% ({} of {} lines){}",
                got.error_rate() * 100.0,
                got.errors,
                got.lines,
                if want == got { "" } else { " MISMATCH" }
            )?;
        }
        write!(f, "result: {}", if self.ok() { "OK" } else { "FAILED" })
    }
}

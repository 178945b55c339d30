//! The verdict of a fan-out run.

use std::fmt;
use std::time::Duration;

use super::apps::Rate;
use crate::verdict::{self, Verdict};

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
    /// Shards two of its processors processed at the same time. Must be 0.
    pub overlapping_shards: u64,
}

/// What both applications saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Lines the producer got acknowledged.
    pub lines: u64,
    /// Lines the producer failed to deliver, each counted once.
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
    /// The checks: lines acknowledged and none failed; each application has every line, with
    /// its own checkpoints, and never had two processors on one shard at once; the monitor's
    /// counts are exact.
    pub fn verdict(&self) -> Verdict {
        let mut verdict = verdict::Delivery {
            acknowledged: self.lines,
            producer_failures: self.producer_failures,
            overlapping_shards: self.archiver.overlapping_shards + self.monitor.overlapping_shards,
            ..verdict::Delivery::default()
        }
        .verdict();
        verdict.require_none(self.malformed, "records that did not parse");
        for app in [&self.archiver, &self.monitor] {
            let name = &app.name;
            verdict
                .require(app.caught_up, format!("{name} did not catch up"))
                .require_none(app.lost, &format!("lines lost by {name}"))
                .require(
                    app.distinct == self.lines,
                    format!("{name} has {} lines of {}", app.distinct, self.lines),
                )
                .require(
                    app.checkpointed_shards >= self.shards,
                    format!(
                        "{name} checkpointed {} shards of {}",
                        app.checkpointed_shards, self.shards
                    ),
                );
        }
        for (service, want, got) in &self.services {
            verdict.require(
                want == got,
                format!("the monitor's counts for {service} differ from what was produced"),
            );
        }
        verdict
    }

    /// Whether every check of [`Report::verdict`] passed.
    pub fn ok(&self) -> bool {
        self.verdict().ok()
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
                "{:<16} started {:>5.1}s, {} at {:>5.1}s: {} lines ({} deliveries), lost {}, {} shards checkpointed, {} processed by two at once",
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
                app.checkpointed_shards,
                app.overlapping_shards
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
        write!(f, "result: {}", self.verdict())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, lines: u64) -> AppReport {
        AppReport {
            name: name.into(),
            caught_up: true,
            distinct: lines,
            deliveries: lines,
            checkpointed_shards: 2,
            ..AppReport::default()
        }
    }

    fn clean() -> Report {
        Report {
            lines: 10,
            shards: 2,
            archiver: app("archiver", 10),
            monitor: app("monitor", 10),
            ..Report::default()
        }
    }

    #[test]
    fn the_verdict_fails_on_nothing_acknowledged_failed_puts_and_overlaps() {
        assert!(clean().ok(), "{}", clean().verdict());
        let nothing = Report {
            lines: 0,
            archiver: app("archiver", 0),
            monitor: app("monitor", 0),
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
            monitor: AppReport {
                overlapping_shards: 1,
                ..app("monitor", 10)
            },
            ..clean()
        };
        assert_eq!(
            overlapped.verdict().reasons,
            ["1 shards processed by two workers at the same time (must be 0)"]
        );
    }
}

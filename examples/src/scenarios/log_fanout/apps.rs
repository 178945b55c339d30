//! The two consumer applications: an archiver and an error-rate monitor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kcl::{Checkpointer, ProcessRecordsInput, ProcessorError, RecordProcessor};

use super::model::{Level, LogLine};
use crate::verdict::ProcessorActivity;

/// Shared state of an application's processors.
#[derive(Debug, Default)]
pub struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Shared<T> {
    /// Locks the state (updates are plain additions, so a poisoned lock is still consistent).
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the archiver stored: per service, the (source, seq) of every line, in arrival order.
/// An archive is append-only, so a redelivered line is stored twice; readers dedupe by key.
#[derive(Debug, Default)]
pub struct Archive {
    /// Lines per service.
    pub lines: HashMap<String, Vec<(String, u64)>>,
    /// Records that were not log lines.
    pub malformed: u64,
}

/// Appends each batch to the archive, then checkpoints (at least once: a crash in between
/// stores the batch again). The second field tells when another archiver works on the shard at
/// the same time.
#[derive(Debug)]
pub struct Archiver(pub Shared<Archive>, pub ProcessorActivity);

impl RecordProcessor for Archiver {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let _batch = self.1.begin();
        self.process(input, checkpointer).await
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

impl Archiver {
    /// Appends the batch, then checkpoints.
    async fn process(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        {
            let mut archive = self.0.lock();
            for record in &input.records {
                match serde_json::from_slice::<LogLine>(&record.data) {
                    Ok(line) => archive
                        .lines
                        .entry(line.service)
                        .or_default()
                        .push((line.source, line.seq)),
                    Err(_) => archive.malformed += 1,
                }
            }
        }
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

/// Lines and errors of a service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rate {
    /// Lines.
    pub lines: u64,
    /// Error lines.
    pub errors: u64,
}

impl Rate {
    /// Errors per line.
    pub fn error_rate(&self) -> f64 {
        self.errors as f64 / self.lines.max(1) as f64
    }
}

/// What the error monitor counted.
#[derive(Debug, Default)]
pub struct Rates {
    /// Per service.
    pub services: HashMap<String, Rate>,
    /// Last line counted per source: lines of a source arrive in order, so a line not above it
    /// is a redelivery and is not counted again.
    pub last_seq: HashMap<String, u64>,
    /// Redelivered lines ignored.
    pub redelivered: u64,
    /// Records that were not log lines.
    pub malformed: u64,
}

/// Counts lines and errors per service, taking `delay_per_line` for each line (a slow
/// downstream, such as a rate-limited metrics API).
#[derive(Debug)]
pub struct ErrorMonitor {
    /// Where counts go.
    pub rates: Shared<Rates>,
    /// Time each line takes.
    pub delay_per_line: Duration,
    /// Tells when another monitor works on this shard at the same time.
    pub activity: ProcessorActivity,
}

impl RecordProcessor for ErrorMonitor {
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let _batch = self.activity.begin();
        self.process(input, checkpointer).await
    }

    async fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

impl ErrorMonitor {
    /// Counts the batch, then checkpoints.
    async fn process(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        let lines = input.records.len() as u32;
        tokio::time::sleep(self.delay_per_line * lines).await;
        {
            let mut rates = self.rates.lock();
            for record in &input.records {
                let Ok(line) = serde_json::from_slice::<LogLine>(&record.data) else {
                    rates.malformed += 1;
                    continue;
                };
                if rates
                    .last_seq
                    .get(&line.source)
                    .is_some_and(|&l| line.seq <= l)
                {
                    rates.redelivered += 1;
                    continue;
                }
                rates.last_seq.insert(line.source, line.seq);
                let rate = rates.services.entry(line.service).or_default();
                rate.lines += 1;
                rate.errors += u64::from(line.level == Level::Error);
            }
        }
        checkpointer.checkpoint().await?;
        Ok(())
    }
}

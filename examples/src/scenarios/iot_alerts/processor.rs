//! The `kcl` record processor that watches readings and publishes alerts with `kpl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kcl::{
    Checkpointer, ProcessRecordsInput, ProcessorError, RecordProcessor, RecordProcessorFactory,
};

use super::model::{Detector, Reading, observe};
use crate::verdict::{ProcessorActivity, SharedActivity};

/// Per device, the last reading whose alerts are delivered and whose batch is checkpointed.
pub type Progress = Arc<Mutex<HashMap<String, u64>>>;

/// Keeps per-device statistics of one shard and publishes an alert per anomalous reading.
#[derive(Debug)]
pub struct AlertProcessor {
    detector: Detector,
    alerts: kpl::Producer,
    progress: Progress,
    malformed: Arc<Mutex<u64>>,
    /// Tells when another processor works on this shard at the same time.
    activity: ProcessorActivity,
}

impl RecordProcessor for AlertProcessor {
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

impl AlertProcessor {
    /// Publishes the batch's alerts, then checkpoints.
    async fn process(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> Result<(), ProcessorError> {
        // Work on a copy: if publishing fails, the batch comes again and must meet the
        // statistics as they were, or its alerts would be lost as "already seen".
        let mut staged = self.detector.clone();
        let mut deliveries = Vec::new();
        let mut last_seq = HashMap::new();
        for record in &input.records {
            let Ok(reading) = serde_json::from_slice::<Reading>(&record.data) else {
                // Retrying cannot fix a bad record; it is counted and the report fails.
                *self.malformed.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                continue;
            };
            for alert in observe(&mut staged, &reading) {
                let data = serde_json::to_vec(&alert)?;
                let record = kpl::Record::new(alert.device.clone(), data);
                deliveries.push(self.alerts.put(record).await?);
            }
            last_seq.insert(reading.device, reading.seq);
        }
        // At least once: the checkpoint moves past a reading only once its alerts are stored.
        for delivery in deliveries {
            delivery.await?;
        }
        self.detector = staged;
        checkpointer.checkpoint().await?;
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        for (device, seq) in last_seq {
            let entry = progress.entry(device).or_insert(seq);
            *entry = (*entry).max(seq);
        }
        Ok(())
    }
}

/// Creates an [`AlertProcessor`] per shard, all publishing through one producer.
#[derive(Clone, Debug)]
pub struct AlertFactory {
    /// Producer for the alerts stream.
    pub alerts: kpl::Producer,
    /// Where processors report progress.
    pub progress: Progress,
    /// Records that were not readings.
    pub malformed: Arc<Mutex<u64>>,
    /// Which processor handles each shard, to catch two at once.
    pub activity: SharedActivity,
}

impl RecordProcessorFactory for AlertFactory {
    type Processor = AlertProcessor;

    fn create(&self, shard_id: &str) -> AlertProcessor {
        AlertProcessor {
            // A new owner of a shard starts cold; see the module docs.
            detector: Detector::new(),
            alerts: self.alerts.clone(),
            progress: self.progress.clone(),
            malformed: self.malformed.clone(),
            activity: self.activity.processor(shard_id),
        }
    }
}

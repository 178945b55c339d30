//! Changes of what AWS keeps for a stream, a consumer or the account (settings, tags,
//! policies), made durable before they become visible: the change is planned on a copy of the
//! persistent description, the metadata with the copy is saved, and only then does the copy
//! take effect.

use crate::error::ApiError;
use crate::model::registry::Pending;
use crate::model::settings::AccountSettings;
use crate::model::stream::{Stream, StreamMeta};

use super::Kinesis;

impl Kinesis {
    /// Changes the settings, tags, retention period, or consumers' tags and policies of
    /// `stream` through `edit` on its persistent description; other changes `edit` makes to the description are
    /// ignored. Consumers are neither added nor removed here.
    pub(crate) fn keep<T>(
        &self,
        stream: &Stream,
        edit: impl FnOnce(&mut StreamMeta) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _guard = self.control.lock();
        let mut meta = {
            let state = stream.state.lock();
            if state.deleted {
                return Err(self.stream_not_found(&stream.name));
            }
            state.to_meta(stream)
        };
        let value = edit(&mut meta)?;
        self.save_metadata(Pending::Kept(stream.id, &meta))?;
        let mut state = stream.state.lock();
        state.settings = meta.settings;
        state.tags = meta.tags;
        state.retention_hours = meta.retention_hours;
        for kept in meta.consumers {
            if let Some(live) = state.consumers.get_mut(&kept.name) {
                live.tags = kept.tags;
                live.policy = kept.policy;
            }
        }
        Ok(value)
    }

    /// Changes the account settings through `edit` on a copy, saved before it takes effect.
    pub(crate) fn keep_account<T>(
        &self,
        edit: impl FnOnce(&mut AccountSettings) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _guard = self.control.lock();
        let mut account = self.registry.account.lock().clone();
        let value = edit(&mut account)?;
        self.save_metadata(Pending::Account(&account))?;
        *self.registry.account.lock() = account;
        Ok(value)
    }
}

/// Crash points: each kept change runs on a simulated disk that fails, or crashes at, each of
/// its operations in turn. A change that failed is not visible; after recovery from what the
/// disk kept, every acknowledged change is there.
#[cfg(test)]
mod tests {

    use std::sync::Arc;

    use serde_json::{Value, json};

    use crate::clock::ManualClock;
    use crate::error::ApiError;

    use crate::kinesis::{Kinesis, dispatch};

    use crate::storage::wal::SyncMode;
    use crate::storage::wal::sim_fs::{CrashImage, SimFs};

    use crate::kinesis::sim_service::durable_service;
    const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/kept";
    const POLICY: &str =
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"}]}"#;

    fn service(fs: &SimFs, sync: SyncMode) -> Option<Kinesis> {
        durable_service(fs, sync, Arc::new(ManualClock::new(1_750_000_000_000)))
    }

    async fn call(kinesis: &Kinesis, operation: &str, body: Value) -> Result<Value, ApiError> {
        let out = dispatch(kinesis, operation, body.to_string().as_bytes()).await;
        out.map(|bytes| serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// The kept changes of the scenario: the request, and whether a service shows its effect.
    fn changes() -> Vec<(&'static str, Value)> {
        vec![
            (
                "EnableEnhancedMonitoring",
                json!({"StreamName": "kept", "ShardLevelMetrics": ["IncomingBytes"]}),
            ),
            (
                "PutResourcePolicy",
                json!({"ResourceARN": ARN, "Policy": POLICY}),
            ),
            (
                "TagResource",
                json!({"ResourceARN": ARN, "Tags": {"team": "core"}}),
            ),
            (
                "UpdateAccountSettings",
                json!({"MinimumThroughputBillingCommitment": {"Status": "ENABLED"}}),
            ),
            (
                "UpdateStreamRecordDistributionStrategy",
                json!({"StreamARN": ARN, "RecordDistributionStrategy": "AUTO"}),
            ),
            (
                "UpdateStreamWarmThroughput",
                json!({"StreamName": "kept", "WarmThroughputMiBps": 10}),
            ),
            (
                "AddTagsToStream",
                json!({"StreamName": "kept", "Tags": {"owner": "ops"}}),
            ),
            (
                "IncreaseStreamRetentionPeriod",
                json!({"StreamName": "kept", "RetentionPeriodHours": 48}),
            ),
        ]
    }

    /// Whether `kinesis` shows the effect of change `index` of [`changes`].
    async fn shows(kinesis: &Kinesis, index: usize) -> bool {
        let summary = || {
            call(
                kinesis,
                "DescribeStreamSummary",
                json!({"StreamName": "kept"}),
            )
        };
        match index {
            0 => summary().await.is_ok_and(|s| {
                s["StreamDescriptionSummary"]["EnhancedMonitoring"][0]["ShardLevelMetrics"]
                    == json!(["IncomingBytes"])
            }),
            1 => call(kinesis, "GetResourcePolicy", json!({"ResourceARN": ARN}))
                .await
                .is_ok_and(|p| p["Policy"] == POLICY),
            2 => has_tag(kinesis, "team", "core").await,
            3 => call(kinesis, "DescribeAccountSettings", json!({}))
                .await
                .is_ok_and(|a| a["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"),
            4 => summary().await.is_ok_and(|s| {
                s["StreamDescriptionSummary"]["RecordDistributionStrategy"] == "AUTO"
            }),
            5 => summary().await.is_ok_and(|s| {
                s["StreamDescriptionSummary"]["WarmThroughput"]["TargetMiBps"] == 10
            }),
            6 => has_tag(kinesis, "owner", "ops").await,
            7 => summary()
                .await
                .is_ok_and(|s| s["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48),
            _ => unreachable!(),
        }
    }

    /// Whether the stream has tag `key` = `value`.
    async fn has_tag(kinesis: &Kinesis, key: &str, value: &str) -> bool {
        call(kinesis, "ListTagsForResource", json!({"ResourceARN": ARN}))
            .await
            .is_ok_and(|t| {
                t["Tags"]
                    .as_array()
                    .is_some_and(|tags| tags.contains(&json!({"Key": key, "Value": value})))
            })
    }

    /// Runs the scenario on `fs`; gives the changes acknowledged. A change that failed must not
    /// be visible on the running service.
    async fn run(fs: &SimFs, sync: SyncMode, context: &str) -> Vec<usize> {
        let Some(kinesis) = service(fs, sync) else {
            return Vec::new();
        };
        let create =
            json!({"StreamName": "kept", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}});
        if call(&kinesis, "CreateStream", create).await.is_err() {
            return Vec::new();
        }
        let mut acked = Vec::new();
        for (index, (operation, body)) in changes().into_iter().enumerate() {
            match call(&kinesis, operation, body).await {
                Ok(_) => acked.push(index),
                Err(err) => {
                    assert!(
                        !shows(&kinesis, index).await,
                        "{context}: {operation} failed ({err}) but its change is visible"
                    );
                }
            }
        }
        acked
    }

    #[tokio::test]
    async fn kept_changes_at_every_crash_point() {
        for sync in [SyncMode::Fsync, SyncMode::OsBuffered] {
            let clean = SimFs::new(None, None);
            let all = run(&clean, sync, "clean run").await;
            assert_eq!(all, (0..changes().len()).collect::<Vec<_>>());
            let total = clean.ops();
            println!("kept ({sync:?}): failed and crashed at each of {total} operations");
            for k in 1..=total {
                for (fs, images) in [
                    (
                        SimFs::new(None, Some(k)),
                        vec![CrashImage::PowerLoss, CrashImage::ProcessCrash],
                    ),
                    (
                        SimFs::new(Some(k), None),
                        vec![
                            CrashImage::PowerLoss,
                            CrashImage::TornWrite,
                            CrashImage::ProcessCrash,
                        ],
                    ),
                ] {
                    let context = format!("{sync:?}, op {k}/{total}");
                    let acked = run(&fs, sync, &context).await;
                    for image in images {
                        if sync == SyncMode::OsBuffered && image != CrashImage::ProcessCrash {
                            continue; // OsBuffered promises only to survive a process crash
                        }
                        let Some(recovered) = service(&fs.image(image), sync) else {
                            panic!("{context}, {image:?}: the data directory does not open");
                        };
                        for &index in &acked {
                            assert!(
                                shows(&recovered, index).await,
                                "{context}, {image:?}: acknowledged {} lost",
                                changes()[index].0
                            );
                        }
                    }
                }
            }
        }
    }
}

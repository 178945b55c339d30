//! The checks of the channel requests: the model's patterns, enums and ranges, and the rules
//! the documentation adds (one destination, an on-demand stream, freshness bounds).

use super::*;

pub(super) fn check_freshness(seconds: i64) -> Result<(), ApiError> {
    if (0..=MAX_FRESHNESS_S).contains(&seconds) {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(format!(
            "DataFreshnessInSeconds must be between 0 and {MAX_FRESHNESS_S}; got {seconds}."
        )))
    }
}

pub(super) fn pattern(value: &str, v: &mut Violations, ok: bool, path: &str, regex: &str) {
    v.check(
        ok,
        value,
        path,
        &format!("satisfy regular expression pattern: {regex}"),
    );
}

pub(super) fn one_of(v: &mut Violations, value: &Option<String>, path: &str, allowed: &[&str]) {
    match value {
        Some(value) => v.check(
            allowed.contains(&value.as_str()),
            value,
            path,
            &format!("satisfy enum value set: [{}]", allowed.join(", ")),
        ),
        None => v.missing(path),
    }
}

pub(super) fn is_account(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// Checks `arn:aws.*:kinesis:.*:\d{12}:{kind}/\S+`.
pub(super) fn check_kinesis_arn(v: &mut Violations, arn: &str, path: &str, kind: &str) {
    v.length(arn, path, 1, 2048);
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "kinesis"
        && is_account(parts[4])
        && parts[5]
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
    pattern(
        arn,
        v,
        ok,
        path,
        &format!("arn:aws.*:kinesis:.*:\\d{{12}}:{kind}/\\S+"),
    );
}

pub(crate) fn check_channel_arn(v: &mut Violations, arn: &str) {
    check_kinesis_arn(v, arn, "channelARN", "channel");
}

/// Checks `arn:aws[-a-z0-9]*:{service}:{region}:{account}:{rest}` loosely by its fixed parts.
pub(super) fn aws_partition(part: &str) -> bool {
    part.strip_prefix("aws").is_some_and(|rest| {
        rest.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

pub(super) fn check_bucket_arn(v: &mut Violations, arn: &Option<String>, path: &str) {
    let Some(arn) = arn else {
        v.missing(path);
        return;
    };
    v.length(arn, path, 1, 2048);
    let ok = arn.split_once(":s3:::").is_some_and(|(head, bucket)| {
        head.strip_prefix("arn:").is_some_and(aws_partition)
            && (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    });
    pattern(arn, v, ok, path, "arn:aws[-a-z0-9]*:s3:::[a-z0-9._-]{3,63}");
}

pub(super) fn check_owner(v: &mut Violations, owner: &Option<String>, path: &str) {
    match owner {
        Some(owner) => pattern(owner, v, is_account(owner), path, "\\d{12}"),
        None => v.missing(path),
    }
}

pub(super) fn check_logging(v: &mut Violations, logging: &Logging) {
    match &logging.cloud_watch_logs {
        Some(logs) => v.require(&logs.enabled, "loggingConfiguration.cloudWatchLogs.enabled"),
        None => v.missing("loggingConfiguration.cloudWatchLogs"),
    }
}

impl CreateChannelInput {
    /// Checks the model's constraints (ValidationException).
    pub(in crate::kinesis::channels) fn check(&self, v: &mut Violations) {
        match &self.channel_name {
            Some(name) => {
                v.length(name, "channelName", 1, 128);
                let ok = name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
                pattern(name, v, ok, "channelName", "[a-zA-Z0-9_.-]+");
            }
            None => v.missing("channelName"),
        }
        match &self.service_execution_role_arn {
            Some(role) => {
                v.length(role, "serviceExecutionRoleARN", 1, 512);
                let ok = role.split_once(":iam::").is_some_and(|(head, rest)| {
                    head.strip_prefix("arn:").is_some_and(aws_partition)
                        && rest.split_once(":role/").is_some_and(|(account, path)| {
                            is_account(account)
                                && !path.is_empty()
                                && path
                                    .bytes()
                                    .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-/".contains(&b))
                        })
                });
                pattern(
                    role,
                    v,
                    ok,
                    "serviceExecutionRoleARN",
                    "arn:aws[-a-z0-9]*:iam::\\d{12}:role/[a-zA-Z_0-9+=,.@\\-_/]+",
                );
            }
            None => v.missing("serviceExecutionRoleARN"),
        }
        match &self.stream_configuration_list {
            Some(list) => {
                v.range(list.len() as i64, "streamConfigurationList", 1, 10_000);
                for (i, config) in list.iter().enumerate() {
                    let at = format!("streamConfigurationList.{}.member", i + 1);
                    match &config.stream_arn {
                        Some(arn) => {
                            check_kinesis_arn(v, arn, &format!("{at}.streamARN"), "stream")
                        }
                        None => v.missing(&format!("{at}.streamARN")),
                    }
                    match &config.record_configuration {
                        Some(record) => one_of(
                            v,
                            &record.record_format_type,
                            &format!("{at}.recordConfiguration.recordFormatType"),
                            &["GSR_JSON", "JSON", "STRING", "BYTE_ARRAY"],
                        ),
                        None => v.missing(&format!("{at}.recordConfiguration")),
                    }
                }
            }
            None => v.missing("streamConfigurationList"),
        }
        if let Some(s3) = &self.s3_destination_configuration {
            let at = "s3DestinationConfiguration";
            match &s3.storage_configuration {
                Some(storage) => {
                    let at = format!("{at}.storageConfiguration");
                    check_bucket_arn(v, &storage.bucket_arn, &format!("{at}.bucketARN"));
                    check_owner(
                        v,
                        &storage.expected_bucket_owner,
                        &format!("{at}.expectedBucketOwner"),
                    );
                    one_of(
                        v,
                        &storage.compression_type,
                        &format!("{at}.compressionType"),
                        &["NONE", "GZIP", "ZSTD"],
                    );
                    if storage.storage_class.is_some() {
                        one_of(
                            v,
                            &storage.storage_class,
                            &format!("{at}.storageClass"),
                            &["STANDARD", "INTELLIGENT_TIERING", "GLACIER_IR"],
                        );
                    }
                    if let Some(template) = &storage.output_key_template {
                        v.length(template, &format!("{at}.outputKeyTemplate"), 1, 1024);
                    }
                }
                None => v.missing(&format!("{at}.storageConfiguration")),
            }
            if let Some(dlq) = &s3.dead_letter_queue_s3_configuration {
                let at = format!("{at}.deadLetterQueueS3Configuration");
                check_bucket_arn(v, &dlq.bucket_arn, &format!("{at}.bucketARN"));
                check_owner(
                    v,
                    &dlq.expected_bucket_owner,
                    &format!("{at}.expectedBucketOwner"),
                );
            }
        }
        if let Some(encryption) = &self.encryption_configuration {
            let at = "encryptionConfiguration";
            one_of(
                v,
                &encryption.encryption_type,
                &format!("{at}.encryptionType"),
                &["KMS"],
            );
            match &encryption.key_id {
                Some(key) => v.length(key, &format!("{at}.keyId"), 1, 2048),
                None => v.missing(&format!("{at}.keyId")),
            }
        }
        if let Some(tags) = &self.tags {
            v.range(tags.len() as i64, "tags", 1, 200);
            for (key, value) in tags {
                v.length(key, "tags.key", 1, 128);
                v.length(value, "tags.value", 0, 256);
            }
        }
        if let Some(logging) = &self.logging_configuration {
            check_logging(v, logging);
        }
    }

    /// Checks what the model's shapes cannot say (InvalidArgumentException), and what this
    /// engine does not support.
    pub(in crate::kinesis::channels) fn checked_config(&self) -> Result<CheckedConfig, ApiError> {
        let invalid = |message: &str| Err(ApiError::InvalidArgument(message.to_owned()));
        let destination = match (
            &self.s3_destination_configuration,
            &self.s3_tables_destination_configuration,
        ) {
            (Some(s3), None) => s3.clone(),
            (None, Some(_)) => {
                return invalid(
                    "S3TablesDestinationConfiguration is not supported by this engine: channels deliver to a general purpose S3 destination (a local directory).",
                );
            }
            _ => {
                return invalid(
                    "You must specify either S3DestinationConfiguration or S3TablesDestinationConfiguration, but not both.",
                );
            }
        };
        let streams = self
            .stream_configuration_list
            .as_deref()
            .unwrap_or_default();
        let [stream] = streams else {
            return invalid("Currently, one stream is supported per channel.");
        };
        let record = stream.record_configuration.clone().expect("checked");
        match record.record_format_type.as_deref() {
            Some("GSR_JSON") => {
                return invalid(
                    "RecordFormatType GSR_JSON is supported only for streaming table (Amazon S3 Tables) destinations.",
                );
            }
            _ if record.gsr_schema_arn.is_some() => {
                return invalid(
                    "GSRSchemaARN applies only to streaming table (Amazon S3 Tables) destinations.",
                );
            }
            _ => {}
        }
        let storage = destination.storage_configuration.as_ref().expect("checked");
        if storage.compression_type.as_deref() != Some("NONE") {
            return invalid(
                "This engine writes channel batches uncompressed: only CompressionType NONE is supported.",
            );
        }
        check_freshness(
            destination
                .data_freshness_in_seconds
                .unwrap_or(DEFAULT_FRESHNESS_S),
        )?;
        Ok(CheckedConfig {
            stream_arn: stream.stream_arn.clone().expect("checked"),
            record,
            destination,
        })
    }

    /// The definition of the new channel, with the model's defaults filled in.
    pub(in crate::kinesis::channels) fn into_def(
        self,
        arn: String,
        id: String,
        now_ms: i64,
        stream_created_ms: i64,
        config: CheckedConfig,
    ) -> ChannelDef {
        let mut destination = config.destination;
        destination.data_freshness_in_seconds = Some(
            destination
                .data_freshness_in_seconds
                .unwrap_or(DEFAULT_FRESHNESS_S),
        );
        if destination.dead_letter_queue_s3_configuration.is_none() {
            // The model: "defaults to the destination bucket with an error prefix".
            let storage = destination.storage_configuration.as_ref();
            destination.dead_letter_queue_s3_configuration = Some(DeadLetterQueue {
                bucket_arn: storage.and_then(|s| s.bucket_arn.clone()),
                expected_bucket_owner: storage.and_then(|s| s.expected_bucket_owner.clone()),
                error_output_prefix: Some("error/".into()),
            });
        }
        ChannelDef {
            name: self.channel_name.unwrap_or_default(),
            arn,
            id,
            created_ms: now_ms,
            role_arn: self.service_execution_role_arn.unwrap_or_default(),
            stream: StreamOfChannel {
                stream_arn: config.stream_arn,
                stream_created_ms,
                record: config.record,
            },
            destination,
            encryption: self.encryption_configuration,
            logging: self.logging_configuration.unwrap_or_default(),
            tags: self.tags.unwrap_or_default(),
            updated_ms: None,
            deleting_ms: None,
        }
    }
}

//! Resources named by a `ResourceARN` (the policy and ARN-tagging operations): a stream or an
//! enhanced fan-out consumer.

use std::sync::Arc;

use crate::error::ApiError;
use crate::model::stream::Stream;

use super::Kinesis;
use super::consumers::ConsumerRef;
use super::validate::Violations;

const RESOURCE_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:.*(stream|channel|queue)/\\S+";

/// What a `ResourceARN` names.
#[derive(Debug)]
pub(crate) enum Resource {
    Stream(Arc<Stream>),
    /// A consumer of the stream, by name.
    Consumer(Arc<Stream>, String),
}

impl Resource {
    /// The stream, or the stream the consumer reads.
    pub(crate) fn stream(&self) -> &Arc<Stream> {
        match self {
            Self::Stream(stream) | Self::Consumer(stream, _) => stream,
        }
    }
}

/// Whether `arn` has the shape of the model's `ResourceARN` pattern.
fn is_resource_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(_service)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(_region), Some(account), Some(resource)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    // The pattern's `.*` before `:kinesis:` and before the resource type is loose; this
    // engine only knows ARNs of its own shape, and resolving them decides the rest.
    partition.starts_with("aws")
        && arn.contains(":kinesis:")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && ["stream/", "channel/", "queue/"].iter().any(|kind| {
            resource.find(kind).is_some_and(|at| {
                let rest = &resource[at + kind.len()..];
                !rest.is_empty() && !rest.contains(char::is_whitespace)
            })
        })
}

/// Checks a ResourceARN member (required) into `v`.
pub(crate) fn check_resource_arn(arn: Option<&str>, v: &mut Violations) {
    let Some(arn) = arn else {
        v.missing("resourceARN");
        return;
    };
    v.length(arn, "resourceARN", 1, 2048);
    v.check(
        is_resource_arn(arn),
        arn,
        "resourceARN",
        &format!("satisfy regular expression pattern: {RESOURCE_ARN_PATTERN}"),
    );
}

impl Kinesis {
    /// Finds the stream or consumer `arn` names, once it and the rest of the request (in `v`)
    /// passed validation. ARNs of channels, queues or streams this engine does not have are
    /// not found.
    pub(crate) fn resolve_resource(
        &self,
        arn: Option<&str>,
        mut v: Violations,
    ) -> Result<Resource, ApiError> {
        check_resource_arn(arn, &mut v);
        v.finish()?;
        let arn = arn.unwrap_or_default();
        let not_found = || ApiError::ResourceNotFound(format!("Resource {arn} not found."));
        let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
        if !resource.starts_with("stream/") {
            return Err(not_found());
        }
        if arn.contains("/consumer/") {
            let reference: ConsumerRef =
                serde_json::from_value(serde_json::json!({ "ConsumerARN": arn }))
                    .map_err(|_| not_found())?;
            let (stream, name) = self.resolve_consumer(&reference).map_err(|err| match err {
                // The consumer ARN pattern is narrower than ResourceARN's: what does not fit
                // it names nothing here.
                ApiError::Validation(_) => not_found(),
                other => other,
            })?;
            return Ok(Resource::Consumer(stream, name));
        }
        let name = self
            .stream_target(None, Some(arn), &mut Violations::default())
            .map_err(|err| match err {
                ApiError::Validation(_) => not_found(),
                other => other,
            })?;
        Ok(Resource::Stream(self.stream(&name)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_arns_follow_the_model_pattern() {
        for good in [
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/app:1700000000",
            "arn:aws-cn:kinesis:cn-north-1:000000000000:queue/q",
        ] {
            assert!(is_resource_arn(good), "{good}");
        }
        for bad in [
            "orders",
            "arn:aws:kinesis:us-east-1:123:stream/orders",
            "arn:aws:sqs:us-east-1:000000000000:stream/orders",
            "arn:aws:kinesis:us-east-1:000000000000:table/orders",
            "arn:aws:kinesis:us-east-1:000000000000:stream/",
        ] {
            assert!(!is_resource_arn(bad), "{bad}");
        }
    }
}

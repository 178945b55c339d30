//! Constraint checks with AWS's wording: violations of the model's constraints are collected
//! into one ValidationException, as AWS reports up to ten of them at once.

use std::fmt::Display;

use crate::error::{ApiError, missing, violation};

use super::Kinesis;

const STREAM_NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";
const STREAM_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";
const MAX_REPORTED: usize = 10;

/// Collected constraint violations of one request.
#[derive(Debug, Default)]
pub(crate) struct Violations(Vec<String>);

impl Violations {
    /// Records a violation unless `ok`.
    pub(crate) fn check(&mut self, ok: bool, value: impl Display, path: &str, constraint: &str) {
        if !ok {
            self.0.push(violation(value, path, constraint));
        }
    }

    /// Records a missing required member.
    pub(crate) fn require<T>(&mut self, value: &Option<T>, path: &str) {
        if value.is_none() {
            self.0.push(missing(path));
        }
    }

    /// Records a missing required member by path.
    pub(crate) fn missing(&mut self, path: &str) {
        self.0.push(missing(path));
    }

    /// Whether no violation was found so far.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks a string's length in characters.
    pub(crate) fn length(&mut self, value: &str, path: &str, min: usize, max: usize) {
        let len = value.chars().count();
        self.check(
            len >= min,
            value,
            path,
            &format!("have length greater than or equal to {min}"),
        );
        self.check(
            len <= max,
            value,
            path,
            &format!("have length less than or equal to {max}"),
        );
    }

    /// Checks an integer's range.
    pub(crate) fn range(&mut self, value: i64, path: &str, min: i64, max: i64) {
        self.check(
            value >= min,
            value,
            path,
            &format!("have value greater than or equal to {min}"),
        );
        self.check(
            value <= max,
            value,
            path,
            &format!("have value less than or equal to {max}"),
        );
    }

    /// Checks an optional sequence number's shape (`0|([1-9]\d{0,128})`).
    pub(crate) fn sequence_number(&mut self, value: Option<&str>, path: &str) {
        if let Some(seq) = value {
            self.check(
                crate::model::sequence::is_well_formed(seq),
                seq,
                path,
                "satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
            );
        }
    }

    /// Checks an optional hash key's shape (`0|([1-9]\d{0,38})`); its range is checked apart.
    pub(crate) fn hash_key(&mut self, value: Option<&str>, path: &str) {
        if let Some(key) = value {
            self.check(
                crate::model::is_plain_decimal(key) && key.len() <= 39,
                key,
                path,
                "satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
            );
        }
    }

    /// Checks an optional shard id: 1–128 characters of `[a-zA-Z0-9_.-]`, as the model says
    /// (a malformed id is a ValidationException, a well-formed unknown one is not found).
    pub(crate) fn shard_id(&mut self, id: Option<&str>, path: &str) {
        if let Some(id) = id {
            self.length(id, path, 1, 128);
            self.check(
                id.is_empty()
                    || id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
                id,
                path,
                &format!("satisfy regular expression pattern: {STREAM_NAME_PATTERN}"),
            );
        }
    }

    /// Checks an optional stream name.
    pub(crate) fn stream_name(&mut self, name: Option<&str>, path: &str) {
        if let Some(name) = name {
            self.length(name, path, 1, 128);
            self.check(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
                name,
                path,
                &format!("satisfy regular expression pattern: {STREAM_NAME_PATTERN}"),
            );
        }
    }

    /// Fails with every violation found, if any.
    pub(crate) fn finish(mut self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        self.0.truncate(MAX_REPORTED);
        Err(ApiError::Validation(self.0))
    }
}

/// The parts of a stream ARN.
struct StreamArn<'a> {
    region: &'a str,
    account: &'a str,
    name: &'a str,
}

fn parse_stream_arn(arn: &str) -> Option<StreamArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (arn_word, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    let name = resource.strip_prefix("stream/")?;
    let valid = arn_word == "arn"
        && partition.starts_with("aws")
        && service == "kinesis"
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && !name.contains(char::is_whitespace);
    valid.then_some(StreamArn {
        region,
        account,
        name,
    })
}

impl Kinesis {
    /// Resolves the stream a request names by `StreamName`, `StreamARN` or both, checking both
    /// members' constraints. Other violations of the request go into `violations` too.
    pub(crate) fn stream_target(
        &self,
        name: Option<&str>,
        arn: Option<&str>,
        violations: &mut Violations,
    ) -> Result<String, ApiError> {
        violations.stream_name(name, "streamName");
        if let Some(arn) = arn {
            violations.length(arn, "streamARN", 1, 2048);
            violations.check(
                parse_stream_arn(arn).is_some(),
                arn,
                "streamARN",
                &format!("satisfy regular expression pattern: {STREAM_ARN_PATTERN}"),
            );
        }
        std::mem::take(violations).finish()?;
        match (name, arn.and_then(parse_stream_arn)) {
            (None, None) => Err(ApiError::InvalidArgument(
                "Either StreamName or StreamARN should be provided.".into(),
            )),
            (Some(name), None) => Ok(name.to_owned()),
            (name, Some(parsed)) => {
                if name.is_some_and(|n| n != parsed.name) {
                    return Err(ApiError::InvalidArgument(format!(
                        "StreamName {} and StreamARN {} refer to different streams.",
                        name.unwrap_or_default(),
                        arn.unwrap_or_default()
                    )));
                }
                if parsed.account != self.config.account_id || parsed.region != self.config.region {
                    return Err(ApiError::ResourceNotFound(format!(
                        "Stream {} under account {} not found.",
                        parsed.name, parsed.account
                    )));
                }
                Ok(parsed.name.to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_parsed_strictly() {
        let arn = parse_stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/orders").unwrap();
        assert_eq!(
            (arn.region, arn.account, arn.name),
            ("us-east-1", "000000000000", "orders")
        );
        assert!(parse_stream_arn("arn:aws:kinesis:us-east-1:123:stream/orders").is_none());
        assert!(parse_stream_arn("arn:aws:sqs:us-east-1:000000000000:stream/orders").is_none());
        assert!(parse_stream_arn("arn:aws:kinesis:us-east-1:000000000000:table/orders").is_none());
        assert!(parse_stream_arn("orders").is_none());
    }

    #[test]
    fn violations_are_collected_then_reported_together() {
        let mut v = Violations::default();
        v.stream_name(Some(""), "streamName");
        v.range(0, "shardCount", 1, 100_000);
        let err = v.finish().unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("3 validation errors detected: "), "{text}");
        assert!(text.contains("at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"));
    }
}

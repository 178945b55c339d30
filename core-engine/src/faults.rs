//! Fault injection: make chosen calls fail the way Kinesis and DynamoDB fail, reproducibly.
//!
//! A [`FaultRule`] names a [`Service`] (Kinesis unless said otherwise), an operation (or any),
//! a stream or a table (or any), a [`Fault`], the probability that a matching call is hit, and
//! optionally how many times it may fire. Draws come from one random generator seeded by the
//! engine's fault seed, so a test that makes the same calls in the same order sees the same
//! faults.
//!
//! | fault | Kinesis | DynamoDB |
//! |---|---|---|
//! | `Throttle` | `ProvisionedThroughputExceededException` (400); in PutRecords, per record | `ProvisionedThroughputExceededException` (400), the whole call |
//! | `InternalFailure` | `InternalFailure` (500); in PutRecords, per record | `InternalServerError` (500) |
//! | `Latency { ms }` | the call is answered `ms` later (at most 60 s) | the same |
//! | `DropConnection` | the connection is closed without an answer; nothing is applied | the same |
//! | `DropAfterApply` | the call takes effect, then the connection is closed without an answer | the same |
//! | `EndSubscription` | a SubscribeToShard stream ends right after its first event | not allowed |
//! | `ExpireIterator` | GetRecords answers `ExpiredIteratorException` | not allowed |
//!
//! A faulted call is refused before it does anything (except `DropAfterApply` and `Latency`,
//! which delays it before it runs). A DynamoDB rule with a table matches a call if the call
//! names that table anywhere (`TableName`, a batch's `RequestItems`, a transaction's items);
//! a rule without one matches every call, `ListTables` included.
//!
//! Rules are set with [`EngineBuilder::fault`](crate::EngineBuilder::fault), at run time with
//! [`EngineHandle::faults`](crate::EngineHandle::faults), or over HTTP on the engine's port:
//! `POST /_shardline/faults` with a JSON rule (the serde form of [`FaultRule`]), `GET` to list
//! them, `DELETE` to clear them. For example
//! `{"service":"DynamoDB","operation":"UpdateItem","table":"app","fault":{"type":"DropAfterApply"},"probability":0.1}`.
//! At most [`MAX_RULES`] rules are in force at once.

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The most rules in force at once.
pub const MAX_RULES: usize = 1_000;

/// The longest injected latency, in milliseconds (one minute).
pub const MAX_LATENCY_MS: u64 = 60_000;

/// The service a rule applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Service {
    /// The Kinesis API (the default, so rules written before DynamoDB faults keep their meaning).
    #[default]
    Kinesis,
    /// The DynamoDB API; `"DynamoDB"` in JSON.
    #[serde(rename = "DynamoDB")]
    DynamoDb,
}

/// What happens to a call a rule hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Fault {
    /// Fail with ProvisionedThroughputExceededException.
    Throttle,
    /// Fail with InternalFailure (Kinesis) or InternalServerError (DynamoDB), HTTP 500.
    InternalFailure,
    /// Answer late.
    Latency {
        /// Added delay in milliseconds, at most [`MAX_LATENCY_MS`].
        ms: u64,
    },
    /// Close the connection without answering; the call does nothing.
    DropConnection,
    /// Carry out the call, then close the connection without answering: the client cannot tell
    /// whether its write was applied (it was).
    DropAfterApply,
    /// End a fan-out subscription after its first event (Kinesis only).
    EndSubscription,
    /// Answer GetRecords with ExpiredIteratorException (Kinesis only).
    ExpireIterator,
}

/// When a fault fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The service whose calls the rule hits. Default Kinesis.
    #[serde(default)]
    pub service: Service,
    /// Operation name such as `PutRecords` or `UpdateItem`; `None` matches every operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// Stream name (Kinesis rules only); `None` matches every stream.
    #[serde(default)]
    pub stream: Option<String>,
    /// Table name (DynamoDB rules only); `None` matches every table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// What happens.
    pub fault: Fault,
    /// Chance that a matching call is hit, from 0 to 1. Default 1.
    #[serde(default = "always")]
    pub probability: f64,
    /// How many times the rule may fire; `None` for no limit.
    #[serde(default)]
    pub times: Option<u64>,
}

impl Fault {
    /// Faults that PutRecords applies to each record rather than to the whole call.
    pub(crate) fn is_per_record(&self) -> bool {
        matches!(self, Self::Throttle | Self::InternalFailure)
    }
}

fn always() -> f64 {
    1.0
}

impl FaultRule {
    /// A Kinesis rule that always fires `fault` on `operation` of any stream.
    pub fn new(operation: impl Into<String>, fault: Fault) -> Self {
        Self {
            service: Service::Kinesis,
            operation: Some(operation.into()),
            stream: None,
            table: None,
            fault,
            probability: 1.0,
            times: None,
        }
    }

    /// A DynamoDB rule that always fires `fault` on `operation` (such as `UpdateItem`) of any
    /// table.
    pub fn dynamodb(operation: impl Into<String>, fault: Fault) -> Self {
        Self {
            service: Service::DynamoDb,
            ..Self::new(operation, fault)
        }
    }

    /// A DynamoDB rule that always fires `fault` on every DynamoDB operation of any table.
    pub fn dynamodb_any(fault: Fault) -> Self {
        Self {
            operation: None,
            ..Self::dynamodb("", fault)
        }
    }

    /// Only for calls on `stream` (Kinesis rules).
    #[must_use]
    pub fn on_stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }

    /// Only for calls that name `table` (DynamoDB rules).
    #[must_use]
    pub fn on_table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// Fires with this probability.
    #[must_use]
    pub fn with_probability(mut self, probability: f64) -> Self {
        self.probability = probability;
        self
    }

    /// Fires at most this many times.
    #[must_use]
    pub fn times(mut self, times: u64) -> Self {
        self.times = Some(times);
        self
    }

    fn matches(&self, call: &Call<'_>) -> bool {
        if self.service != call.service
            || self.times == Some(0)
            || self
                .operation
                .as_deref()
                .is_some_and(|o| o != call.operation)
        {
            return false;
        }
        let named = match self.service {
            Service::Kinesis => &self.stream,
            Service::DynamoDb => &self.table,
        };
        named
            .as_deref()
            .is_none_or(|name| call.resources.contains(&name))
    }

    /// Checks the rule's values; gives a message for the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!(
                "probability must be between 0 and 1, got {}",
                self.probability
            ));
        }
        if let Fault::Latency { ms } = self.fault
            && ms > MAX_LATENCY_MS
        {
            return Err(format!(
                "latency must be at most {MAX_LATENCY_MS} ms, got {ms}"
            ));
        }
        match self.service {
            Service::Kinesis => {
                if self.table.is_some() {
                    return Err(
                        "table applies to DynamoDB rules; a Kinesis rule names a stream".into(),
                    );
                }
                if self.fault == Fault::DropAfterApply
                    && self.operation.as_deref() == Some("SubscribeToShard")
                {
                    return Err("DropAfterApply does not apply to SubscribeToShard; use \
                                DropConnection or EndSubscription"
                        .into());
                }
            }
            Service::DynamoDb => {
                if self.stream.is_some() {
                    return Err(
                        "stream applies to Kinesis rules; a DynamoDB rule names a table".into(),
                    );
                }
                if matches!(self.fault, Fault::EndSubscription | Fault::ExpireIterator) {
                    return Err(format!(
                        "{:?} is a Kinesis fault; DynamoDB rules take Throttle, InternalFailure, \
                         Latency, DropConnection or DropAfterApply",
                        self.fault
                    ));
                }
                if let Some(operation) = &self.operation
                    && !crate::dynamodb::OPERATIONS.contains(&operation.as_str())
                {
                    return Err(format!(
                        "unknown DynamoDB operation {operation:?}; this engine serves {}",
                        crate::dynamodb::OPERATIONS.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One call, as rules see it.
struct Call<'a> {
    service: Service,
    operation: &'a str,
    /// The streams or tables the call names.
    resources: &'a [&'a str],
}

/// The active rules and the seeded generator that decides which calls they hit.
#[derive(Debug)]
pub struct FaultInjector {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rules: Vec<FaultRule>,
    rng: StdRng,
}

impl FaultInjector {
    pub(crate) fn new(seed: u64, rules: Vec<FaultRule>) -> Self {
        Self {
            state: Mutex::new(State {
                rules,
                rng: StdRng::seed_from_u64(seed),
            }),
        }
    }

    /// Adds a rule, if it is valid and fewer than [`MAX_RULES`] are in force.
    pub fn add(&self, rule: FaultRule) -> Result<(), String> {
        rule.validate()?;
        let mut state = self.state.lock();
        if state.rules.len() >= MAX_RULES {
            return Err(format!(
                "at most {MAX_RULES} fault rules can be in force; clear some first"
            ));
        }
        state.rules.push(rule);
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.state.lock().rules.clear();
    }

    /// The rules in force.
    pub fn rules(&self) -> Vec<FaultRule> {
        self.state.lock().rules.clone()
    }

    /// Whether no rule is set (then requests are not even inspected).
    pub(crate) fn is_empty(&self) -> bool {
        self.state.lock().rules.is_empty()
    }

    /// The faults that hit one Kinesis call on `stream` (each matching rule whose fault
    /// `accept`s is drawn once, in order).
    pub(crate) fn draw(
        &self,
        operation: &str,
        stream: Option<&str>,
        accept: impl Fn(&Fault) -> bool,
    ) -> Vec<Fault> {
        let streams: Vec<&str> = stream.into_iter().collect();
        self.draw_call(
            &Call {
                service: Service::Kinesis,
                operation,
                resources: &streams,
            },
            accept,
        )
    }

    /// The faults that hit one DynamoDB call naming `tables`.
    pub(crate) fn draw_dynamodb(&self, operation: &str, tables: &[&str]) -> Vec<Fault> {
        self.draw_call(
            &Call {
                service: Service::DynamoDb,
                operation,
                resources: tables,
            },
            |_| true,
        )
    }

    fn draw_call(&self, call: &Call<'_>, accept: impl Fn(&Fault) -> bool) -> Vec<Fault> {
        let mut state = self.state.lock();
        if state.rules.is_empty() {
            return Vec::new();
        }
        let State { rules, rng } = &mut *state;
        let mut hits = Vec::new();
        for rule in rules
            .iter_mut()
            .filter(|r| r.matches(call) && accept(&r.fault))
        {
            if rng.random::<f64>() < rule.probability {
                if let Some(times) = &mut rule.times {
                    *times -= 1;
                }
                hits.push(rule.fault.clone());
            }
        }
        hits
    }

    /// Whether one record of a PutRecords call is hit, and by what.
    pub(crate) fn draw_record(&self, stream: &str) -> Option<Fault> {
        self.draw("PutRecords", Some(stream), Fault::is_per_record)
            .into_iter()
            .next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_operation_and_stream_and_run_out() {
        let faults = FaultInjector::new(
            7,
            vec![
                FaultRule::new("GetRecords", Fault::ExpireIterator)
                    .on_stream("a")
                    .times(2),
            ],
        );
        let any = |_: &Fault| true;
        assert!(faults.draw("GetRecords", Some("b"), any).is_empty());
        assert!(faults.draw("PutRecord", Some("a"), any).is_empty());
        assert_eq!(
            faults.draw("GetRecords", Some("a"), any),
            [Fault::ExpireIterator]
        );
        assert_eq!(faults.draw("GetRecords", Some("a"), any).len(), 1);
        assert!(faults.draw("GetRecords", Some("a"), any).is_empty());
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let run = |seed| {
            let faults = FaultInjector::new(
                seed,
                vec![FaultRule::new("PutRecords", Fault::Throttle).with_probability(0.3)],
            );
            (0..200)
                .map(|_| faults.draw_record("s").is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let hits = run(42).iter().filter(|h| **h).count();
        assert!((30..90).contains(&hits), "about 30% of 200, got {hits}");
    }

    #[test]
    fn rules_read_from_json() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"operation":"PutRecord","fault":{"type":"Latency","ms":250}}"#,
        )
        .unwrap();
        assert_eq!(
            rule,
            FaultRule::new("PutRecord", Fault::Latency { ms: 250 })
        );
        assert!(serde_json::from_str::<FaultRule>(r#"{"fault":{"type":"Nope"}}"#).is_err());
        assert!(
            FaultRule::new("x", Fault::Throttle)
                .with_probability(2.0)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn dynamodb_rules_match_by_service_operation_and_table() {
        let faults = FaultInjector::new(
            1,
            vec![
                FaultRule::dynamodb("UpdateItem", Fault::Throttle).on_table("leases"),
                FaultRule::dynamodb_any(Fault::Latency { ms: 5 }).times(1),
            ],
        );
        // Kinesis calls never meet DynamoDB rules, whatever their names.
        assert!(
            faults
                .draw("UpdateItem", Some("leases"), |_| true)
                .is_empty()
        );
        assert_eq!(
            faults.draw_dynamodb("UpdateItem", &["leases"]),
            [Fault::Throttle, Fault::Latency { ms: 5 }]
        );
        assert_eq!(
            faults.draw_dynamodb("UpdateItem", &["other", "leases"]),
            [Fault::Throttle],
            "a batch naming the table is hit"
        );
        assert!(faults.draw_dynamodb("UpdateItem", &["other"]).is_empty());
        assert!(faults.draw_dynamodb("PutItem", &["leases"]).is_empty());
        assert!(faults.draw_dynamodb("ListTables", &[]).is_empty());
    }

    #[test]
    fn rules_that_make_no_sense_are_refused() {
        let refused = |rule: FaultRule, needle: &str| {
            let message = rule.validate().expect_err("refused");
            assert!(message.contains(needle), "{message}");
        };
        refused(
            FaultRule::dynamodb("GetItem", Fault::ExpireIterator),
            "Kinesis fault",
        );
        refused(
            FaultRule::dynamodb_any(Fault::EndSubscription),
            "Kinesis fault",
        );
        refused(
            FaultRule::dynamodb("GetItem", Fault::Throttle).on_stream("s"),
            "names a table",
        );
        refused(
            FaultRule::new("PutRecord", Fault::Throttle).on_table("t"),
            "names a stream",
        );
        refused(
            FaultRule::dynamodb("UpdateItems", Fault::Throttle),
            "unknown DynamoDB operation",
        );
        refused(
            FaultRule::new("PutRecord", Fault::Latency { ms: u64::MAX }),
            "at most 60000 ms",
        );
        refused(
            FaultRule::new("PutRecord", Fault::Throttle).with_probability(f64::NAN),
            "probability",
        );
        FaultRule::dynamodb("UpdateItem", Fault::DropAfterApply)
            .on_table("t")
            .validate()
            .unwrap();
        FaultRule::new("PutRecord", Fault::Latency { ms: MAX_LATENCY_MS })
            .validate()
            .unwrap();
    }

    #[test]
    fn rules_are_bounded_in_number() {
        let faults = FaultInjector::new(0, Vec::new());
        for _ in 0..MAX_RULES {
            faults
                .add(FaultRule::new("PutRecord", Fault::Throttle))
                .unwrap();
        }
        let message = faults
            .add(FaultRule::new("PutRecord", Fault::Throttle))
            .unwrap_err();
        assert!(message.contains("at most 1000"), "{message}");
        faults.clear();
        faults
            .add(FaultRule::new("PutRecord", Fault::Throttle))
            .unwrap();
    }

    #[test]
    fn dynamodb_rules_read_from_json_and_old_rules_mean_kinesis() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"service":"DynamoDB","operation":"UpdateItem","table":"app","fault":{"type":"DropAfterApply"},"probability":0.1}"#,
        )
        .unwrap();
        assert_eq!(
            rule,
            FaultRule::dynamodb("UpdateItem", Fault::DropAfterApply)
                .on_table("app")
                .with_probability(0.1)
        );
        let json = serde_json::to_string(&rule).unwrap();
        assert!(json.contains(r#""service":"DynamoDB""#), "{json}");
        assert_eq!(serde_json::from_str::<FaultRule>(&json).unwrap(), rule);
        let old: FaultRule =
            serde_json::from_str(r#"{"operation":"PutRecord","fault":{"type":"Throttle"}}"#)
                .unwrap();
        assert_eq!(old.service, Service::Kinesis);
        assert!(
            serde_json::from_str::<FaultRule>(r#"{"service":"S3","fault":{"type":"Throttle"}}"#)
                .is_err()
        );
    }
}

//! Fault injection: make chosen calls fail the way Kinesis fails, reproducibly.
//!
//! A [`FaultRule`] names an operation (or any), a stream (or any), a [`Fault`], the probability
//! that a matching call is hit, and optionally how many times it may fire. Draws come from one
//! random generator seeded by the engine's fault seed, so a test that makes the same calls in
//! the same order sees the same faults.
//!
//! | fault | effect |
//! |---|---|
//! | `Throttle` | `ProvisionedThroughputExceededException`; in PutRecords, per record |
//! | `InternalFailure` | `InternalFailure` (HTTP 500); in PutRecords, per record |
//! | `Latency { ms }` | the call is answered `ms` later |
//! | `DropConnection` | the connection is closed without an answer |
//! | `EndSubscription` | a SubscribeToShard stream ends right after its first event |
//! | `ExpireIterator` | GetRecords answers `ExpiredIteratorException` |
//!
//! Rules are set with [`EngineBuilder::fault`](crate::EngineBuilder::fault), at run time with
//! [`EngineHandle::faults`](crate::EngineHandle::faults), or over HTTP on the engine's port:
//! `POST /_shardline/faults` with a JSON rule (the serde form of [`FaultRule`]), `GET` to list
//! them, `DELETE` to clear them.

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What happens to a call a rule hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Fault {
    /// Fail with ProvisionedThroughputExceededException.
    Throttle,
    /// Fail with InternalFailure.
    InternalFailure,
    /// Answer late.
    Latency {
        /// Added delay in milliseconds.
        ms: u64,
    },
    /// Close the connection without answering.
    DropConnection,
    /// End a fan-out subscription after its first event.
    EndSubscription,
    /// Answer GetRecords with ExpiredIteratorException.
    ExpireIterator,
}

/// When a fault fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Operation name such as `PutRecords`; `None` matches every operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// Stream name; `None` matches every stream.
    #[serde(default)]
    pub stream: Option<String>,
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
    /// A rule that always fires `fault` on `operation` of any stream.
    pub fn new(operation: impl Into<String>, fault: Fault) -> Self {
        Self {
            operation: Some(operation.into()),
            stream: None,
            fault,
            probability: 1.0,
            times: None,
        }
    }

    /// Only for calls on `stream`.
    #[must_use]
    pub fn on_stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
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

    fn matches(&self, operation: &str, stream: Option<&str>) -> bool {
        self.operation.as_deref().is_none_or(|o| o == operation)
            && self.stream.as_deref().is_none_or(|s| Some(s) == stream)
            && self.times != Some(0)
    }

    /// Checks the rule's values; gives a message for the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!(
                "probability must be between 0 and 1, got {}",
                self.probability
            ));
        }
        Ok(())
    }
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

    /// Adds a rule.
    pub fn add(&self, rule: FaultRule) -> Result<(), String> {
        rule.validate()?;
        self.state.lock().rules.push(rule);
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

    /// The faults that hit one call (each matching rule whose fault `accept`s is drawn once,
    /// in order).
    pub(crate) fn draw(
        &self,
        operation: &str,
        stream: Option<&str>,
        accept: impl Fn(&Fault) -> bool,
    ) -> Vec<Fault> {
        let mut state = self.state.lock();
        if state.rules.is_empty() {
            return Vec::new();
        }
        let State { rules, rng } = &mut *state;
        let mut hits = Vec::new();
        for rule in rules
            .iter_mut()
            .filter(|r| r.matches(operation, stream) && accept(&r.fault))
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
}

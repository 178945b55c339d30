//! Access rules: which actions a key may perform on which resources, evaluated as IAM
//! evaluates an identity-based policy.
//!
//! A rule allows or denies a list of actions (`kinesis:PutRecords`, `kinesis:Get*`,
//! `dynamodb:*`, `*`; matched without regard to case, as IAM does) on a list of resource ARN
//! patterns (`arn:aws:kinesis:*:*:stream/orders*`, `*`; case-sensitive). `*` matches any run
//! of characters and `?` any one character. A request is allowed when some rule allows its
//! action on every resource it touches and no rule denies it: an explicit deny wins, and
//! anything not allowed is denied. A key with no rules at all may do everything.

use serde::Deserialize;

/// Whether a rule allows or denies what it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The matched actions are allowed (unless a deny also matches).
    Allow,
    /// The matched actions are denied, whatever else allows them.
    Deny,
}

/// One access rule: an effect, the actions and the resources it applies to.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Allow or deny.
    pub effect: Effect,
    /// Action patterns such as `kinesis:PutRecord*`.
    pub actions: Vec<String>,
    /// Resource ARN patterns such as `arn:aws:kinesis:*:*:stream/orders*`; default `*`.
    #[serde(default = "everything")]
    pub resources: Vec<String>,
}

fn everything() -> Vec<String> {
    vec!["*".into()]
}

impl Rule {
    /// A rule allowing `actions` on `resources`.
    pub fn allow<A, R>(actions: A, resources: R) -> Self
    where
        A: IntoIterator,
        A::Item: Into<String>,
        R: IntoIterator,
        R::Item: Into<String>,
    {
        Self {
            effect: Effect::Allow,
            actions: actions.into_iter().map(Into::into).collect(),
            resources: resources.into_iter().map(Into::into).collect(),
        }
    }

    /// A rule denying `actions` on `resources`.
    pub fn deny<A, R>(actions: A, resources: R) -> Self
    where
        A: IntoIterator,
        A::Item: Into<String>,
        R: IntoIterator,
        R::Item: Into<String>,
    {
        Self {
            effect: Effect::Deny,
            ..Self::allow(actions, resources)
        }
    }

    /// Why the rule is not usable, if it is not.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.actions.is_empty() || self.resources.is_empty() {
            return Err("a rule needs at least one action and one resource".into());
        }
        for action in &self.actions {
            if action != "*" && !action.contains(':') {
                return Err(format!(
                    "action {action:?} must be `service:Action` (such as kinesis:PutRecord) or *"
                ));
            }
        }
        Ok(())
    }

    fn matches(&self, action: &str, resource: &str) -> bool {
        self.actions
            .iter()
            .any(|p| glob(&p.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && self.resources.iter().any(|p| glob(p, resource))
    }
}

/// The outcome of evaluating rules for one action on one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Some rule allows it and none denies it.
    Allowed,
    /// A rule denies it.
    ExplicitDeny,
    /// No rule allows it.
    ImplicitDeny,
}

/// Evaluates `rules` for `action` on `resource`. No rules at all means full access.
pub(crate) fn evaluate(rules: &[Rule], action: &str, resource: &str) -> Decision {
    if rules.is_empty() {
        return Decision::Allowed;
    }
    let matching = rules.iter().filter(|r| r.matches(action, resource));
    let mut allowed = false;
    for rule in matching {
        match rule.effect {
            Effect::Deny => return Decision::ExplicitDeny,
            Effect::Allow => allowed = true,
        }
    }
    if allowed {
        Decision::Allowed
    } else {
        Decision::ImplicitDeny
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` one character.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with backtracking to the last star: linear in practice.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_iam() {
        assert!(glob("*", ""));
        assert!(glob("*", "arn:aws:kinesis:us-east-1:1:stream/a"));
        assert!(glob(
            "arn:aws:kinesis:*:*:stream/orders*",
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders-eu"
        ));
        assert!(!glob(
            "arn:aws:kinesis:*:*:stream/orders*",
            "arn:aws:kinesis:us-east-1:000000000000:stream/audit"
        ));
        assert!(glob("kinesis:get*", "kinesis:getrecords"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*a*b*", "xxaxxbxx"));
        assert!(!glob("*a*b", "xxaxxbxxc"));
    }

    #[test]
    fn explicit_deny_wins_and_anything_else_is_denied() {
        let stream = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";
        assert_eq!(
            evaluate(&[], "kinesis:PutRecord", stream),
            Decision::Allowed
        );
        let rules = vec![
            Rule::allow(["kinesis:*"], ["*"]),
            Rule::deny(["kinesis:Get*", "kinesis:SubscribeToShard"], ["*"]),
        ];
        assert_eq!(
            evaluate(&rules, "kinesis:PutRecords", stream),
            Decision::Allowed
        );
        assert_eq!(
            evaluate(&rules, "kinesis:GetRecords", stream),
            Decision::ExplicitDeny
        );
        assert_eq!(
            evaluate(&rules, "KINESIS:getrecords", stream),
            Decision::ExplicitDeny
        );
        assert_eq!(
            evaluate(&rules, "dynamodb:GetItem", "*"),
            Decision::ImplicitDeny
        );
        let narrow = vec![Rule::allow(
            ["kinesis:PutRecord"],
            ["arn:aws:kinesis:*:*:stream/orders*"],
        )];
        assert_eq!(
            evaluate(&narrow, "kinesis:PutRecord", stream),
            Decision::Allowed
        );
        assert_eq!(
            evaluate(
                &narrow,
                "kinesis:PutRecord",
                "arn:aws:kinesis:us-east-1:000000000000:stream/x"
            ),
            Decision::ImplicitDeny
        );
        assert!(Rule::allow(["PutRecord"], ["*"]).validate().is_err());
        assert!(Rule::allow(Vec::<String>::new(), ["*"]).validate().is_err());
        assert!(Rule::allow(["*"], ["*"]).validate().is_ok());
    }
}

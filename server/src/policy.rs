//! The stored package policy. It is kept as versioned JSON (`{"v": 1, …}`) separate from the
//! wire type, so that a server reading a policy written by a newer one refuses it clearly
//! instead of silently ignoring requirements it does not know.
//!
//! Format 1 holds only `second_factor`. Format 2 adds the requirements of critical packages
//! (attested keys, user verification, N approvals, every maintainer enrolled, more approvals
//! when install scripts change). A policy is written in the oldest format that holds it, so
//! servers that only know format 1 keep working until a package actually becomes critical, and
//! then refuse that package instead of ignoring what it requires.

use serde::{Deserialize, Serialize};
use tapgate_shared::api::{CiMethod, PackagePolicy, SecondFactor};

/// The newest stored format this server writes and understands.
pub const POLICY_FORMAT: u32 = 2;

/// The most approvals a policy may demand.
pub const MAX_APPROVALS: u32 = 16;

/// A package's policy as the gate evaluates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub second_factor: SecondFactor,
    /// Only attested keys (their attestation chains to a trusted CA) approve.
    pub attested_keys: bool,
    /// Each approving tap verified its user.
    pub user_verification: bool,
    /// Distinct maintainers who approve each change (≥ 1).
    pub approvals: u32,
    /// Every maintainer holds a key meeting the policy.
    pub all_maintainers_enrolled: bool,
    /// Distinct maintainers who approve a publish that adds or changes install scripts.
    pub approvals_when_scripts_change: Option<u32>,
    /// The ways CI may publish; none by default.
    pub ci: CiMethods,
}

/// Which CI paths a package allows (`"ci": [...]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CiMethods {
    pub deploy_key: bool,
    pub stage: bool,
    pub oidc: bool,
}

impl CiMethods {
    pub fn allows(&self, method: CiMethod) -> bool {
        match method {
            CiMethod::DeployKey => self.deploy_key,
            CiMethod::Stage => self.stage,
            CiMethod::Oidc => self.oidc,
        }
    }

    pub fn from_list(list: &[CiMethod]) -> Self {
        Self {
            deploy_key: list.contains(&CiMethod::DeployKey),
            stage: list.contains(&CiMethod::Stage),
            oidc: list.contains(&CiMethod::Oidc),
        }
    }

    /// In a fixed order, so equal policies have equal stored and canonical forms.
    fn to_list(self) -> Vec<CiMethod> {
        [CiMethod::DeployKey, CiMethod::Stage, CiMethod::Oidc]
            .into_iter()
            .filter(|m| self.allows(*m))
            .collect()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    /// Absent in policies written before the format was versioned: format 1.
    #[serde(default = "first_format")]
    v: u32,
    second_factor: SecondFactor,
    /// Absent: no CI path. (A server that predates it ignores it, which only takes CI's ways
    /// away, so the format stays 1.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ci: Vec<CiMethod>,
    #[serde(default, skip_serializing_if = "is_false")]
    attested_keys: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    user_verification: bool,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    approvals: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    all_maintainers_enrolled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approvals_when_scripts_change: Option<u32>,
}

fn first_format() -> u32 {
    1
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A stored policy that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy was written by a newer tapgate (format {0}); upgrade this server")]
    TooNew(u32),
    #[error("the stored policy is corrupt: {0}")]
    Corrupt(String),
}

impl Policy {
    pub fn new(second_factor: SecondFactor) -> Self {
        Self {
            second_factor,
            ci: CiMethods::default(),
            attested_keys: false,
            user_verification: false,
            approvals: 1,
            all_maintainers_enrolled: false,
            approvals_when_scripts_change: None,
        }
    }

    /// Whether changes need a maintainer's key tap.
    pub fn requires_key(&self) -> bool {
        self.second_factor == SecondFactor::SecurityKey
    }

    /// Whether the policy asks for more than a tap of some key of the requester: the package is
    /// critical, and even administrators act on it only with its maintainers' approvals.
    pub fn is_critical(&self) -> bool {
        self.attested_keys
            || self.user_verification
            || self.approvals > 1
            || self.all_maintainers_enrolled
            || self.approvals_when_scripts_change.is_some()
    }

    /// Distinct maintainers who approve a change; for a publish, `scripts_changed` says whether
    /// it adds or changes install scripts.
    pub fn approvals_needed(&self, scripts_changed: bool) -> u32 {
        match self.approvals_when_scripts_change {
            Some(n) if scripts_changed => n.max(self.approvals),
            _ => self.approvals,
        }
    }

    /// Whether this policy requires at least everything `other` requires (replacing `other` by
    /// it weakens nothing).
    pub fn at_least_as_strict_as(&self, other: &Policy) -> bool {
        (self.requires_key() || !other.requires_key())
            && (self.attested_keys || !other.attested_keys)
            && (self.user_verification || !other.user_verification)
            && (self.all_maintainers_enrolled || !other.all_maintainers_enrolled)
            && self.approvals_needed(false) >= other.approvals_needed(false)
            && self.approvals_needed(true) >= other.approvals_needed(true)
    }

    fn stored(&self) -> Stored {
        Stored {
            v: if self.is_critical() { POLICY_FORMAT } else { 1 },
            second_factor: self.second_factor,
            ci: self.ci.to_list(),
            attested_keys: self.attested_keys,
            user_verification: self.user_verification,
            approvals: self.approvals,
            all_maintainers_enrolled: self.all_maintainers_enrolled,
            approvals_when_scripts_change: self.approvals_when_scripts_change,
        }
    }

    /// The stored form (in the oldest format that holds it); also what the gate's guard
    /// compares inside the commit.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.stored()).unwrap_or_default()
    }

    pub fn from_stored(text: &str) -> Result<Self, PolicyError> {
        let stored: Stored = serde_json::from_str(text).map_err(|e| PolicyError::Corrupt(e.to_string()))?;
        if stored.v > POLICY_FORMAT {
            return Err(PolicyError::TooNew(stored.v));
        }
        Ok(Self {
            second_factor: stored.second_factor,
            ci: CiMethods::from_list(&stored.ci),
            attested_keys: stored.attested_keys,
            user_verification: stored.user_verification,
            approvals: stored.approvals.max(1),
            all_maintainers_enrolled: stored.all_maintainers_enrolled,
            approvals_when_scripts_change: stored.approvals_when_scripts_change,
        })
    }

    pub fn to_wire(self) -> PackagePolicy {
        PackagePolicy {
            second_factor: self.second_factor,
            ci: self.ci.to_list(),
            attested_keys: self.attested_keys,
            user_verification: self.user_verification,
            approvals: self.approvals,
            all_maintainers_enrolled: self.all_maintainers_enrolled,
            approvals_when_scripts_change: self.approvals_when_scripts_change,
        }
    }

    /// The policy an administrator asked for, or why it cannot be a policy.
    pub fn from_wire(policy: &PackagePolicy) -> Result<Self, String> {
        let p = Self {
            second_factor: policy.second_factor,
            ci: CiMethods::from_list(&policy.ci),
            attested_keys: policy.attested_keys,
            user_verification: policy.user_verification,
            approvals: policy.approvals,
            all_maintainers_enrolled: policy.all_maintainers_enrolled,
            approvals_when_scripts_change: policy.approvals_when_scripts_change,
        };
        if !(1..=MAX_APPROVALS).contains(&p.approvals) {
            return Err(format!("approvals must be between 1 and {MAX_APPROVALS}"));
        }
        if let Some(n) = p.approvals_when_scripts_change
            && (n <= p.approvals || n > MAX_APPROVALS)
        {
            return Err(format!(
                "approvals_when_scripts_change must be more than approvals ({}) and at most {MAX_APPROVALS}; leave it out to need {} approvals for every publish",
                p.approvals, p.approvals
            ));
        }
        if p.is_critical() && !p.requires_key() {
            return Err("attested keys, user verification, several approvals and enrolled maintainers are \
                 requirements on security-key taps: set second_factor to security-key as well"
                .into());
        }
        Ok(p)
    }

    /// The policy a policy-change intent names (its canonical JSON), if it is one.
    pub fn from_canonical(json: &str) -> Option<Self> {
        serde_json::from_str::<PackagePolicy>(json).ok().and_then(|w| Self::from_wire(&w).ok())
    }

    /// The canonical JSON shown in, and signed as part of, a policy-change intent. Requirements
    /// left at their defaults are left out, so policies written before they existed keep their
    /// canonical form.
    pub fn canonical(&self) -> String {
        serde_json::to_string(&self.to_wire()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn critical() -> Policy {
        Policy {
            attested_keys: true,
            user_verification: true,
            approvals: 2,
            all_maintainers_enrolled: true,
            approvals_when_scripts_change: Some(3),
            ..Policy::new(SecondFactor::SecurityKey)
        }
    }

    #[test]
    fn ci_paths_are_off_by_default_and_stored_in_a_fixed_order() {
        let plain = Policy::new(SecondFactor::SecurityKey);
        assert!(!plain.ci.allows(CiMethod::DeployKey));
        assert_eq!(
            plain.to_stored(),
            r#"{"v":1,"second_factor":"security-key"}"#,
            "unchanged for old policies"
        );
        let wire: PackagePolicy =
            serde_json::from_str(r#"{"second_factor":"security-key","ci":["oidc","deploy-key","oidc"]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        let p = Policy::from_wire(&wire).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            p.ci.allows(CiMethod::DeployKey) && p.ci.allows(CiMethod::Oidc) && !p.ci.allows(CiMethod::Stage)
        );
        assert_eq!(p.canonical(), r#"{"second_factor":"security-key","ci":["deploy-key","oidc"]}"#);
        assert_eq!(Policy::from_stored(&p.to_stored()).ok(), Some(p));
    }

    #[test]
    fn stored_policies_round_trip_and_old_ones_read_as_format_1() {
        let p = Policy::new(SecondFactor::SecurityKey);
        assert_eq!(
            p.to_stored(),
            r#"{"v":1,"second_factor":"security-key"}"#,
            "plain policies stay format 1"
        );
        assert_eq!(Policy::from_stored(&p.to_stored()).ok(), Some(p));
        let legacy = Policy::from_stored(r#"{"second_factor":"none"}"#).ok();
        assert_eq!(legacy, Some(Policy::new(SecondFactor::None)));
        let c = critical();
        assert!(c.to_stored().starts_with(r#"{"v":2,"#), "{}", c.to_stored());
        assert_eq!(Policy::from_stored(&c.to_stored()).ok(), Some(c));
    }

    #[test]
    fn newer_formats_and_unknown_requirements_are_refused() {
        let err = Policy::from_stored(r#"{"v":3,"second_factor":"none"}"#);
        assert!(matches!(err, Err(PolicyError::TooNew(3))), "{err:?}");
        assert!(matches!(Policy::from_stored("nonsense"), Err(PolicyError::Corrupt(_))));
        let unknown = Policy::from_stored(r#"{"v":2,"second_factor":"security-key","quorum":3}"#);
        assert!(matches!(unknown, Err(PolicyError::Corrupt(_))), "never silently ignored: {unknown:?}");
    }

    #[test]
    fn canonical_form_of_plain_policies_is_unchanged() {
        assert_eq!(Policy::new(SecondFactor::SecurityKey).canonical(), r#"{"second_factor":"security-key"}"#);
        let c = critical();
        assert_eq!(Policy::from_canonical(&c.canonical()), Some(c));
    }

    #[test]
    fn wire_policies_are_validated() {
        let mut w = critical().to_wire();
        assert!(Policy::from_wire(&w).is_ok());
        w.approvals = 0;
        assert!(Policy::from_wire(&w).is_err());
        w.approvals = 3;
        assert!(Policy::from_wire(&w).is_err(), "scripts approvals must exceed the base count");
        w.approvals = 2;
        w.second_factor = SecondFactor::None;
        assert!(Policy::from_wire(&w).is_err(), "critical needs taps");
    }

    #[test]
    fn strictness_and_approvals_needed() {
        let base = Policy::new(SecondFactor::SecurityKey);
        let c = critical();
        assert_eq!(c.approvals_needed(false), 2);
        assert_eq!(c.approvals_needed(true), 3);
        assert_eq!(base.approvals_needed(true), 1);
        assert!(c.at_least_as_strict_as(&base));
        assert!(!base.at_least_as_strict_as(&c));
        assert!(c.at_least_as_strict_as(&c));
        let fewer = Policy { approvals_when_scripts_change: None, ..c };
        assert!(!fewer.at_least_as_strict_as(&c), "dropping the scripts rule lowers the policy");
        let none = Policy::new(SecondFactor::None);
        assert!(!none.at_least_as_strict_as(&base));
    }
}

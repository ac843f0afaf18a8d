//! The stored package policy. It is kept as versioned JSON (`{"v": 1, …}`) separate from the
//! wire type, so that a server reading a policy written by a newer one refuses it clearly
//! instead of silently ignoring requirements it does not know.

use serde::{Deserialize, Serialize};
use tapgate_shared::api::{CiMethod, PackagePolicy, SecondFactor};

/// The newest stored format this server writes and understands.
pub const POLICY_FORMAT: u32 = 1;

/// A package's policy as the gate evaluates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub second_factor: SecondFactor,
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

    fn from_list(list: &[CiMethod]) -> Self {
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
struct Stored {
    /// Absent in policies written before the format was versioned: format 1.
    #[serde(default = "first_format")]
    v: u32,
    second_factor: SecondFactor,
    /// Absent: no CI path. (A server that predates it ignores it, which only takes CI's ways
    /// away, so the format stays 1.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ci: Vec<CiMethod>,
}

fn first_format() -> u32 {
    1
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
        Self { second_factor, ci: CiMethods::default() }
    }

    /// Whether changes need a maintainer's key tap.
    pub fn requires_key(&self) -> bool {
        self.second_factor == SecondFactor::SecurityKey
    }

    /// The stored form; also what the gate's guard compares inside the commit.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&Stored {
            v: POLICY_FORMAT,
            second_factor: self.second_factor,
            ci: self.ci.to_list(),
        })
        .unwrap_or_default()
    }

    pub fn from_stored(text: &str) -> Result<Self, PolicyError> {
        let stored: Stored = serde_json::from_str(text).map_err(|e| PolicyError::Corrupt(e.to_string()))?;
        if stored.v > POLICY_FORMAT {
            return Err(PolicyError::TooNew(stored.v));
        }
        Ok(Self { second_factor: stored.second_factor, ci: CiMethods::from_list(&stored.ci) })
    }

    pub fn to_wire(self) -> PackagePolicy {
        PackagePolicy { second_factor: self.second_factor, ci: self.ci.to_list() }
    }

    pub fn from_wire(policy: &PackagePolicy) -> Self {
        Self { second_factor: policy.second_factor, ci: CiMethods::from_list(&policy.ci) }
    }

    /// The canonical JSON shown in, and signed as part of, a policy-change intent.
    pub fn canonical(&self) -> String {
        serde_json::to_string(&self.to_wire()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_policies_round_trip_and_old_ones_read_as_format_1() {
        let p = Policy::new(SecondFactor::SecurityKey);
        assert_eq!(Policy::from_stored(&p.to_stored()).ok(), Some(p));
        let legacy = Policy::from_stored(r#"{"second_factor":"none"}"#).ok();
        assert_eq!(legacy, Some(Policy::new(SecondFactor::None)));
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
        let p = Policy::from_wire(&wire);
        assert!(
            p.ci.allows(CiMethod::DeployKey) && p.ci.allows(CiMethod::Oidc) && !p.ci.allows(CiMethod::Stage)
        );
        assert_eq!(p.canonical(), r#"{"second_factor":"security-key","ci":["deploy-key","oidc"]}"#);
        assert_eq!(Policy::from_stored(&p.to_stored()).ok(), Some(p));
    }

    #[test]
    fn newer_formats_are_refused() {
        let err = Policy::from_stored(r#"{"v":2,"second_factor":"none"}"#);
        assert!(matches!(err, Err(PolicyError::TooNew(2))), "{err:?}");
        assert!(matches!(Policy::from_stored("nonsense"), Err(PolicyError::Corrupt(_))));
    }
}

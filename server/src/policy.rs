//! The stored package policy. It is kept as versioned JSON (`{"v": 1, …}`) separate from the
//! wire type, so that a server reading a policy written by a newer one refuses it clearly
//! instead of silently ignoring requirements it does not know.

use serde::{Deserialize, Serialize};
use tapgate_shared::api::{PackagePolicy, SecondFactor};

/// The newest stored format this server writes and understands.
pub const POLICY_FORMAT: u32 = 1;

/// A package's policy as the gate evaluates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub second_factor: SecondFactor,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// Absent in policies written before the format was versioned: format 1.
    #[serde(default = "first_format")]
    v: u32,
    second_factor: SecondFactor,
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
        Self { second_factor }
    }

    /// Whether changes need a maintainer's key tap.
    pub fn requires_key(&self) -> bool {
        self.second_factor == SecondFactor::SecurityKey
    }

    /// The stored form; also what the gate's guard compares inside the commit.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&Stored { v: POLICY_FORMAT, second_factor: self.second_factor })
            .unwrap_or_default()
    }

    pub fn from_stored(text: &str) -> Result<Self, PolicyError> {
        let stored: Stored = serde_json::from_str(text).map_err(|e| PolicyError::Corrupt(e.to_string()))?;
        if stored.v > POLICY_FORMAT {
            return Err(PolicyError::TooNew(stored.v));
        }
        Ok(Self { second_factor: stored.second_factor })
    }

    pub fn to_wire(self) -> PackagePolicy {
        PackagePolicy { second_factor: self.second_factor }
    }

    pub fn from_wire(policy: &PackagePolicy) -> Self {
        Self { second_factor: policy.second_factor }
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
    fn newer_formats_are_refused() {
        let err = Policy::from_stored(r#"{"v":2,"second_factor":"none"}"#);
        assert!(matches!(err, Err(PolicyError::TooNew(2))), "{err:?}");
        assert!(matches!(Policy::from_stored("nonsense"), Err(PolicyError::Corrupt(_))));
    }
}

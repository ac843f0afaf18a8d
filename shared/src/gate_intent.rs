//! The intent of every gated change (format v2), and the challenge that binds a key's signature
//! to it.
//!
//! Every write that changes what installers receive, or who may change it, is an intent: *this*
//! user asks to make *this* change to *this* subject (a package, or for key changes an account).
//! A security key approving it signs
//!
//! ```text
//! challenge = SHA-256("tapgate-intent-v2" || canonical(intent) || nonce)
//! canonical(intent) = lp(action) || lp(subject) || lp(requested_by) || fields(change)
//! ```
//!
//! where `lp(s)` is a 4-byte big-endian length followed by the UTF-8 bytes, a list is a 4-byte
//! big-endian count followed by its items, an optional value is one byte `0` (absent) or `1`
//! followed by the value, and `fields(change)` are the change's fields in the order they are
//! declared below. The publish-only format v1 ([`crate::intent::Intent`]) stays verifiable.
//!
//! The client recomputes the challenge from the intent it means to approve before it touches a
//! key, so a registry cannot obtain a signature over a change the user did not choose.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separator of format v2.
pub const INTENT_DOMAIN_V2: &[u8] = b"tapgate-intent-v2";

/// Domain separator of a rejection: a maintainer's key saying "no" to an intent signs
/// `SHA-256("tapgate-reject-v2" || canonical(intent) || nonce)`, which can never be mistaken for
/// (or replayed as) an approval of it.
pub const REJECT_DOMAIN_V2: &[u8] = b"tapgate-reject-v2";

/// One version's deprecation message (empty: the deprecation is lifted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deprecation {
    pub version: String,
    pub message: String,
}

/// What a gated intent changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Change {
    /// Publish this exact tarball as `version` and point `tags` at it.
    Publish { version: String, integrity: String, tags: Vec<String> },
    /// Point `tag` at `version` (it pointed at `previous`, if anywhere).
    DistTagSet { tag: String, version: String, previous: Option<String> },
    /// Remove `tag`, which points at `version`.
    DistTagRemove { tag: String, version: String },
    /// Set (or, with an empty message, lift) each version's deprecation message.
    Deprecate { versions: Vec<Deprecation> },
    /// Stop serving `version` (whose tarball is `integrity`); the number is never reused.
    Unpublish { version: String, integrity: String },
    /// Stop serving every version of the package; the name stays with its maintainers.
    UnpublishPackage { versions: Vec<String> },
    /// Make `user` a maintainer.
    MaintainerAdd { user: String },
    /// Remove `user` from the maintainers.
    MaintainerRemove { user: String },
    /// Replace the package policy `old` (canonical JSON) with `new`.
    PolicySet { old: String, new: String },
    /// Enroll another security key on the account (the subject): its base64url credential id,
    /// and the hex SHA-256 of the attestation object that carries its public key, as the new key
    /// produced it.
    KeyAdd { name: String, credential_id: String, attestation_sha256: String },
    /// Remove a security key from the account (the subject).
    KeyRemove { key_id: String, name: String, credential_id: String },
    /// Let CI trade the credential `credential_id` (labelled `name`) for deploy keys that publish
    /// the package (the subject): versions in the npm range `versions`, setting only `tags`,
    /// until `expires_at` (RFC 3339, UTC), asked from addresses in `cidrs` (any when empty).
    CiCredentialCreate {
        credential_id: String,
        name: String,
        versions: String,
        tags: Vec<String>,
        expires_at: String,
        cidrs: Vec<String>,
    },
    /// Lift the lock `lock_id` (set at `locked_at`, RFC 3339) that repeated failed attempts put
    /// on the package. The lock id binds the tap to this lock: it cannot lift a later one.
    Unlock { lock_id: String, locked_at: String },
    /// Replace the package's webhook URLs `old` with `new` (both sorted): where its alerts go.
    WebhookSet { old: Vec<String>, new: Vec<String> },
    /// Reject the staged release `stage_id` (`version`, tarball `integrity`): it is never
    /// published, and its tarball is deleted.
    StageReject { stage_id: String, version: String, integrity: String },
    /// Trust ID tokens from `issuer` (the operator's issuer `provider`) whose claims meet
    /// `claims` (canonical JSON: sorted keys, no spaces) to obtain short-lived tokens that do
    /// `permissions` (npm's `createPackage`, `createStagedPackage`) for the package (the subject,
    /// which may not exist yet: a pending trusted publisher).
    TrustCreate {
        trust_id: String,
        issuer: String,
        provider: String,
        claims: String,
        permissions: Vec<String>,
    },
    /// Stop trusting the trust `trust_id` (of `issuer`, with `claims`).
    TrustRemove { trust_id: String, issuer: String, claims: String },
}

impl Change {
    /// The action's wire name (the `action` tag).
    pub fn action(&self) -> &'static str {
        match self {
            Self::Publish { .. } => "publish",
            Self::DistTagSet { .. } => "dist-tag-set",
            Self::DistTagRemove { .. } => "dist-tag-remove",
            Self::Deprecate { .. } => "deprecate",
            Self::Unpublish { .. } => "unpublish",
            Self::UnpublishPackage { .. } => "unpublish-package",
            Self::MaintainerAdd { .. } => "maintainer-add",
            Self::MaintainerRemove { .. } => "maintainer-remove",
            Self::PolicySet { .. } => "policy-set",
            Self::KeyAdd { .. } => "key-add",
            Self::KeyRemove { .. } => "key-remove",
            Self::CiCredentialCreate { .. } => "ci-credential-create",
            Self::Unlock { .. } => "unlock",
            Self::WebhookSet { .. } => "webhook-set",
            Self::StageReject { .. } => "stage-reject",
            Self::TrustCreate { .. } => "trust-create",
            Self::TrustRemove { .. } => "trust-remove",
        }
    }

    /// Whether the subject is an account (key changes) rather than a package.
    pub fn is_account_change(&self) -> bool {
        matches!(self, Self::KeyAdd { .. } | Self::KeyRemove { .. })
    }
}

/// A gated change as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateIntent {
    /// The package changed, or for key changes the account.
    pub subject: String,
    pub requested_by: String,
    #[serde(flatten)]
    pub change: Change,
}

struct Canonical(Vec<u8>);

impl Canonical {
    fn str(&mut self, s: &str) {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn count(&mut self, n: usize) {
        self.0.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }
}

impl GateIntent {
    /// The unambiguous byte encoding signed (through the challenge).
    pub fn canonical(&self) -> Vec<u8> {
        let mut c = Canonical(Vec::new());
        c.str(self.change.action());
        c.str(&self.subject);
        c.str(&self.requested_by);
        match &self.change {
            Change::Publish { version, integrity, tags } => {
                c.str(version);
                c.str(integrity);
                c.count(tags.len());
                tags.iter().for_each(|t| c.str(t));
            }
            Change::DistTagSet { tag, version, previous } => {
                c.str(tag);
                c.str(version);
                c.opt(previous.as_deref());
            }
            Change::DistTagRemove { tag, version } => {
                c.str(tag);
                c.str(version);
            }
            Change::Deprecate { versions } => {
                c.count(versions.len());
                for d in versions {
                    c.str(&d.version);
                    c.str(&d.message);
                }
            }
            Change::Unpublish { version, integrity } => {
                c.str(version);
                c.str(integrity);
            }
            Change::UnpublishPackage { versions } => {
                c.count(versions.len());
                versions.iter().for_each(|v| c.str(v));
            }
            Change::MaintainerAdd { user } | Change::MaintainerRemove { user } => c.str(user),
            Change::PolicySet { old, new } => {
                c.str(old);
                c.str(new);
            }
            Change::KeyAdd { name, credential_id, attestation_sha256 } => {
                c.str(name);
                c.str(credential_id);
                c.str(attestation_sha256);
            }
            Change::KeyRemove { key_id, name, credential_id } => {
                c.str(key_id);
                c.str(name);
                c.str(credential_id);
            }
            Change::CiCredentialCreate { credential_id, name, versions, tags, expires_at, cidrs } => {
                c.str(credential_id);
                c.str(name);
                c.str(versions);
                c.count(tags.len());
                tags.iter().for_each(|t| c.str(t));
                c.str(expires_at);
                c.count(cidrs.len());
                cidrs.iter().for_each(|a| c.str(a));
            }
            Change::Unlock { lock_id, locked_at } => {
                c.str(lock_id);
                c.str(locked_at);
            }
            Change::WebhookSet { old, new } => {
                c.count(old.len());
                old.iter().for_each(|u| c.str(u));
                c.count(new.len());
                new.iter().for_each(|u| c.str(u));
            }
            Change::StageReject { stage_id, version, integrity } => {
                c.str(stage_id);
                c.str(version);
                c.str(integrity);
            }
            Change::TrustCreate { trust_id, issuer, provider, claims, permissions } => {
                c.str(trust_id);
                c.str(issuer);
                c.str(provider);
                c.str(claims);
                c.count(permissions.len());
                permissions.iter().for_each(|p| c.str(p));
            }
            Change::TrustRemove { trust_id, issuer, claims } => {
                c.str(trust_id);
                c.str(issuer);
                c.str(claims);
            }
        }
        c.0
    }

    /// The WebAuthn challenge committing to this intent and `nonce`.
    pub fn challenge(&self, nonce: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(INTENT_DOMAIN_V2);
        h.update(self.canonical());
        h.update(nonce);
        h.finalize().into()
    }

    /// The WebAuthn challenge a key signs to reject this intent (see [`REJECT_DOMAIN_V2`]).
    pub fn reject_challenge(&self, nonce: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(REJECT_DOMAIN_V2);
        h.update(self.canonical());
        h.update(nonce);
        h.finalize().into()
    }

    /// Hex SHA-256 of the canonical form: what a ticket is bound to.
    pub fn digest(&self) -> String {
        let digest: [u8; 32] = Sha256::digest(self.canonical()).into();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The change in words, as the approval page and the CLI show it before the tap.
    pub fn describe(&self) -> String {
        let s = &self.subject;
        match &self.change {
            Change::Publish { version, integrity, tags } => {
                let tags = if tags.is_empty() {
                    String::new()
                } else {
                    format!(" and point {} at it", quoted_list(tags))
                };
                format!("Publish {s}@{version} (tarball {integrity}){tags}")
            }
            Change::DistTagSet { tag, version, previous: Some(prev) } => {
                format!("Move `{tag}` of {s} from {prev} to {version}")
            }
            Change::DistTagSet { tag, version, previous: None } => {
                format!("Point the new tag `{tag}` of {s} at {version}")
            }
            Change::DistTagRemove { tag, version } => {
                format!("Remove the tag `{tag}` of {s} (it points at {version})")
            }
            Change::Deprecate { versions } => {
                let parts: Vec<String> = versions
                    .iter()
                    .map(|d| {
                        if d.message.is_empty() {
                            format!("lift the deprecation of {s}@{}", d.version)
                        } else {
                            format!("deprecate {s}@{} with the message {:?}", d.version, d.message)
                        }
                    })
                    .collect();
                capitalise(&parts.join("; "))
            }
            Change::Unpublish { version, integrity } => {
                format!(
                    "Unpublish {s}@{version} (tarball {integrity}); the version number can never be reused"
                )
            }
            Change::UnpublishPackage { versions } => format!(
                "Unpublish all of {s} ({} version{}: {}); the name stays with its maintainers",
                versions.len(),
                if versions.len() == 1 { "" } else { "s" },
                versions.join(", ")
            ),
            Change::MaintainerAdd { user } => format!("Make {user} a maintainer of {s}"),
            Change::MaintainerRemove { user } => format!("Remove {user} from the maintainers of {s}"),
            Change::PolicySet { old, new } => format!("Change the policy of {s} from {old} to {new}"),
            Change::KeyAdd { name, credential_id, .. } => {
                format!(
                    "Enroll a new security key \"{name}\" (credential {credential_id}) on the account {s}"
                )
            }
            Change::KeyRemove { name, key_id, .. } => {
                format!("Remove the security key \"{name}\" ({key_id}) from the account {s}")
            }
            Change::CiCredentialCreate { credential_id, name, versions, tags, expires_at, cidrs } => {
                let from = if cidrs.is_empty() { "any address".to_string() } else { cidrs.join(", ") };
                format!(
                    "Let the CI credential \"{name}\" ({credential_id}) publish {s} versions {versions:?} with the tags {} until {expires_at}, from {from}",
                    quoted_list(tags)
                )
            }
            Change::WebhookSet { old, new } => {
                let list =
                    |urls: &[String]| if urls.is_empty() { "none".to_string() } else { urls.join(", ") };
                format!(
                    "Send the notifications of {s} to the webhooks {} (until now: {})",
                    list(new),
                    list(old)
                )
            }
            Change::Unlock { lock_id, locked_at } => format!(
                "Unlock {s}, locked at {locked_at} after repeated failed attempts (lock {lock_id}): its maintainers can change it again"
            ),
            Change::StageReject { stage_id, version, integrity } => format!(
                "Reject the staged release {s}@{version} (tarball {integrity}, stage {stage_id}): it will never be published"
            ),
            Change::TrustCreate { trust_id, issuer, provider, claims, permissions } => {
                let can: Vec<&str> = permissions
                    .iter()
                    .map(|p| match p.as_str() {
                        crate::oidc::PERMISSION_PUBLISH => "publish",
                        crate::oidc::PERMISSION_STAGE => "stage",
                        other => other,
                    })
                    .collect();
                format!(
                    "Trust CI ID tokens from {issuer} ({provider}) whose claims are {claims} to {} {s} without a tap (trust {trust_id})",
                    can.join(" and ")
                )
            }
            Change::TrustRemove { trust_id, issuer, claims } => {
                format!(
                    "Stop trusting CI ID tokens from {issuer} whose claims are {claims} for {s} (trust {trust_id})"
                )
            }
        }
    }
}

fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|t| format!("`{t}`")).collect();
    quoted.join(", ")
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish() -> GateIntent {
        GateIntent {
            subject: "left-pad".into(),
            requested_by: "alice".into(),
            change: Change::Publish {
                version: "1.0.0".into(),
                integrity: "sha512-AAAA".into(),
                tags: vec!["latest".into()],
            },
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn known_answer_vector_for_a_publish() {
        // Computed by hand from the documented encoding; a change to the format fails here.
        let mut expected = Vec::new();
        for s in ["publish", "left-pad", "alice", "1.0.0", "sha512-AAAA"] {
            expected.extend_from_slice(&(s.len() as u32).to_be_bytes());
            expected.extend_from_slice(s.as_bytes());
        }
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.extend_from_slice(&6u32.to_be_bytes());
        expected.extend_from_slice(b"latest");
        assert_eq!(publish().canonical(), expected);
        let nonce = [0u8; 32];
        let mut h = Sha256::new();
        h.update(b"tapgate-intent-v2");
        h.update(&expected);
        h.update(nonce);
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(hex(&publish().challenge(&nonce)), hex(&want));
    }

    #[test]
    fn known_answer_vector_for_a_ci_credential() {
        let intent = GateIntent {
            subject: "left-pad".into(),
            requested_by: "alice".into(),
            change: Change::CiCredentialCreate {
                credential_id: "ci_01".into(),
                name: "gha".into(),
                versions: "^1.0.0".into(),
                tags: vec!["latest".into()],
                expires_at: "2027-01-01T00:00:00Z".into(),
                cidrs: vec!["10.0.0.0/8".into(), "::1/128".into()],
            },
        };
        let mut expected = Vec::new();
        let lp = |e: &mut Vec<u8>, s: &str| {
            e.extend_from_slice(&(s.len() as u32).to_be_bytes());
            e.extend_from_slice(s.as_bytes());
        };
        for s in ["ci-credential-create", "left-pad", "alice", "ci_01", "gha", "^1.0.0"] {
            lp(&mut expected, s);
        }
        expected.extend_from_slice(&1u32.to_be_bytes());
        lp(&mut expected, "latest");
        lp(&mut expected, "2027-01-01T00:00:00Z");
        expected.extend_from_slice(&2u32.to_be_bytes());
        lp(&mut expected, "10.0.0.0/8");
        lp(&mut expected, "::1/128");
        assert_eq!(intent.canonical(), expected);
        assert_eq!(
            intent.describe(),
            "Let the CI credential \"gha\" (ci_01) publish left-pad versions \"^1.0.0\" with the tags `latest` \
             until 2027-01-01T00:00:00Z, from 10.0.0.0/8, ::1/128"
        );
    }

    #[test]
    fn known_answer_vector_for_an_unlock() {
        let unlock = GateIntent {
            subject: "left-pad".into(),
            requested_by: "alice".into(),
            change: Change::Unlock { lock_id: "lck_1".into(), locked_at: "2030-01-01T00:00:00Z".into() },
        };
        let mut expected = Vec::new();
        for s in ["unlock", "left-pad", "alice", "lck_1", "2030-01-01T00:00:00Z"] {
            expected.extend_from_slice(&(s.len() as u32).to_be_bytes());
            expected.extend_from_slice(s.as_bytes());
        }
        assert_eq!(unlock.canonical(), expected);
        let other = GateIntent {
            change: Change::Unlock { lock_id: "lck_2".into(), locked_at: "2030-01-01T00:00:00Z".into() },
            ..unlock.clone()
        };
        assert_ne!(unlock.digest(), other.digest(), "a tap unlocks one lock only");
        let json = serde_json::to_value(&unlock).unwrap_or_default();
        assert_eq!(json["action"], "unlock");
    }

    #[test]
    fn known_answer_vector_for_a_trust() {
        let intent = GateIntent {
            subject: "left-pad".into(),
            requested_by: "alice".into(),
            change: Change::TrustCreate {
                trust_id: "trust_01".into(),
                issuer: "https://iss".into(),
                provider: "github".into(),
                claims: "{\"repository\":\"a/b\"}".into(),
                permissions: vec!["createPackage".into()],
            },
        };
        let mut expected = Vec::new();
        let lp = |e: &mut Vec<u8>, s: &str| {
            e.extend_from_slice(&(s.len() as u32).to_be_bytes());
            e.extend_from_slice(s.as_bytes());
        };
        for s in [
            "trust-create",
            "left-pad",
            "alice",
            "trust_01",
            "https://iss",
            "github",
            "{\"repository\":\"a/b\"}",
        ] {
            lp(&mut expected, s);
        }
        expected.extend_from_slice(&1u32.to_be_bytes());
        lp(&mut expected, "createPackage");
        assert_eq!(intent.canonical(), expected);
        assert_eq!(
            intent.describe(),
            "Trust CI ID tokens from https://iss (github) whose claims are {\"repository\":\"a/b\"} to publish left-pad \
             without a tap (trust trust_01)"
        );
        let remove = GateIntent {
            change: Change::TrustRemove {
                trust_id: "trust_01".into(),
                issuer: "https://iss".into(),
                claims: "{}".into(),
            },
            ..intent.clone()
        };
        assert_ne!(remove.digest(), intent.digest());
        assert_eq!(serde_json::to_value(&remove).unwrap_or_default()["action"], "trust-remove");
    }

    #[test]
    fn every_field_changes_the_challenge() {
        let nonce = [3u8; 32];
        let base = publish().challenge(&nonce);
        let tag_move = |tag: &str, version: &str, previous: Option<&str>| GateIntent {
            change: Change::DistTagSet {
                tag: tag.into(),
                version: version.into(),
                previous: previous.map(Into::into),
            },
            ..publish()
        };
        let variants = vec![
            GateIntent { subject: "left-pab".into(), ..publish() },
            GateIntent { requested_by: "mallory".into(), ..publish() },
            GateIntent {
                change: Change::Publish {
                    version: "1.0.0".into(),
                    integrity: "sha512-AAAA".into(),
                    tags: vec!["next".into()],
                },
                ..publish()
            },
            GateIntent {
                change: Change::Publish {
                    version: "1.0.0".into(),
                    integrity: "sha512-AAAA".into(),
                    tags: vec![],
                },
                ..publish()
            },
            tag_move("latest", "1.0.0", None),
            tag_move("latest", "1.0.0", Some("")),
            tag_move("beta", "1.0.0", None),
            tag_move("latest", "1.0.1", None),
        ];
        let mut seen = vec![base];
        for v in variants {
            let c = v.challenge(&nonce);
            assert!(!seen.contains(&c), "{v:?} collides");
            seen.push(c);
        }
    }

    #[test]
    fn a_rejection_never_signs_the_approval_challenge() {
        let nonce = [9u8; 32];
        assert_ne!(publish().reject_challenge(&nonce), publish().challenge(&nonce));
        let mut h = Sha256::new();
        h.update(b"tapgate-reject-v2");
        h.update(publish().canonical());
        h.update(nonce);
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(publish().reject_challenge(&nonce), want);
    }

    #[test]
    fn actions_with_the_same_fields_differ() {
        let add = GateIntent { change: Change::MaintainerAdd { user: "bob".into() }, ..publish() };
        let remove = GateIntent { change: Change::MaintainerRemove { user: "bob".into() }, ..publish() };
        assert_ne!(add.canonical(), remove.canonical());
        assert_ne!(add.digest(), remove.digest());
    }

    #[test]
    fn list_boundaries_are_unambiguous() {
        let a = GateIntent {
            change: Change::Deprecate {
                versions: vec![Deprecation { version: "1.0.0".into(), message: "ab".into() }],
            },
            ..publish()
        };
        let b = GateIntent {
            change: Change::Deprecate {
                versions: vec![Deprecation { version: "1.0.0a".into(), message: "b".into() }],
            },
            ..publish()
        };
        assert_ne!(a.canonical(), b.canonical());
    }

    #[test]
    fn the_wire_form_round_trips_and_names_the_action() {
        let i = GateIntent {
            change: Change::DistTagSet {
                tag: "latest".into(),
                version: "1.0.0".into(),
                previous: Some("1.0.1".into()),
            },
            ..publish()
        };
        let json = serde_json::to_value(&i).unwrap_or_default();
        assert_eq!(json["action"], "dist-tag-set");
        assert_eq!(json["subject"], "left-pad");
        let back: GateIntent = serde_json::from_value(json).unwrap_or_else(|_| publish());
        assert_eq!(back, i);
        assert_eq!(i.describe(), "Move `latest` of left-pad from 1.0.1 to 1.0.0");
    }
}

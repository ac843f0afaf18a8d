//! The publish intent and the challenge that binds a key's signature to it.
//!
//! An intent is `{package, version, integrity, requested_by}`: *this* user asks to publish
//! *this* tarball (by its SHA-512 SRI) as *this* version. A security key approving it signs
//!
//! ```text
//! challenge = SHA-256("tapgate-intent-v1" || canonical(intent) || nonce)
//! ```
//!
//! where `canonical(intent)` is each field, in the order package, version, integrity,
//! requested_by, as a 4-byte big-endian length followed by its UTF-8 bytes, and `nonce` is 32
//! random bytes. The length prefixes make the encoding unambiguous: no two different intents have
//! the same canonical form. Anyone holding the intent, the nonce and the key's assertion can
//! recompute the challenge and check the signature without trusting the registry.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separator: a signature over an intent can never be mistaken for anything else.
pub const INTENT_DOMAIN: &[u8] = b"tapgate-intent-v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub package: String,
    pub version: String,
    /// `sha512-<base64>` of the exact tarball.
    pub integrity: String,
    pub requested_by: String,
}

impl Intent {
    /// The unambiguous byte encoding signed (through the challenge).
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [&self.package, &self.version, &self.integrity, &self.requested_by] {
            let bytes = field.as_bytes();
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// The WebAuthn challenge committing to this intent and `nonce`.
    pub fn challenge(&self, nonce: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(INTENT_DOMAIN);
        h.update(self.canonical());
        h.update(nonce);
        h.finalize().into()
    }
}

/// `sha512-<base64>` of `bytes`, as npm writes `dist.integrity`.
pub fn sri_sha512(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Sha512;
    format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent() -> Intent {
        Intent {
            package: "left-pad".into(),
            version: "1.0.0".into(),
            integrity: sri_sha512(b"tarball"),
            requested_by: "alice".into(),
        }
    }

    #[test]
    fn every_field_and_the_nonce_change_the_challenge() {
        let nonce = [7u8; 32];
        let base = intent().challenge(&nonce);
        assert_eq!(base, intent().challenge(&nonce), "deterministic");
        assert_ne!(base, intent().challenge(&[8u8; 32]));
        let variants = [
            Intent { package: "left-pab".into(), ..intent() },
            Intent { version: "1.0.1".into(), ..intent() },
            Intent { integrity: sri_sha512(b"tarbalL"), ..intent() },
            Intent { requested_by: "mallory".into(), ..intent() },
        ];
        for v in variants {
            assert_ne!(v.challenge(&nonce), base, "{v:?}");
        }
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = Intent { package: "ab".into(), version: "c".into(), ..intent() };
        let b = Intent { package: "a".into(), version: "bc".into(), ..intent() };
        assert_ne!(a.canonical(), b.canonical());
    }

    #[test]
    fn sri_matches_the_known_sha512_of_empty_input() {
        assert_eq!(
            sri_sha512(b""),
            "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
        );
    }
}

//! The registry's statement that an OIDC exchange published a version: `base64url(JSON payload)
//! "." base64url(Ed25519 signature)`, the signature by the registry's signing key `kid` over
//! `"tapgate-oidc-publish-v1." || base64url(payload)`. The payload names the version and its
//! tarball, the trust and the approval (the maintainer's tap) that created it, and carries the
//! ID token and the issuer's key that verified it, so that a verifier re-checks the token itself.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::jwt::Jwk;

/// Domain separation of what the statement's signature covers.
pub const OIDC_PUBLISH_DOMAIN: &[u8] = b"tapgate-oidc-publish-v1.";
/// The payload format this code writes and reads.
pub const OIDC_PUBLISH_FORMAT: u32 = 1;
const MAX_LEN: usize = 64 * 1024;

/// What the statement says. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcPublishPayload {
    pub v: u32,
    /// The registry signing key that signed it.
    pub kid: String,
    pub package: String,
    pub version: String,
    pub integrity: String,
    pub tags: Vec<String>,
    pub trust_id: String,
    /// The approval (maintainer tap) that created the trust.
    pub approval_id: String,
    pub issuer: String,
    /// The audience the registry required (`npm:<host>`).
    pub audience: String,
    /// The ID token as CI presented it.
    pub id_token: String,
    /// The issuer's key that verified it, as the issuer's JWKS served it.
    pub jwk: Jwk,
    pub exchanged_at: i64,
    pub published_at: i64,
}

/// A statement taken apart. Nothing in it is trusted before [`OidcPublish::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcPublish {
    pub payload: OidcPublishPayload,
    payload_b64: String,
    signature: [u8; 64],
}

impl OidcPublish {
    pub fn signing_input(payload_b64: &str) -> Vec<u8> {
        let mut input = OIDC_PUBLISH_DOMAIN.to_vec();
        input.extend_from_slice(payload_b64.as_bytes());
        input
    }

    pub fn encode_payload(payload: &OidcPublishPayload) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap_or_default())
    }

    pub fn assemble(payload_b64: &str, signature: &[u8; 64]) -> String {
        format!("{payload_b64}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Reads a statement; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<OidcPublish, String> {
        let text = text.trim();
        if text.len() > MAX_LEN {
            return Err("the OIDC publish statement is too long".into());
        }
        let (payload_b64, signature_b64) =
            text.split_once('.').ok_or("the OIDC publish statement is PAYLOAD.SIGNATURE")?;
        let json = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| "the OIDC publish statement's payload is not base64url")?;
        let payload: OidcPublishPayload = serde_json::from_slice(&json)
            .map_err(|e| format!("the OIDC publish statement is unreadable: {e}"))?;
        if payload.v != OIDC_PUBLISH_FORMAT {
            return Err(format!(
                "the OIDC publish statement is in format {}, which this tapgate does not read",
                payload.v
            ));
        }
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or("the OIDC publish statement's signature is not 64 bytes of base64url")?;
        Ok(OidcPublish { payload, payload_b64: payload_b64.to_string(), signature })
    }

    /// Whether the signature verifies with this Ed25519 public key (32 bytes).
    pub fn verify(&self, public_key: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 32]>::try_from(public_key) else { return false };
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&bytes) else { return false };
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify_strict(&Self::signing_input(&self.payload_b64), &signature).is_ok()
    }

    pub fn text(&self) -> String {
        Self::assemble(&self.payload_b64, &self.signature)
    }
}

//! Bearer secrets: random, prefixed, shown once, stored only as SHA-256, compared in constant
//! time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a secret is for; the prefix lets people and secret scanners recognise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    ApiToken,
    Invite,
    Ticket,
    CiCredential,
    DeployKey,
    Session,
    /// A short-lived registry token an OIDC exchange answered.
    OidcToken,
}

impl SecretKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::ApiToken => "tg_api_",
            Self::Invite => "tg_inv_",
            Self::Ticket => "tg_tkt_",
            Self::CiCredential => "tg_ci_",
            Self::DeployKey => "tg_dk_",
            Self::Session => "tg_ses_",
            Self::OidcToken => "tg_oidc_",
        }
    }
}

/// A newly generated secret. `plaintext` is shown to its owner once; only `hash` is stored.
pub struct NewSecret {
    pub plaintext: String,
    pub hash: String,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret").field("plaintext", &"<redacted>").field("hash", &self.hash).finish()
    }
}

/// 256 random bits, base64url, behind the kind's prefix.
pub fn generate(kind: SecretKind) -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let plaintext = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&plaintext);
    NewSecret { plaintext, hash }
}

/// SHA-256 of the secret, hex. What the database stores and looks up by.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two stored hashes.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `candidate` looks like a secret of `kind` (cheap pre-check before any lookup).
pub fn has_prefix(candidate: &str, kind: SecretKind) -> bool {
    candidate.starts_with(kind.prefix())
}

/// An unguessable identifier that is itself a capability (e.g. an approval page URL): 256
/// random bits behind `prefix`.
pub fn capability_id(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A short code people can type (8 characters, about 40 bits): only ever valid together with
/// the exact upload it was issued for, for five minutes, once.
pub fn short_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
    let mut rng = rand::rng();
    (0..8).map(|_| char::from(ALPHABET[rand::Rng::random_range(&mut rng, 0..ALPHABET.len())])).collect()
}

/// A short random public identifier, e.g. `tok_1f3a9c…`, for things that are not secrets.
pub fn public_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hash_to_what_is_stored() {
        let a = generate(SecretKind::ApiToken);
        let b = generate(SecretKind::ApiToken);
        assert!(a.plaintext.starts_with("tg_api_"));
        assert_ne!(a.plaintext, b.plaintext);
        assert_eq!(hash(&a.plaintext), a.hash);
        assert!(hashes_equal(&a.hash, &hash(&a.plaintext)));
        assert!(!hashes_equal(&a.hash, &b.hash));
        assert!(!format!("{a:?}").contains(&a.plaintext));
        // 32 bytes of entropy in base64url is 43 characters.
        assert_eq!(a.plaintext.len(), "tg_api_".len() + 43);
    }
}

//! The registry's Ed25519 signing key: it signs deploy keys and audit chain heads, and anyone
//! verifies them offline with the public keys at `GET /.well-known/tapgate-keys` (pinned by the
//! verifier).
//!
//! Keys live in the database, so every instance signs with the same one. The first is made on
//! first use; `tapgate-server signing-key rotate` makes a new one current and ends the old one's
//! period, which stays listed so that what it signed stays verifiable.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tapgate_shared::ci::{ServerKey, ServerKeys};

use crate::clock::UnixSeconds;
use crate::store::signing_keys::{ALG_EDDSA, SigningKeyRow};
use crate::store::{Store, StoreError, StoreResult};

/// A key id: derived from the public key, so the same key always has the same id.
pub fn kid_of(public_key: &[u8]) -> String {
    format!("tgk_{}", &hex::encode(Sha256::digest(public_key))[..16])
}

fn fresh(now: UnixSeconds) -> SigningKeyRow {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes().to_vec();
    SigningKeyRow {
        kid: kid_of(&public),
        alg: ALG_EDDSA.into(),
        public_key: public,
        private_key: seed.to_vec(),
        not_before: now,
        not_after: None,
    }
}

/// The key that signs now (made on first use).
pub async fn current(store: &Store, now: UnixSeconds) -> StoreResult<SigningKeyRow> {
    if let Some(key) = store.current_signing_key().await? {
        return Ok(key);
    }
    store.insert_first_signing_key(&fresh(now)).await?;
    store.current_signing_key().await?.ok_or_else(|| StoreError::Corrupt("no current signing key".into()))
}

/// Makes a new key current; returns (new kid, retired kid).
pub async fn rotate(store: &Store, now: UnixSeconds) -> StoreResult<(String, Option<String>)> {
    let key = fresh(now);
    let retired = store.rotate_signing_key(&key, now).await?;
    Ok((key.kid, retired))
}

/// Signs `message` with `key`.
pub fn sign(key: &SigningKeyRow, message: &[u8]) -> StoreResult<[u8; 64]> {
    let seed: [u8; 32] = key
        .private_key
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("signing key {} has a malformed seed", key.kid)))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed).sign(message).to_bytes())
}

/// A key as published.
pub fn public(key: &SigningKeyRow) -> ServerKey {
    ServerKey {
        kid: key.kid.clone(),
        alg: key.alg.clone(),
        public_key: URL_SAFE_NO_PAD.encode(&key.public_key),
        not_before: key.not_before,
        not_after: key.not_after,
    }
}

/// Every key, current and retired, as `GET /.well-known/tapgate-keys` lists them.
pub async fn published(store: &Store, now: UnixSeconds) -> StoreResult<ServerKeys> {
    current(store, now).await?;
    Ok(ServerKeys { keys: store.signing_keys().await?.iter().map(public).collect() })
}

/// Signs bytes with one of the registry's keys; the seam the audit head signer uses.
pub trait ServerSigner: Send + Sync + std::fmt::Debug {
    /// The key's id, as `GET /.well-known/tapgate-keys` lists it.
    fn key_id(&self) -> String;
    /// The 32-byte public key.
    fn public_key(&self) -> [u8; 32];
    /// An Ed25519 signature over `message`.
    fn sign(&self, message: &[u8]) -> [u8; 64];
}

/// The registry's current key, loaded from the database.
pub struct Ed25519Signer {
    kid: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Signer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Ed25519Signer {
    /// The key that signs at `now` (made on first use).
    pub async fn load(store: &Store, now: UnixSeconds) -> StoreResult<Self> {
        let row = current(store, now).await?;
        let seed: [u8; 32] = row
            .private_key
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("signing key {} has a malformed seed", row.kid)))?;
        Ok(Self { kid: row.kid, key: ed25519_dalek::SigningKey::from_bytes(&seed) })
    }
}

impl ServerSigner for Ed25519Signer {
    fn key_id(&self) -> String {
        self.kid.clone()
    }

    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_published_key_and_kids_name_keys() {
        let key = fresh(100);
        assert_eq!(key.kid, kid_of(&key.public_key));
        assert!(!format!("{key:?}").contains(&hex::encode(&key.private_key)));
        let payload = "eyJ2IjoxfQ";
        let signature = sign(&key, &tapgate_shared::ci::DeployKey::signing_input(payload)).unwrap_or([0; 64]);
        let text = tapgate_shared::ci::DeployKey::assemble(payload, &signature);
        // The payload is not a deploy key payload, so parse fails; check the signature directly.
        assert!(tapgate_shared::ci::DeployKey::parse(&text).is_err());
        let vk =
            ed25519_dalek::VerifyingKey::from_bytes(&key.public_key.clone().try_into().unwrap_or([0; 32]));
        assert!(vk.is_ok_and(|vk| {
            vk.verify_strict(
                &tapgate_shared::ci::DeployKey::signing_input(payload),
                &ed25519_dalek::Signature::from_bytes(&signature),
            )
            .is_ok()
        }));
        assert!(public(&key).valid_at(100) && !public(&key).valid_at(99));
    }
}

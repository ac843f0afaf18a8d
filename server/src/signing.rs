//! The server's Ed25519 signing key, behind a small trait so that every use (audit heads now,
//! deploy keys later) signs with one key the operator can publish. The key's seed is a server
//! secret in the database ([`crate::store::Store::server_secret`]), created on first use and
//! shared by every instance.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreResult};

/// The name of the key's seed among the server secrets.
const SEED_NAME: &str = "ed25519-signing-key";

/// Signs bytes with the server's key.
pub trait ServerSigner: Send + Sync + std::fmt::Debug {
    /// A short, stable id of the key (`ed25519:` and the first 16 hex digits of the SHA-256 of the
    /// public key).
    fn key_id(&self) -> String;
    /// The 32-byte public key.
    fn public_key(&self) -> [u8; 32];
    /// An Ed25519 signature over `message`.
    fn sign(&self, message: &[u8]) -> [u8; 64];

    fn public_key_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key())
    }
}

/// The Ed25519 key kept in the database.
pub struct Ed25519Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Signer").field("key_id", &self.key_id()).finish()
    }
}

impl Ed25519Signer {
    /// The server's key, created on first use.
    pub async fn load(store: &Store) -> StoreResult<Self> {
        let seed = store.server_secret(SEED_NAME).await?;
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&seed[..32.min(seed.len())]);
        Ok(Self { key: SigningKey::from_bytes(&bytes) })
    }
}

impl ServerSigner for Ed25519Signer {
    fn key_id(&self) -> String {
        let digest = Sha256::digest(self.public_key());
        format!("ed25519:{}", hex::encode(&digest[..8]))
    }

    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

//! The audit log's hash chains, as the server writes them and anyone verifies them.
//!
//! A chain is `package:<name>` (one per package) or `registry` (accounts and keys). Entry
//! number `seq` (1, 2, …) is a JSON text `entry` holding at least `{"chain", "seq", "at", "kind",
//! "body"}` (written with sorted keys and no spaces; the hash covers the text exactly as stored
//! and served), and
//!
//! ```text
//! hash(seq) = hex(SHA-256("tapgate-audit-v1\n" || hash(seq - 1) || "\n" || entry))
//! hash(0)   = 64 × "0"
//! ```
//!
//! So each entry commits to every entry before it: editing, deleting or reordering any entry
//! changes every later hash. The server periodically signs a chain's head with its Ed25519 key
//! over [`head_message`]; a client that kept a signed head detects a history rewritten later.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separator of entry hashes.
pub const AUDIT_DOMAIN_V1: &str = "tapgate-audit-v1";
/// Domain separator of signed heads.
pub const HEAD_DOMAIN_V1: &str = "tapgate-audit-head-v1";
/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of `entry` following `prev_hash`.
pub fn entry_hash(prev_hash: &str, entry: &str) -> String {
    let mut h = Sha256::new();
    h.update(AUDIT_DOMAIN_V1.as_bytes());
    h.update(b"\n");
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(entry.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the server's key signs for a chain's head.
pub fn head_message(chain: &str, seq: u64, hash: &str) -> Vec<u8> {
    format!("{HEAD_DOMAIN_V1}\n{chain}\n{seq}\n{hash}").into_bytes()
}

/// The chain of a package.
pub fn package_chain(package: &str) -> String {
    format!("package:{package}")
}

/// One entry as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    /// The entry's JSON text, exactly as hashed.
    pub entry: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A head the server signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    pub chain: String,
    pub seq: u64,
    pub hash: String,
    /// RFC 3339.
    pub signed_at: String,
    pub key_id: String,
    /// Ed25519 signature over [`head_message`], base64url.
    pub signature: String,
    /// The server's Ed25519 public key, base64url (32 bytes).
    pub public_key: String,
}

/// `GET /api/v1/packages/{name}/audit?after=SEQ&limit=N`: entries after `after`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub chain: String,
    pub entries: Vec<AuditEntry>,
    /// The chain's current length.
    pub head_seq: u64,
    /// The latest signed head, if the server signed one yet.
    pub signed_head: Option<SignedHead>,
}

/// Checks that `entries` are the whole chain `chain` from its first entry: numbered 1, 2, …
/// without gaps, each naming this chain and its number, each hash recomputed from the entry and
/// the previous hash. Answers why not, naming the first entry that does not hold.
pub fn verify_chain(chain: &str, entries: &[AuditEntry]) -> Result<(), String> {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        if e.seq != expected {
            return Err(format!(
                "entry {expected} is missing or out of order (found entry {} in its place): entries were deleted or reordered",
                e.seq
            ));
        }
        let value: serde_json::Value = serde_json::from_str(&e.entry)
            .map_err(|err| format!("entry {} is not valid JSON: {err}", e.seq))?;
        if value["chain"].as_str() != Some(chain) || value["seq"].as_u64() != Some(e.seq) {
            return Err(format!(
                "entry {} says it is entry {} of {}: entries were moved or reordered",
                e.seq, value["seq"], value["chain"]
            ));
        }
        if e.prev_hash != prev {
            return Err(format!(
                "entry {} does not follow entry {} (its previous hash differs): entries were deleted, reordered or rewritten",
                e.seq,
                e.seq - 1
            ));
        }
        let hash = entry_hash(&prev, &e.entry);
        if hash != e.hash {
            return Err(format!("entry {} was edited: its content does not match its hash", e.seq));
        }
        prev = hash;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let entry = format!(r#"{{"at":"t","body":{{}},"chain":"package:p","kind":"k","seq":{seq}}}"#);
                let hash = entry_hash(&prev, &entry);
                let e = AuditEntry { seq, entry, prev_hash: prev.clone(), hash: hash.clone() };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn known_answer() {
        let mut h = Sha256::new();
        h.update(b"tapgate-audit-v1\n");
        h.update(GENESIS.as_bytes());
        h.update(b"\n{}");
        let want: [u8; 32] = h.finalize().into();
        let want: String = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(entry_hash(GENESIS, "{}"), want);
        assert_eq!(head_message("registry", 3, "ab"), b"tapgate-audit-head-v1\nregistry\n3\nab".to_vec());
    }

    #[test]
    fn edits_deletions_and_reorders_are_detected() {
        let good = chain(4);
        assert_eq!(verify_chain("package:p", &good), Ok(()));
        let mut edited = good.clone();
        edited[1].entry = edited[1].entry.replace("\"k\"", "\"x\"");
        assert!(verify_chain("package:p", &edited).is_err_and(|e| e.contains("entry 2 was edited")));
        let mut deleted = good.clone();
        deleted.remove(1);
        assert!(verify_chain("package:p", &deleted).is_err());
        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert!(verify_chain("package:p", &reordered).is_err());
        let mut renumbered = good.clone();
        renumbered[1].seq = 3;
        renumbered[2].seq = 2;
        assert!(verify_chain("package:p", &renumbered).is_err());
        assert!(verify_chain("package:q", &good).is_err(), "another chain's entries");
    }
}

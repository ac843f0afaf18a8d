//! `tapgate audit NAME` shows a package's audit log; `tapgate audit verify NAME` checks it: every
//! entry's hash against the previous one, the registry's signature on its latest head, and the
//! signed head this client saw last time (kept in `audit-heads.json` in the config directory),
//! so a history rewritten since is detected even if the registry re-signs it.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use tapgate_shared::audit::{AuditEntry, AuditPage, SignedHead, head_message, verify_chain};

use super::encode_name;
use crate::api::Client;
use crate::cli::Global;
use crate::output::emit;

/// What this client remembers of a registry's audit log.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Seen {
    /// The registry's signing keys by key id, each pinned the first time it signed a head seen
    /// here: keys rotate (`tapgate-server signing-key rotate`), but a key id never changes key.
    #[serde(default)]
    keys: BTreeMap<String, String>,
    /// The last signed head seen per chain.
    heads: BTreeMap<String, SignedHead>,
}

type SeenFile = BTreeMap<String, Seen>;

fn seen_path() -> Result<std::path::PathBuf> {
    Ok(crate::credentials::config_dir()?.join("audit-heads.json"))
}

fn load_seen() -> Result<SeenFile> {
    let path = seen_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SeenFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn save_seen(seen: &SeenFile) -> Result<()> {
    let path = seen_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(seen)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Every entry of the package's chain, and the latest signed head.
async fn fetch(client: &Client, package: &str) -> Result<(String, Vec<AuditEntry>, Option<SignedHead>)> {
    let mut entries: Vec<AuditEntry> = Vec::new();
    loop {
        let after = entries.last().map(|e| e.seq).unwrap_or(0);
        let page: AuditPage =
            client.get(&format!("/api/v1/packages/{}/audit?after={after}", encode_name(package))).await?;
        let done = page.entries.is_empty()
            || u64::try_from(entries.len() + page.entries.len()).unwrap_or(0) >= page.head_seq;
        let last = page.entries.last().map(|e| e.seq);
        entries.extend(page.entries);
        if done || last.is_none_or(|l| l <= after) {
            return Ok((page.chain, entries, page.signed_head));
        }
    }
}

#[derive(Debug, Serialize)]
struct Listed {
    seq: u64,
    at: String,
    kind: String,
    summary: String,
}

/// One line describing an audit entry (its JSON as the registry serves it) for `audit list`.
pub fn summary(entry: &serde_json::Value) -> String {
    let body = &entry["body"];
    match entry["kind"].as_str() {
        Some("change.accepted") => {
            let by = body["evidence"]["keys"]
                .as_array()
                .map(|keys| {
                    keys.iter()
                        .map(|k| {
                            format!(
                                "{} ({})",
                                k["user"].as_str().unwrap_or("?"),
                                k["key"].as_str().unwrap_or("?")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "token, no tap".into());
            format!("{} — by {}", body["description"].as_str().unwrap_or("?"), by)
        }
        Some("change.refused") => format!(
            "refused: {} — {}",
            body["description"].as_str().unwrap_or("?"),
            body["reason"].as_str().unwrap_or("?")
        ),
        Some("attempt.failed") => format!(
            "failed attempt ({}) by {}: {}",
            body["failure"].as_str().unwrap_or("?"),
            body["account"].as_str().unwrap_or("anonymous"),
            body["detail"].as_str().unwrap_or("")
        ),
        Some("package.locked") => format!("LOCKED after {} failed attempts", body["failures"]),
        _ => body.to_string(),
    }
}

pub async fn list(g: &Global, package: &str) -> Result<()> {
    let client = Client::new(&g.server, crate::credentials::token_for(&g.server)?)?;
    let (_, entries, _) = fetch(&client, package).await?;
    let listed: Vec<Listed> = entries
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.entry).unwrap_or_default();
            Listed {
                seq: e.seq,
                at: v["at"].as_str().unwrap_or_default().to_string(),
                kind: v["kind"].as_str().unwrap_or_default().to_string(),
                summary: summary(&v),
            }
        })
        .collect();
    emit(g.json, &listed, || {
        listed.iter().map(|l| format!("{}\t{}\t{}", l.seq, l.at, l.summary)).collect::<Vec<_>>().join("\n")
    });
    Ok(())
}

/// Whether the registry's Ed25519 signature on a chain head verifies with `public_key`
/// (base64url).
pub fn check_signature(head: &SignedHead, public_key: &str) -> Result<()> {
    let key: [u8; 32] = URL_SAFE_NO_PAD
        .decode(public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .context("the registry's signing key is not a 32-byte Ed25519 key")?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(&head.signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .context("the signed head's signature is not an Ed25519 signature")?;
    let key = VerifyingKey::from_bytes(&key).map_err(|e| anyhow!("invalid signing key: {e}"))?;
    key.verify_strict(&head_message(&head.chain, head.seq, &head.hash), &Signature::from_bytes(&signature))
        .map_err(|_| {
            anyhow!("the registry's signature on head {} of {} does not verify", head.seq, head.chain)
        })
}

#[derive(Debug, Serialize)]
struct Verified {
    chain: String,
    entries: u64,
    head: Option<String>,
    signed_head: Option<SignedHead>,
}

pub async fn verify(g: &Global, package: &str) -> Result<()> {
    let client = Client::new(&g.server, crate::credentials::token_for(&g.server)?)?;
    let (chain, entries, signed) = fetch(&client, package).await?;
    let fail = |why: String| anyhow!("the audit log of {package} does not verify: {why}");
    verify_chain(&chain, &entries).map_err(fail)?;
    let hash_at = |seq: u64| {
        entries.get(usize::try_from(seq).unwrap_or(usize::MAX).wrapping_sub(1)).map(|e| e.hash.as_str())
    };
    let mut seen_file = load_seen()?;
    let registry = crate::credentials::normalise(&g.server);
    let seen = seen_file.entry(registry).or_default();
    if let Some(head) = &signed {
        if head.chain != chain {
            return Err(fail(format!("the signed head is for {}", head.chain)));
        }
        match seen.keys.get(&head.key_id) {
            Some(pinned) if *pinned != head.public_key => {
                return Err(fail(format!(
                    "the registry's signing key {} changed (it was {pinned}, now {}): its history may have been rewritten",
                    head.key_id, head.public_key
                )));
            }
            _ => {}
        }
        check_signature(head, &head.public_key).map_err(|e| fail(e.to_string()))?;
        if hash_at(head.seq) != Some(head.hash.as_str()) {
            return Err(fail(format!(
                "the registry signed entry {} with hash {}, but the log it serves differs there: entries were edited, deleted or reordered",
                head.seq, head.hash
            )));
        }
    }
    if let Some(before) = seen.heads.get(&chain)
        && hash_at(before.seq) != Some(before.hash.as_str())
    {
        bail!(
            "the audit log of {package} was rewritten: when you last verified it, entry {} had the signed hash {} (signed at {}), and the log served now {}",
            before.seq,
            before.hash,
            before.signed_at,
            match hash_at(before.seq) {
                Some(h) => format!("has {h} there"),
                None => "is shorter".to_string(),
            }
        );
    }
    if let Some(head) = &signed {
        seen.keys.entry(head.key_id.clone()).or_insert_with(|| head.public_key.clone());
        if seen.heads.get(&chain).is_none_or(|b| b.seq <= head.seq) {
            seen.heads.insert(chain.clone(), head.clone());
        }
        save_seen(&seen_file)?;
    }
    let report = Verified {
        chain: chain.clone(),
        entries: u64::try_from(entries.len()).unwrap_or(0),
        head: entries.last().map(|e| e.hash.clone()),
        signed_head: signed.clone(),
    };
    emit(g.json, &report, || {
        let signed = match &signed {
            Some(h) => format!("; the registry signed entry {} at {} ({})", h.seq, h.signed_at, h.key_id),
            None => "; no head signed yet".to_string(),
        };
        format!(
            "ok: {} entries of {chain} verified, each committing to the one before{signed}",
            entries.len()
        )
    });
    Ok(())
}

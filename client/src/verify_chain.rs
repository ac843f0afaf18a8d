//! Offline verification of a version CI published with a deploy key. The chain is
//!
//! 1. a maintainer's tap over a CI credential's scope (checked like every tap, against the
//!    verifier's keyring, by [`crate::verify`]);
//! 2. the deploy key, signed by the registry with a key the verifier pinned (a saved copy of
//!    `/.well-known/tapgate-keys`), naming that credential;
//! 3. the tarball, whose integrity the deploy key names.
//!
//! The deploy key must also lie within the scope the maintainer tapped: the version in its
//! range, its dist-tags among the allowed ones, issued before the credential expired. So a
//! registry (or its signing key) alone cannot make a publish look authorized by a maintainer
//! beyond what the maintainer approved.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tapgate_shared::api::ApprovalRecord;
use tapgate_shared::ci::{DeployKey, ServerKeys, parse_utc};
use tapgate_shared::gate_intent::{Change, GateIntent};
use tapgate_shared::intent::sri_sha512;
use tapgate_shared::version_range::satisfies;

use crate::verify::Verification;

/// Reads pinned registry keys: each file a saved `/.well-known/tapgate-keys` document.
pub fn load_server_keys(files: &[PathBuf]) -> Result<ServerKeys> {
    let mut all = ServerKeys::default();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the server keys {}", file.display()))?;
        let keys: ServerKeys = serde_json::from_str(&text).with_context(|| {
            format!("{} is not a saved /.well-known/tapgate-keys document", file.display())
        })?;
        all.keys.extend(keys.keys);
    }
    Ok(all)
}

/// The signing key of a deploy key, with its checks.
fn signed_by_pinned_key(key: &DeployKey, pinned: &ServerKeys) -> Result<String, String> {
    if pinned.keys.is_empty() {
        return Err(
            "you pinned no registry signing keys: save the registry's /.well-known/tapgate-keys once, \
                    check it, and pass it with --server-key FILE"
                .into(),
        );
    }
    let p = &key.payload;
    let candidates: Vec<_> = pinned.keys.iter().filter(|k| k.kid == p.kid).collect();
    if candidates.is_empty() {
        return Err(format!("the deploy key is signed by {:?}, a key you did not pin", p.kid));
    }
    let Some(signer) = candidates.iter().find(|k| k.public_key_bytes().is_some_and(|pk| key.verify(&pk)))
    else {
        return Err(format!(
            "the deploy key's signature does not verify with the pinned key {:?}: it is forged or was altered",
            p.kid
        ));
    };
    if signer.alg != "EdDSA" {
        return Err(format!("the pinned key {:?} is not an EdDSA key", p.kid));
    }
    if !signer.valid_at(p.issued_at) {
        return Err(format!("the deploy key was issued outside the period of the key {:?}", p.kid));
    }
    Ok(format!("signed by the registry key {} you pinned", p.kid))
}

/// The credential scope the record's tap approved, if that is what it approved.
fn tapped_scope<'a>(record: &'a ApprovalRecord, package: &str) -> Result<&'a GateIntent, String> {
    match &record.gate_intent {
        Some(intent @ GateIntent { subject, change: Change::CiCredentialCreate { .. }, .. }) => {
            if subject != package {
                return Err(format!("the tapped CI credential is for {subject}, not {package}"));
            }
            if record.intent.package != *subject || record.intent.requested_by != intent.requested_by {
                return Err("the record's summary differs from the intent the key signed".into());
            }
            Ok(intent)
        }
        Some(other) => Err(format!("the record's tap approves another change: {}", other.describe())),
        None => Err("the record holds no CI credential approval".into()),
    }
}

/// Adds the deploy-key chain's checks to `v` (the tap's are added by the caller).
pub fn check(
    v: &mut Verification,
    record: &ApprovalRecord,
    package: &str,
    version: &str,
    tarball: &[u8],
    published_integrity: &str,
    pinned: &ServerKeys,
) {
    let parsed = DeployKey::parse(record.deploy_key.as_deref().unwrap_or_default());
    let key = match parsed {
        Ok(key) => key,
        Err(e) => {
            v.push("the deploy key is readable", Err(e));
            return;
        }
    };
    let p = &key.payload;
    v.push("the deploy key is signed by a registry key you pinned", signed_by_pinned_key(&key, pinned));
    v.push(
        "the deploy key names this version",
        if p.package == package && p.version == version {
            Ok(format!("{package}@{version}, dist-tags {}", p.tags.join(", ")))
        } else {
            Err(format!("the deploy key is for {}@{}", p.package, p.version))
        },
    );
    let actual = sri_sha512(tarball);
    v.push(
        "tarball matches the deploy key's integrity",
        if actual == p.integrity && actual == published_integrity {
            Ok(actual.clone())
        } else {
            Err(format!(
                "tarball is {actual}, deploy key says {}, registry publishes {published_integrity}",
                p.integrity
            ))
        },
    );
    let scope = tapped_scope(record, package);
    v.push(
        "the tap approved the CI credential the deploy key names",
        match &scope {
            Ok(GateIntent {
                change: Change::CiCredentialCreate { credential_id, name, .. },
                requested_by,
                ..
            }) if *credential_id == p.credential_id => {
                Ok(format!("credential {credential_id} ({name:?}) created by {requested_by}"))
            }
            Ok(_) => Err(format!("the deploy key names the credential {}, the tap another", p.credential_id)),
            Err(e) => Err(e.clone()),
        },
    );
    if let Ok(GateIntent { change: Change::CiCredentialCreate { versions, tags, expires_at, .. }, .. }) =
        scope
    {
        let within = if !satisfies(&p.version, versions) {
            Err(format!("{} is outside the approved versions {versions:?}", p.version))
        } else if let Some(t) = p.tags.iter().find(|t| !tags.contains(t)) {
            Err(format!("the dist-tag {t} is not among the approved ones ({})", tags.join(", ")))
        } else if parse_utc(expires_at).is_none_or(|end| p.issued_at >= end) {
            Err(format!("the deploy key was issued after the credential expired ({expires_at})"))
        } else if p.expires_at < p.issued_at {
            Err("the deploy key expires before it was issued".into())
        } else {
            Ok(format!("versions {versions:?}, tags {}, until {expires_at}", tags.join(", ")))
        };
        v.push("the deploy key is within the approved scope", within);
    }
}

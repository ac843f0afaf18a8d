//! The audit log: an append-only, hash-chained record per package (`package:<name>`) and for the
//! registry (`registry`: accounts and keys) of every gate decision — changes accepted (in the
//! transaction that commits them), refusals and failed attempts, locks and unlocks, key,
//! maintainer and policy changes. The chain format is in [`tapgate_shared::audit`]; the server
//! signs each chain's head periodically with its Ed25519 key ([`crate::signing`]).
//!
//! Entries name accounts and keys, never client addresses (those stay in the alerts and the
//! failure records, which can be purged; the log is public and permanent).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tapgate_shared::audit::{head_message, package_chain};
use tapgate_shared::gate_intent::GateIntent;

use crate::clock::rfc3339;
use crate::notify::events::Authorized;
use crate::signing::ServerSigner;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::audit::{AuditDraft, SignedHeadRow};
use crate::store::lockout::{FailureRow, PackageLock};

/// The registry's own chain.
pub const REGISTRY_CHAIN: &str = "registry";

/// The chain an intent's subject belongs to.
pub fn chain_of(intent: &GateIntent) -> String {
    if intent.change.is_account_change() {
        REGISTRY_CHAIN.to_string()
    } else {
        package_chain(&intent.subject)
    }
}

/// A change the gate accepted, as its commit records it.
pub fn accepted(intent: &GateIntent, authorized: &Authorized) -> AuditDraft {
    let keys: Vec<Value> = authorized.keys.iter().map(|(u, k)| json!({ "user": u, "key": k })).collect();
    AuditDraft {
        chain: chain_of(intent),
        kind: "change.accepted".into(),
        body: json!({
            "action": intent.change.action(),
            "subject": intent.subject,
            "requested_by": intent.requested_by,
            "description": intent.describe(),
            "intent_digest": intent.digest(),
            "intent": intent,
            "evidence": { "kind": authorized.kind, "approval_id": authorized.approval_id, "keys": keys },
        }),
    }
}

/// A change the gate refused (other than a failed second factor, recorded by [`failed`]).
pub fn refused(package: &str, intent: &GateIntent, reason: &str) -> AuditDraft {
    AuditDraft {
        chain: package_chain(package),
        kind: "change.refused".into(),
        body: json!({
            "action": intent.change.action(),
            "subject": intent.subject,
            "requested_by": intent.requested_by,
            "description": intent.describe(),
            "reason": reason,
        }),
    }
}

/// A failed second-factor attempt.
pub fn failed(
    package: &str,
    kind: &str,
    account: Option<&str>,
    key: Option<&str>,
    detail: &str,
    counted: bool,
) -> AuditDraft {
    AuditDraft {
        chain: package_chain(package),
        kind: "attempt.failed".into(),
        body: json!({ "failure": kind, "account": account, "key": key, "detail": detail, "counted": counted }),
    }
}

/// A lock and the failures that set it.
pub fn locked(lock: &PackageLock, failures: &[FailureRow]) -> AuditDraft {
    let listed: Vec<Value> = failures
        .iter()
        .map(|f| json!({ "at": rfc3339(f.at), "failure": f.kind, "account": f.account, "key": f.key_id }))
        .collect();
    AuditDraft {
        chain: package_chain(&lock.package),
        kind: "package.locked".into(),
        body: json!({ "lock_id": lock.lock_id, "failures": lock.failures, "attempts": listed }),
    }
}

/// Records a refusal on its own.
pub async fn record_refusal(
    state: &AppState,
    package: &str,
    intent: &GateIntent,
    reason: &str,
) -> Result<(), StoreError> {
    state.store.append_audit(&[refused(package, intent, reason)], state.now()).await
}

/// Signs every chain head extended since it was last signed; answers how many.
pub async fn sign_heads(state: &AppState, signer: &dyn ServerSigner) -> Result<usize, StoreError> {
    let heads = state.store.unsigned_heads().await?;
    let now = state.now();
    for (chain, seq, hash) in &heads {
        let message = head_message(chain, u64::try_from(*seq).unwrap_or(0), hash);
        let head = SignedHeadRow {
            chain: chain.clone(),
            seq: *seq,
            hash: hash.clone(),
            signed_at: now,
            key_id: signer.key_id(),
            signature: URL_SAFE_NO_PAD.encode(signer.sign(&message)),
        };
        state.store.add_signed_head(&head).await?;
    }
    Ok(heads.len())
}

/// Signs heads every `every` until the task is aborted, with whichever key is current at each
/// round (so a rotated key takes over without a restart).
pub async fn run_signer(state: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let signed = match crate::signing::Ed25519Signer::load(&state.store, state.now()).await {
            Ok(signer) => sign_heads(&state, &signer).await.map(|n| (n, signer.key_id())),
            Err(e) => Err(e),
        };
        match signed {
            Ok((0, _)) => {}
            Ok((n, key_id)) => tracing::info!(heads = n, key_id = %key_id, "audit heads signed"),
            Err(e) => tracing::warn!(error = %e, "cannot sign audit heads"),
        }
    }
}

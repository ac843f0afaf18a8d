//! What an operator's act on an account leaves behind: the user's notice and the registry
//! chain's audit entry, written with the act in one transaction.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::audit::REGISTRY_CHAIN;
use crate::clock::{UnixSeconds, rfc3339};
use crate::store::audit::AuditDraft;
use crate::store::effects::{Effects, Notice};
use crate::store::keys::SecurityKey;

/// An operator revoked `key` of `username` (id `user_id`) on the registry at `registry`.
pub fn key_revoked(
    registry: &str,
    username: &str,
    user_id: &str,
    key: &SecurityKey,
    reason: &str,
    now: UnixSeconds,
) -> Effects {
    let credential_id = URL_SAFE_NO_PAD.encode(&key.credential_id);
    let summary = format!("{username}: security key \"{}\" was revoked by an operator", key.name);
    let text = format!(
        "On {registry}, an operator revoked your security key \"{}\" ({}) at {}: {reason}.\n\n\
         It can no longer sign in or approve anything, and changes it approved that were not \
         committed yet will not be. If you did not ask for this, contact your registry's \
         administrators now.",
        key.name,
        key.id,
        rfc3339(now),
    );
    let payload = json!({
        "type": "key.revoked",
        "registry": registry,
        "account": username,
        "key": { "id": key.id, "name": key.name, "credential_id": credential_id },
        "reason": reason,
        "by": "operator",
        "at": rfc3339(now),
        "summary": summary,
        "text": text,
    });
    let notice = Notice {
        kind: "key-change".into(),
        topic: "key-remove".into(),
        package: None,
        account: Some(user_id.to_string()),
        payload: payload.to_string(),
        // A key taken away is something its owner hears about whatever they chose.
        alert: true,
        // An email to the user's verified address (only a server with SMTP verified one).
        email: true,
    };
    let audit = AuditDraft {
        chain: REGISTRY_CHAIN.into(),
        kind: "key.revoked".into(),
        body: json!({
            "user": username,
            "key": key.id,
            "name": key.name,
            "credential_id": credential_id,
            "by": "operator",
            "reason": reason,
        }),
    };
    Effects { notice: Some(notice), audit: vec![audit] }
}

//! What approvers are shown besides the intent: the registry, when and from where the change was
//! asked, and for a publish what its tarball holds and changes against the previous version
//! ([`crate::publish::diff`]). Recorded when the intent is created, served with the approval.
//! Informational only: the intent is what a tap binds, never this.

use tapgate_shared::api::ApprovalDetails;
use tapgate_shared::gate_intent::Change;
use tapgate_shared::publish_diff::clip;

use super::approvals::short;
use super::{GateError, Request};
use crate::clock::rfc3339;
use crate::state::AppState;
use crate::store::approvals::Approval;

/// Longest `User-Agent` recorded, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// The details of a new approval for `request`, as stored (JSON).
pub async fn record(state: &AppState, request: &Request<'_>, now: i64) -> Result<String, GateError> {
    let publish = match (&request.intent.change, request.tarball) {
        (Change::Publish { version, .. }, Some(tarball)) => {
            crate::publish::diff::of_upload(state, &request.intent.subject, version, tarball).await?
        }
        _ => None,
    };
    let origin = request.origin;
    let user_agent = origin.and_then(|o| o.user_agent.as_deref()).map(|ua| {
        let printable: String = ua.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
        clip(&printable, MAX_USER_AGENT_CHARS)
    });
    let registry = &state.config.origin;
    let host = registry.host_str().unwrap_or_default();
    let details = ApprovalDetails {
        registry: registry.port().map_or_else(|| host.to_string(), |port| format!("{host}:{port}")),
        requested_at: rfc3339(now),
        ip: origin.and_then(|o| o.ip).map(|ip| ip.to_string()),
        user_agent,
        publish,
    };
    serde_json::to_string(&details).map_err(|e| GateError::Corrupt(e.to_string()))
}

/// An approval's stored details; none when it has none or they cannot be read (logged: they are
/// informational, so the approval stays usable).
pub fn read(approval: &Approval) -> Option<ApprovalDetails> {
    let text = approval.details.as_deref()?;
    serde_json::from_str(text)
        .map_err(
            |e| tracing::warn!(approval_id = %short(&approval.id), error = %e, "approval details unreadable"),
        )
        .ok()
}

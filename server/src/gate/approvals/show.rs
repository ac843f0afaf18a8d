//! An approval as shown: where it stands, who has approved, and its page.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tapgate_shared::api::ApprovalInfo;
use tapgate_shared::gate_intent::GateIntent;
use webauthn_rs_core::proto::{AuthenticationState, PublicKeyCredentialRequestOptions};

use super::MAX_FAILED_ATTEMPTS;
use crate::clock::rfc3339;
use crate::gate::GateError;
use crate::state::AppState;
use crate::store::approvals::Approval;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Used,
    Expired,
    /// A maintainer rejected it: void.
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::Rejected => "rejected",
        }
    }

    pub fn of(a: &Approval, now: i64) -> Self {
        if a.used_at.is_some() {
            Self::Used
        } else if a.rejected_at.is_some() {
            Self::Rejected
        } else if a.approved_at.is_some() {
            if a.ticket_expires_at.is_some_and(|t| t > now) { Self::Approved } else { Self::Expired }
        } else if a.expires_at <= now || a.failed_attempts >= MAX_FAILED_ATTEMPTS {
            Self::Expired
        } else {
            Self::Pending
        }
    }
}

/// What is stored in `approvals.auth_state`: the webauthn state and the options sent.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredCeremony {
    pub state: AuthenticationState,
    pub options: PublicKeyCredentialRequestOptions,
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, GateError> {
    serde_json::from_str(text).map_err(|e| GateError::Corrupt(format!("corrupt approval data: {e}")))
}

pub fn page_url(state: &AppState, id: &str) -> String {
    state.config.url(&format!("/approve/{id}"))
}

pub fn done_url(state: &AppState, secret: &str) -> String {
    state.config.url(&format!("/-/v1/done/approvals/{secret}"))
}

/// A log-safe prefix of a capability id.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

pub async fn load(state: &AppState, id: &str) -> Result<Approval, GateError> {
    state
        .store
        .approval(id)
        .await?
        .ok_or_else(|| GateError::NotFound("no such approval: start the change again".into()))
}

/// The intent an approval approves (format 2), rebuilt from its record.
pub fn intent_of(a: &Approval) -> Result<Option<GateIntent>, GateError> {
    a.intent.as_deref().map(decode).transpose()
}

/// The people who tapped an approval, each once, in the order they tapped: (id, name).
pub async fn signers(state: &AppState, approval_id: &str) -> Result<Vec<(String, String)>, GateError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for sig in state.store.approval_signatures(approval_id).await? {
        if seen.insert(sig.user_id.clone()) {
            let name = state.store.user_by_id(&sig.user_id).await?.map(|u| u.name).unwrap_or_default();
            out.push((sig.user_id, name));
        }
    }
    Ok(out)
}

/// How many of `signers` count towards `approval`: without the requester's own tap where it is
/// demanded, the approval stays one short however many others tapped.
pub fn counted(approval: &Approval, signers: &[(String, String)]) -> u32 {
    let n = u32::try_from(signers.len()).unwrap_or(u32::MAX);
    let required = u32::try_from(approval.required_taps).unwrap_or(1);
    if approval.requester_must_sign && !signers.iter().any(|(id, _)| *id == approval.requested_by) {
        n.min(required.saturating_sub(1))
    } else {
        n
    }
}

/// The approval as shown to whoever holds its URL.
pub async fn info(state: &AppState, approval: &Approval) -> Result<ApprovalInfo, GateError> {
    let requester = state.store.user_by_id(&approval.requested_by).await?;
    let status = Status::of(approval, state.now());
    let public_key = if status == Status::Pending {
        let stored: StoredCeremony = decode(&approval.auth_state)?;
        Some(stored.options)
    } else {
        None
    };
    let intent = intent_of(approval)?;
    let signers = signers(state, &approval.id).await?;
    let rejected_by = match &approval.rejected_by {
        Some(id) => Some(state.store.user_by_id(id).await?.map(|u| u.name).unwrap_or_default()),
        None => None,
    };
    Ok(ApprovalInfo {
        id: approval.id.clone(),
        url: page_url(state, &approval.id),
        package: approval.package.clone(),
        version: approval.version.clone(),
        integrity: approval.integrity.clone(),
        requested_by: requester.map(|u| u.name).unwrap_or_default(),
        status: status.as_str().into(),
        expires_at: rfc3339(approval.expires_at),
        public_key,
        description: intent.as_ref().map(GateIntent::describe).unwrap_or_else(|| {
            format!("Publish {}@{} (tarball {})", approval.package, approval.version, approval.integrity)
        }),
        action: approval.action.clone(),
        intent,
        nonce: Some(URL_SAFE_NO_PAD.encode(&approval.nonce)),
        approvals: counted(approval, &signers),
        required: u32::try_from(approval.required_taps).unwrap_or(1),
        approved_by: signers.into_iter().map(|(_, name)| name).collect(),
        rejected_by,
        details: crate::gate::details::read(approval),
    })
}

/// Base64url helper for records.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

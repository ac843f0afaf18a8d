//! Rejecting an approval: any maintainer of the package (or the requester, cancelling their own
//! request) taps a challenge that commits to *rejecting* this exact intent, and the approval is
//! void from then on, even if its ticket was already handed out.
//!
//! The key signs `SHA-256("tapgate-reject-v2" || canonical(intent) || nonce)` with the
//! approval's nonce: a rejection can never be presented as an approval of the same change. The
//! tap is recorded like an approving one.

use serde::{Deserialize, Serialize};
use tapgate_shared::api::{ApprovalInfo, RejectChallenge};
use webauthn_rs_core::proto::PublicKeyCredential;

use super::approvals::{Status, b64, info, intent_of, load, short};
use super::{Approvers, GateError, approvers};
use crate::ceremonies::{self, VerifiedAssertion};
use crate::state::AppState;
use crate::store::approvals::Approval;
use crate::store::ceremonies::Ceremony;
use crate::store::pending::{RejectOutcome, Rejection};
use crate::webauthn::{CEREMONY_TTL_SECONDS, StoredState};

/// The ceremony kind of a rejection tap.
pub const KIND: &str = "approval-reject";

/// What the rejection ceremony is for.
#[derive(Debug, Serialize, Deserialize)]
struct Context {
    approval_id: String,
}

fn refuse_unless_open(approval: &Approval, now: i64) -> Result<(), GateError> {
    match Status::of(approval, now) {
        Status::Pending | Status::Approved => Ok(()),
        Status::Rejected => Err(GateError::ApprovalGone("this change was already rejected".into())),
        Status::Used => {
            Err(GateError::ApprovalGone("this change was already made: it cannot be rejected".into()))
        }
        Status::Expired => {
            Err(GateError::ApprovalGone("this approval expired: there is nothing left to reject".into()))
        }
    }
}

/// Who may reject: the requester and every maintainer of the package.
async fn rejecters(state: &AppState, approval: &Approval) -> Result<Vec<String>, GateError> {
    approvers::approver_ids(state, &approval.package, &approval.requested_by, Approvers::Maintainers).await
}

/// Starts a rejection: the challenge the key signs, for the keys of everyone who may reject.
pub async fn begin(state: &AppState, id: &str) -> Result<RejectChallenge, GateError> {
    let approval = load(state, id).await?;
    let now = state.now();
    refuse_unless_open(&approval, now)?;
    let intent = intent_of(&approval)?
        .ok_or_else(|| GateError::Conflict("this approval predates rejections: let it expire".into()))?;
    let nonce: [u8; 32] = approval
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| GateError::Corrupt("approval nonce is not 32 bytes".into()))?;
    let mut credentials = Vec::new();
    for user in rejecters(state, &approval).await? {
        credentials.extend(ceremonies::usable_keys(state, &user).await?.into_iter().map(|(_, c)| c));
    }
    if credentials.is_empty() {
        return Err(GateError::NoUsableKey(
            "nobody who may reject this change has a usable security key".into(),
        ));
    }
    let (options, auth_state) = state
        .rp
        .begin_authentication(credentials, Some(intent.reject_challenge(&nonce)))
        .map_err(|f| GateError::Corrupt(f.message()))?;
    let ceremony = Ceremony {
        id: crate::secrets::public_id("cer_") + &crate::secrets::public_id(""),
        kind: KIND.into(),
        user_id: None,
        state: serde_json::to_string(&StoredState::Authentication(auth_state))
            .map_err(|e| GateError::Corrupt(e.to_string()))?,
        context: serde_json::to_string(&Context { approval_id: approval.id.clone() })
            .map_err(|e| GateError::Corrupt(e.to_string()))?,
        created_at: now,
        expires_at: now + CEREMONY_TTL_SECONDS,
    };
    state.store.put_ceremony(&ceremony).await?;
    Ok(RejectChallenge { ceremony: ceremony.id, public_key: options, intent, nonce: b64(&nonce) })
}

/// Finishes a rejection begun with [`begin`] (its ceremony already taken): verifies the tap and
/// voids the approval.
pub async fn finish(
    state: &AppState,
    id: &str,
    ceremony: &Ceremony,
    credential: &PublicKeyCredential,
) -> Result<ApprovalInfo, GateError> {
    let context: Context =
        serde_json::from_str(&ceremony.context).map_err(|e| GateError::Corrupt(e.to_string()))?;
    if context.approval_id != id {
        return Err(GateError::Invalid("this key request was made to reject another approval".into()));
    }
    let approval = load(state, id).await?;
    refuse_unless_open(&approval, state.now())?;
    let users = rejecters(state, &approval).await?;
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let challenge = intent_of(&approval)?
        .zip(approval.nonce.as_slice().try_into().ok())
        .map(|(intent, nonce): (_, [u8; 32])| intent.reject_challenge(&nonce))
        .ok_or_else(|| GateError::Corrupt("approval lacks its intent".into()))?;
    let verified: VerifiedAssertion =
        ceremonies::verify_assertion(state, &ceremony.state, &users, credential, Some(&approval.package))
            .await?;
    let now = state.now();
    let rejection = Rejection {
        approval_id: &approval.id,
        user_id: &verified.key.user_id,
        key_id: &verified.key.id,
        credential_id: &verified.key.credential_id,
        challenge: &challenge,
        client_data_json: &credential.response.client_data_json,
        authenticator_data: &credential.response.authenticator_data,
        signature: &credential.response.signature,
        user_verified: verified.user_verified,
    };
    match state.store.reject_approval(&rejection, super::approvals::MAX_FAILED_ATTEMPTS, now).await? {
        RejectOutcome::Rejected => {}
        RejectOutcome::Gone => {
            return Err(GateError::ApprovalGone(
                "this approval changed meanwhile (used, expired or rejected): nothing to reject".into(),
            ));
        }
    }
    let who = state.store.user_by_id(&verified.key.user_id).await?.map(|u| u.name).unwrap_or_default();
    let detail =
        format!("{who} rejected {} of {} with key {}", approval.action, approval.package, verified.key.id);
    state
        .store
        .record_event(now, "approval_rejected", Some(&verified.key.user_id), Some(&approval.package), &detail)
        .await?;
    tracing::info!(approval_id = %short(&approval.id), subject = %approval.package, action = %approval.action, key_id = %verified.key.id, "change rejected with a security key");
    info(state, &load(state, id).await?).await
}

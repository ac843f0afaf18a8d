//! Publish approvals: create an intent, have a maintainer's key sign the challenge that commits
//! to it, hand out a single-use ticket, and redeem that ticket at upload time.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket};
use tapgate_shared::intent::Intent;
use webauthn_rs_core::proto::{AuthenticationState, PublicKeyCredential, PublicKeyCredentialRequestOptions};

use crate::ceremonies;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::secrets::{self, SecretKind};
use crate::state::AppState;
use crate::store::approvals::{Approval, Approved, NewApproval};
use crate::store::users::User;
use crate::webauthn::StoredState;

/// How long an intent waits for its tap.
pub const INTENT_TTL_SECONDS: i64 = 600;
/// How long a ticket stays valid after the tap.
pub const TICKET_TTL_SECONDS: i64 = 300;
/// Failed taps on one approval before it is void.
pub const MAX_FAILED_ATTEMPTS: i64 = 5;

/// What is stored in `approvals.auth_state`: the webauthn state and the options sent.
#[derive(Debug, Serialize, Deserialize)]
struct StoredCeremony {
    state: AuthenticationState,
    options: PublicKeyCredentialRequestOptions,
}

/// A freshly created approval: its id, and the secret of npm's done URL.
#[derive(Debug)]
pub struct CreatedApproval {
    pub info: ApprovalInfo,
    pub done_secret: String,
}

pub fn page_url(state: &AppState, id: &str) -> String {
    state.config.url(&format!("/approve/{id}"))
}

pub fn done_url(state: &AppState, secret: &str) -> String {
    state.config.url(&format!("/-/v1/done/approvals/{secret}"))
}

/// Records the intent `requester` wants to publish and prepares the ceremony for their keys.
pub async fn create(
    state: &AppState,
    requester: &User,
    package: &str,
    version: &str,
    integrity: &str,
) -> ApiResult<CreatedApproval> {
    let keys = ceremonies::usable_keys(state, &requester.id).await?;
    if keys.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::PolicyViolation,
            format!(
                "{package} requires a security-key approval, but you have no usable security key: enroll one first"
            ),
        ));
    }
    let intent = Intent {
        package: package.to_string(),
        version: version.to_string(),
        integrity: integrity.to_string(),
        requested_by: requester.name.clone(),
    };
    let mut nonce = [0u8; 32];
    rand::rng().fill_bytes(&mut nonce);
    let challenge = intent.challenge(&nonce);
    let credentials = keys.into_iter().map(|(_, c)| c).collect();
    let (options, auth_state) = state
        .rp
        .begin_authentication(credentials, Some(challenge))
        .map_err(|f| ApiError::internal(f.message()))?;
    let stored = serde_json::to_string(&StoredCeremony { state: auth_state, options: options.clone() })
        .map_err(ApiError::internal)?;
    let id = secrets::capability_id("apr_");
    let done = secrets::generate(SecretKind::Session);
    let now = state.now();
    let expires_at = now + INTENT_TTL_SECONDS;
    state
        .store
        .create_approval(
            &NewApproval {
                id: &id,
                package,
                version,
                integrity,
                requested_by: &requester.id,
                nonce: &nonce,
                challenge: &challenge,
                auth_state: &stored,
                done_hash: &done.hash,
                expires_at,
            },
            now,
        )
        .await?;
    tracing::info!(approval_id = %short(&id), package, version, user = %requester.name, "publish intent recorded");
    Ok(CreatedApproval {
        info: ApprovalInfo {
            url: page_url(state, &id),
            id,
            package: package.to_string(),
            version: version.to_string(),
            integrity: integrity.to_string(),
            requested_by: requester.name.clone(),
            status: "pending".into(),
            expires_at: rfc3339(expires_at),
            public_key: Some(options),
        },
        done_secret: done.plaintext,
    })
}

/// A log-safe prefix of a capability id.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

pub fn status_of(a: &Approval, now: i64) -> &'static str {
    if a.used_at.is_some() {
        "used"
    } else if a.approved_at.is_some() {
        if a.ticket_expires_at.is_some_and(|t| t > now) { "approved" } else { "expired" }
    } else if a.expires_at <= now || a.failed_attempts >= MAX_FAILED_ATTEMPTS {
        "expired"
    } else {
        "pending"
    }
}

pub async fn load(state: &AppState, id: &str) -> ApiResult<Approval> {
    state.store.approval(id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ApprovalExpired,
            "no such approval: start the publish again",
        )
    })
}

/// The approval as shown to whoever holds its URL.
pub async fn info(state: &AppState, approval: &Approval) -> ApiResult<ApprovalInfo> {
    let requester = state.store.user_by_id(&approval.requested_by).await?;
    let status = status_of(approval, state.now());
    let public_key = if status == "pending" {
        let stored: StoredCeremony = ceremonies::decode(&approval.auth_state)?;
        Some(stored.options)
    } else {
        None
    };
    Ok(ApprovalInfo {
        id: approval.id.clone(),
        url: page_url(state, &approval.id),
        package: approval.package.clone(),
        version: approval.version.clone(),
        integrity: approval.integrity.clone(),
        requested_by: requester.map(|u| u.name).unwrap_or_default(),
        status: status.into(),
        expires_at: rfc3339(approval.expires_at),
        public_key,
    })
}

fn gone(message: &str) -> ApiError {
    ApiError::new(StatusCode::GONE, ErrorCode::ApprovalExpired, message)
}

/// Verifies a maintainer's tap on the approval and issues the ticket.
pub async fn finish(
    state: &AppState,
    id: &str,
    credential: &PublicKeyCredential,
) -> ApiResult<ApprovalTicket> {
    let approval = load(state, id).await?;
    let now = state.now();
    match status_of(&approval, now) {
        "pending" => {}
        "approved" => {
            return Err(ApiError::conflict(
                ErrorCode::Conflict,
                "this publish is already approved: return to your terminal",
            ));
        }
        "used" => return Err(gone("this approval was already used for a publish")),
        _ => {
            return Err(gone("this approval expired (or had too many failed taps): start the publish again"));
        }
    }
    let stored: StoredCeremony = ceremonies::decode(&approval.auth_state)?;
    if crate::ceremonies::challenge_of(&stored.state).as_deref() != Some(approval.challenge.as_slice()) {
        return Err(ApiError::internal("approval ceremony challenge does not match its intent"));
    }
    let state_json =
        serde_json::to_string(&StoredState::Authentication(stored.state)).map_err(ApiError::internal)?;
    let verified = match ceremonies::verify_assertion(
        state,
        &state_json,
        Some(&approval.requested_by),
        credential,
        Some(&approval.package),
    )
    .await
    {
        Ok(v) => v,
        Err(err) => {
            let attempts = state.store.record_approval_failure(&approval.id).await?;
            let detail = format!(
                "failed approval attempt {attempts} for {}@{} ({}): {}",
                approval.package, approval.version, err.code, err.message
            );
            state
                .store
                .record_event(
                    now,
                    "approval_failed",
                    Some(&approval.requested_by),
                    Some(&approval.package),
                    &detail,
                )
                .await?;
            tracing::warn!(approval_id = %short(&approval.id), package = %approval.package, attempts, "approval refused");
            return Err(err);
        }
    };
    if !super::may_publish(state, &approval.package, &approval.requested_by).await? {
        return Err(ApiError::forbidden(format!(
            "the requester is no longer a maintainer of {}",
            approval.package
        )));
    }
    let ticket = secrets::generate(SecretKind::Ticket);
    let code = secrets::short_code();
    let code_hash = secrets::hash(&code);
    let cred = ceremonies::credential_of(&verified.key)?;
    let public_key = serde_json::to_string(&cred.cred).map_err(ApiError::internal)?;
    let ticket_expires_at = now + TICKET_TTL_SECONDS;
    let approved = Approved {
        approved_by: &verified.key.user_id,
        key_id: &verified.key.id,
        ticket_hash: &ticket.hash,
        ticket_expires_at,
        code_hash: &code_hash,
        credential_id: &verified.key.credential_id,
        credential_public_key: &public_key,
        client_data_json: &credential.response.client_data_json,
        authenticator_data: &credential.response.authenticator_data,
        signature: &credential.response.signature,
        user_verified: verified.user_verified,
    };
    if !state.store.approve(&approval.id, &approved, now).await? {
        return Err(gone("this approval changed meanwhile (approved elsewhere or expired)"));
    }
    tracing::info!(
        approval_id = %short(&approval.id),
        package = %approval.package,
        version = %approval.version,
        key_id = %verified.key.id,
        "publish approved with a security key"
    );
    Ok(ApprovalTicket { ticket: ticket.plaintext, code, expires_at: rfc3339(ticket_expires_at) })
}

/// Finds the approval an `npm-otp` value stands for: a ticket, or a typed code bound to exactly
/// this upload. `None` if it stands for nothing.
pub async fn redeemable(
    state: &AppState,
    otp: &str,
    package: &str,
    version: &str,
    integrity: &str,
    user_id: &str,
) -> ApiResult<Option<Approval>> {
    let otp = otp.trim();
    if secrets::has_prefix(otp, SecretKind::Ticket) {
        let hash = secrets::hash(otp);
        return Ok(state.store.approval_by_ticket(&hash).await?);
    }
    if otp.len() == 8 {
        let hash = secrets::hash(&otp.to_ascii_uppercase());
        return Ok(state.store.approval_by_code(package, version, integrity, user_id, &hash).await?);
    }
    Ok(None)
}

/// Why an approval cannot be used for this upload, if it cannot.
pub fn refusal(
    a: &Approval,
    package: &str,
    version: &str,
    integrity: &str,
    user_id: &str,
    now: i64,
) -> Option<String> {
    if a.used_at.is_some() {
        return Some("this ticket was already used: each approval publishes once".into());
    }
    if a.approved_at.is_none() {
        return Some("this publish was not approved yet".into());
    }
    if a.ticket_expires_at.is_none_or(|t| t <= now) {
        return Some("this ticket expired (tickets last 5 minutes): publish again".into());
    }
    if a.package != package || a.version != version {
        return Some(format!("this ticket approves {}@{}, not {package}@{version}", a.package, a.version));
    }
    if a.integrity != integrity {
        return Some(format!(
            "this ticket approves a tarball with integrity {}, but the uploaded tarball is {integrity}",
            a.integrity
        ));
    }
    if a.requested_by != user_id {
        return Some("this ticket was issued to another user".into());
    }
    None
}

/// Base64url helper for records.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

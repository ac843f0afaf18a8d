//! Approvals: record an intent, have the requester's key sign the challenge that commits to it,
//! hand out a single-use ticket bound to the intent's digest, and redeem that ticket when the
//! client repeats its request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket};
use tapgate_shared::gate_intent::{Change, GateIntent};
use webauthn_rs_core::proto::{AuthenticationState, PublicKeyCredential, PublicKeyCredentialRequestOptions};

use super::{Evidence, GateError, PendingApproval, Request, Requirement};
use crate::ceremonies::{self, AssertionError};
use crate::client_info::ClientInfo;
use crate::clock::rfc3339;
use crate::lockout::{self, Failure, FailureKind};
use crate::secrets::{self, SecretKind};
use crate::state::AppState;
use crate::store::approvals::{Approval, ApprovalSignature, NewApproval, SignOutcome, TicketHashes};
use crate::webauthn::CeremonyFailure;
use crate::webauthn::StoredState;

/// How long an intent waits for its taps.
pub const INTENT_TTL_SECONDS: i64 = 600;
/// How long a ticket stays valid after the last tap.
pub const TICKET_TTL_SECONDS: i64 = 300;
/// Failed taps on one approval before it is void.
pub const MAX_FAILED_ATTEMPTS: i64 = 5;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Used,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Used => "used",
            Self::Expired => "expired",
        }
    }

    pub fn of(a: &Approval, now: i64) -> Self {
        if a.used_at.is_some() {
            Self::Used
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
struct StoredCeremony {
    state: AuthenticationState,
    options: PublicKeyCredentialRequestOptions,
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, GateError> {
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

/// Records the intent and prepares the ceremony for the requester's keys.
pub async fn create(
    state: &AppState,
    request: &Request<'_>,
    need: Requirement,
) -> Result<PendingApproval, GateError> {
    let actor = request.actor;
    let intent = request.intent;
    let keys = ceremonies::usable_keys(state, &actor.id).await?;
    if keys.is_empty() {
        return Err(GateError::NoUsableKey(format!(
            "this change to {} needs approval with a security key, but you have no usable security key: enroll one first",
            intent.subject
        )));
    }
    let mut nonce = [0u8; 32];
    rand::rng().fill_bytes(&mut nonce);
    let challenge = intent.challenge(&nonce);
    let credentials = keys.into_iter().map(|(_, c)| c).collect();
    let (options, auth_state) = state
        .rp
        .begin_authentication(credentials, Some(challenge))
        .map_err(|f| GateError::Corrupt(f.message()))?;
    let stored = serde_json::to_string(&StoredCeremony { state: auth_state, options })
        .map_err(|e| GateError::Corrupt(e.to_string()))?;
    let intent_json = serde_json::to_string(intent).map_err(|e| GateError::Corrupt(e.to_string()))?;
    let digest = intent.digest();
    let (version, integrity) = match &intent.change {
        Change::Publish { version, integrity, .. } => (version.as_str(), integrity.as_str()),
        _ => ("", ""),
    };
    let id = secrets::capability_id("apr_");
    let done = secrets::generate(SecretKind::Session);
    let now = state.now();
    state
        .store
        .create_approval(
            &NewApproval {
                id: &id,
                subject: &intent.subject,
                version,
                integrity,
                requested_by: &actor.id,
                action: intent.change.action(),
                intent: &intent_json,
                intent_digest: &digest,
                payload: request.payload,
                required_taps: need.taps,
                policy: Some(&request.policy.text),
                nonce: &nonce,
                challenge: &challenge,
                auth_state: &stored,
                done_hash: &done.hash,
                expires_at: now + INTENT_TTL_SECONDS,
            },
            now,
        )
        .await?;
    tracing::info!(approval_id = %short(&id), subject = %intent.subject, action = intent.change.action(), user = %actor.name, "intent recorded");
    let approval =
        state.store.approval(&id).await?.ok_or_else(|| GateError::Corrupt("approval vanished".into()))?;
    let info = info(state, &approval).await?;
    if need.taps > 1 && !intent.change.is_account_change() {
        let notice = crate::notify::events::approval_pending(state, intent, &info);
        state.store.enqueue(&notice, now).await?;
    }
    Ok(PendingApproval { auth_url: info.url.clone(), done_url: done_url(state, &done.plaintext), info })
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
    let signers: std::collections::BTreeSet<String> =
        state.store.approval_signatures(&approval.id).await?.into_iter().map(|s| s.user_id).collect();
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
        approvals: u32::try_from(signers.len()).unwrap_or(u32::MAX),
        required: u32::try_from(approval.required_taps).unwrap_or(1),
    })
}

/// What a tap achieved.
#[derive(Debug)]
pub enum TapOutcome {
    /// The last required tap: the ticket (and typed code) for the requester's client.
    Approved(ApprovalTicket),
    /// Recorded; more distinct maintainers must tap.
    Pending { approvals: u32, required: u32 },
}

/// Verifies a tap on the approval and, when it completes the policy, issues the ticket.
pub async fn finish(
    state: &AppState,
    id: &str,
    credential: &PublicKeyCredential,
    client: &ClientInfo,
) -> Result<TapOutcome, GateError> {
    let approval = load(state, id).await?;
    let now = state.now();
    match Status::of(&approval, now) {
        Status::Pending => {}
        Status::Approved => {
            return Err(GateError::Conflict(
                "this change is already approved: return to your terminal".into(),
            ));
        }
        Status::Used => return Err(GateError::ApprovalGone("this approval was already used".into())),
        Status::Expired => {
            return Err(GateError::ApprovalGone(
                "this approval expired (or had too many failed taps): start the change again".into(),
            ));
        }
    }
    let stored: StoredCeremony = decode(&approval.auth_state)?;
    if ceremonies::challenge_of(&stored.state).as_deref() != Some(approval.challenge.as_slice()) {
        return Err(GateError::Corrupt("approval ceremony challenge does not match its intent".into()));
    }
    let state_json = serde_json::to_string(&StoredState::Authentication(stored.state))
        .map_err(|e| GateError::Corrupt(e.to_string()))?;
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
        // Only an answer from one of the allowed keys counts towards voiding the approval:
        // whoever merely holds its URL cannot void it with made-up answers.
        Err(
            err @ (AssertionError::Failed(CeremonyFailure::UnknownCredential | CeremonyFailure::Malformed(_))
            | AssertionError::Busy
            | AssertionError::Store(_)
            | AssertionError::Corrupt(_)),
        ) => {
            return Err(err.into());
        }
        Err(err) => {
            let attempts = state.store.record_approval_failure(&approval.id).await?;
            let detail = format!(
                "failed approval attempt {attempts} for {} of {}: {err}",
                approval.action, approval.package
            );
            let kind = match &err {
                AssertionError::Failed(CeremonyFailure::CounterRegression) => FailureKind::CounterRegression,
                _ => FailureKind::AssertionFailed,
            };
            let key = state.store.key_by_credential_id(&credential.raw_id).await?.map(|k| k.id);
            if is_account_change(&approval)? {
                let by = Some(approval.requested_by.as_str());
                state.store.record_event(now, kind.as_str(), by, None, &detail).await?;
            } else {
                let failure = Failure {
                    package: &approval.package,
                    account: Some(&approval.requested_by),
                    key: key.as_deref(),
                    kind,
                    detail: &detail,
                    client,
                };
                lockout::record(state, &failure).await?;
            }
            tracing::warn!(approval_id = %short(&approval.id), subject = %approval.package, attempts, "approval refused");
            return Err(err.into());
        }
    };
    let cred = ceremonies::credential_of(&verified.key)?;
    let public_key = serde_json::to_string(&cred.cred).map_err(|e| GateError::Corrupt(e.to_string()))?;
    let ticket = secrets::generate(SecretKind::Ticket);
    let code = secrets::short_code();
    let code_hash = secrets::hash(&code);
    let ticket_expires_at = now + TICKET_TTL_SECONDS;
    let signature = ApprovalSignature {
        approval_id: approval.id.clone(),
        user_id: verified.key.user_id.clone(),
        key_id: verified.key.id.clone(),
        credential_id: verified.key.credential_id.clone(),
        credential_public_key: public_key,
        client_data_json: credential.response.client_data_json.to_vec(),
        authenticator_data: credential.response.authenticator_data.to_vec(),
        signature: credential.response.signature.to_vec(),
        user_verified: verified.user_verified,
        signed_at: now,
    };
    let hashes = TicketHashes { ticket_hash: &ticket.hash, code_hash: &code_hash, ticket_expires_at };
    let required = u32::try_from(approval.required_taps).unwrap_or(1);
    match state.store.add_signature(&signature, &hashes, MAX_FAILED_ATTEMPTS, now).await? {
        SignOutcome::Approved => {
            tracing::info!(approval_id = %short(&approval.id), subject = %approval.package, action = %approval.action, key_id = %verified.key.id, "change approved with a security key");
            Ok(TapOutcome::Approved(ApprovalTicket {
                ticket: ticket.plaintext,
                code,
                expires_at: rfc3339(ticket_expires_at),
            }))
        }
        SignOutcome::Pending { signers } => {
            Ok(TapOutcome::Pending { approvals: u32::try_from(signers).unwrap_or(0), required })
        }
        SignOutcome::AlreadySigned => Err(GateError::Conflict(
            "this key already approved this change; another maintainer must tap".into(),
        )),
        SignOutcome::Gone => Err(GateError::ApprovalGone(
            "this approval changed meanwhile (approved elsewhere or expired)".into(),
        )),
    }
}

/// Finds the approval an `npm-otp` value stands for and checks it approves exactly this
/// request's intent, for this requester, unused and unexpired.
pub async fn redeem(state: &AppState, request: &Request<'_>, otp: &str) -> Result<Evidence, GateError> {
    let digest = request.intent.digest();
    let actor = request.actor;
    let found = if secrets::has_prefix(otp, SecretKind::Ticket) {
        state.store.approval_by_ticket(&secrets::hash(otp)).await?
    } else if otp.len() == 8 {
        state.store.approval_by_code(&digest, &actor.id, &secrets::hash(&otp.to_ascii_uppercase())).await?
    } else {
        None
    };
    let now = state.now();
    let why = match &found {
        None => Some("the one-time code or ticket is unknown: approve the change again".to_string()),
        Some(a) => refusal(a, request.intent, &digest, &actor.id, now)?,
    };
    match (found, why) {
        (Some(a), None) => Ok(Evidence::Tap { approval_id: a.id, intent_digest: digest, payload: a.payload }),
        (_, Some(why)) => {
            tracing::warn!(subject = %request.intent.subject, action = request.intent.change.action(), user = %actor.name, reason = %why, "ticket refused");
            if request.intent.change.is_account_change() {
                state.store.record_event(now, "ticket_refused", Some(&actor.id), None, &why).await?;
            } else {
                let detail = format!("{} presented a refused ticket or code: {why}", actor.name);
                let failure = Failure {
                    package: &request.intent.subject,
                    account: Some(&actor.id),
                    key: None,
                    kind: FailureKind::TicketRefused,
                    detail: &detail,
                    client: request.client,
                };
                lockout::record(state, &failure).await?;
            }
            Err(GateError::InvalidTicket(why))
        }
        (None, None) => Err(GateError::InvalidTicket("the ticket is unknown".into())),
    }
}

/// Why an approval cannot be used for this intent, if it cannot.
fn refusal(
    a: &Approval,
    intent: &GateIntent,
    digest: &str,
    user_id: &str,
    now: i64,
) -> Result<Option<String>, GateError> {
    if a.used_at.is_some() {
        return Ok(Some("this ticket was already used: each approval makes one change".into()));
    }
    if a.approved_at.is_none() {
        return Ok(Some("this change was not approved yet".into()));
    }
    if a.ticket_expires_at.is_none_or(|t| t <= now) {
        return Ok(Some("this ticket expired (tickets last 5 minutes): run the command again".into()));
    }
    if a.requested_by != user_id {
        return Ok(Some("this ticket was issued to another user".into()));
    }
    if a.intent_digest.as_deref() != Some(digest) {
        if let (
            Some(GateIntent { change: Change::Publish { version, integrity, .. }, .. }),
            Change::Publish { version: v, integrity: i, .. },
        ) = (intent_of(a)?, &intent.change)
            && version == *v
            && integrity != *i
        {
            return Ok(Some(format!(
                "this ticket approves a tarball with integrity {integrity}, but the uploaded tarball is {i}"
            )));
        }
        let approved = intent_of(a)?.map(|i| i.describe()).unwrap_or_else(|| {
            format!("publishing {}@{} with integrity {}", a.package, a.version, a.integrity)
        });
        return Ok(Some(format!(
            "this ticket approves a different change ({approved}), not this one ({})",
            intent.describe()
        )));
    }
    Ok(None)
}

/// Whether an approval is for a change to an account (its keys) rather than a package.
fn is_account_change(a: &Approval) -> Result<bool, GateError> {
    Ok(intent_of(a)?.is_some_and(|i| i.change.is_account_change()))
}

/// Base64url helper for records.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

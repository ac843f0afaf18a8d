//! Approvals: record an intent, have the keys that may approve it sign the challenge that
//! commits to it (the requester's, or with `approvals: N > 1` any maintainer's, until N distinct
//! people tapped), hand out a single-use ticket bound to the intent's digest, and redeem that
//! ticket when the client repeats its request.

mod show;

pub use show::{Status, b64, counted, done_url, info, intent_of, load, page_url, short, signers};

use rand::RngCore;
use tapgate_shared::api::ApprovalTicket;
use tapgate_shared::gate_intent::{Change, GateIntent};
use webauthn_rs_core::proto::{PublicKeyCredential, UserVerificationPolicy};

use self::show::{StoredCeremony, decode};
use super::approvers::{self, tap_refusal};
use super::{Approvers, Evidence, GateError, PendingApproval, Request, Requirement};
use crate::ceremonies::{self, AssertionError};
use crate::client_info::ClientInfo;
use crate::clock::rfc3339;
use crate::lockout::{self, Failure, FailureKind};
use crate::policy::Policy;
use crate::secrets::{self, SecretKind};
use crate::state::AppState;
use crate::store::approvals::{Approval, ApprovalSignature, NewApproval, SignOutcome, TicketHashes};
use crate::webauthn::CeremonyFailure;
use crate::webauthn::StoredState;

/// How long an intent waits for its taps unless configured (`--approval-ttl-minutes`).
pub const DEFAULT_INTENT_TTL_SECONDS: i64 = 600;
/// How long a ticket stays valid after the last tap.
pub const TICKET_TTL_SECONDS: i64 = 300;
/// Failed taps on one approval before it is void.
pub const MAX_FAILED_ATTEMPTS: i64 = 5;

/// Records the intent and prepares the ceremony for the keys that may approve it.
pub async fn create(
    state: &AppState,
    request: &Request<'_>,
    need: Requirement,
) -> Result<PendingApproval, GateError> {
    let actor = request.actor;
    let intent = request.intent;
    let credentials = approvers::allowed_credentials(state, request, need).await?;
    let mut nonce = [0u8; 32];
    rand::rng().fill_bytes(&mut nonce);
    let challenge = intent.challenge(&nonce);
    let (mut options, auth_state) = state
        .rp
        .begin_authentication(credentials, Some(challenge))
        .map_err(|f| GateError::Corrupt(f.message()))?;
    if request.policy.policy.user_verification {
        // Keys are asked to verify their user; whether one did is checked against the policy
        // after the tap, with a sentence saying what to do (the ceremony itself stays lenient).
        options.user_verification = UserVerificationPolicy::Required;
    }
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
    let details = super::details::record(state, request, now).await?;
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
                requester_must_sign: need.requester_must_sign,
                policy: Some(&request.policy.text),
                nonce: &nonce,
                challenge: &challenge,
                auth_state: &stored,
                done_hash: &done.hash,
                expires_at: now + state.config.approval_ttl_seconds,
                details: Some(&details),
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
        Status::Rejected => {
            return Err(GateError::ApprovalGone(
                "this change was rejected by a maintainer: it can no longer be approved".into(),
            ));
        }
    }
    let policy = approval_policy(&approval)?;
    let approvers = if approval.required_taps > 1 { Approvers::Maintainers } else { Approvers::Requester };
    let allowed =
        approvers::approver_ids(state, &approval.package, &approval.requested_by, approvers).await?;
    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
    // A tap that says it did not verify its user cannot count where the policy requires it:
    // refused before anything is verified or recorded, with the sentence that says what to do.
    let uv_flag = credential.response.authenticator_data.get(32).is_some_and(|flags| flags & 0x04 != 0);
    if policy.user_verification && !uv_flag {
        let key = state.store.key_by_credential_id(&credential.raw_id).await?;
        let name = key.filter(|k| allowed.contains(&k.user_id.as_str())).map(|k| k.name);
        return Err(GateError::PolicyViolation(approvers::unverified_user(name.as_deref())));
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
        &allowed,
        credential,
        Some(&approval.package),
    )
    .await
    {
        Ok(v) => v,
        // A maintainer's key that the policy does not admit was left out of the ceremony: say
        // why, rather than "not enrolled".
        // Only an answer from one of the allowed keys counts towards voiding the approval:
        // whoever merely holds its URL cannot void it with made-up answers.
        Err(err @ AssertionError::Failed(CeremonyFailure::UnknownCredential)) => {
            if let Some(why) = policy_refusal(state, &policy, &allowed, credential).await? {
                return Err(GateError::PolicyViolation(why));
            }
            return Err(err.into());
        }
        Err(
            err @ (AssertionError::Failed(CeremonyFailure::Malformed(_))
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
    if let Some(why) = tap_refusal(&policy, &verified) {
        tracing::warn!(approval_id = %short(&approval.id), subject = %approval.package, key_id = %verified.key.id, "tap refused by the package policy");
        return Err(GateError::PolicyViolation(why));
    }
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

/// Why the key that answered, one of an allowed approver's, does not meet `policy`, if so.
async fn policy_refusal(
    state: &AppState,
    policy: &Policy,
    allowed: &[&str],
    credential: &PublicKeyCredential,
) -> Result<Option<String>, GateError> {
    let key = state.store.key_by_credential_id(&credential.raw_id).await?;
    Ok(key.filter(|k| allowed.contains(&k.user_id.as_str())).and_then(|k| approvers::key_refusal(policy, &k)))
}

/// The policy an approval was created under (none recorded: a plain one).
fn approval_policy(approval: &Approval) -> Result<Policy, GateError> {
    match &approval.policy {
        Some(text) => Ok(Policy::from_stored(text)?),
        None => Ok(Policy::new(tapgate_shared::api::SecondFactor::SecurityKey)),
    }
}

/// Finds the approval an `npm-otp` value stands for and checks it approves exactly this
/// request's intent, for this requester, unused and unexpired, with the taps `need` asks for
/// under the policy in force now.
pub async fn redeem(
    state: &AppState,
    request: &Request<'_>,
    need: Requirement,
    otp: &str,
) -> Result<Evidence, GateError> {
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
        Some(a) => refusal(a, request, need, &digest, now)?,
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
    request: &Request<'_>,
    need: Requirement,
    digest: &str,
    now: i64,
) -> Result<Option<String>, GateError> {
    let intent = request.intent;
    let user_id = request.actor.id.as_str();
    if a.used_at.is_some() {
        return Ok(Some("this ticket was already used: each approval makes one change".into()));
    }
    if a.rejected_at.is_some() {
        return Ok(Some("this change was rejected by a maintainer: it will not be made".into()));
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
    if a.policy.as_deref().is_some_and(|p| p != request.policy.text) {
        return Ok(Some(format!(
            "the policy of {} changed since this change was approved: approve it again",
            intent.subject
        )));
    }
    if a.required_taps < need.taps || (need.requester_must_sign && !a.requester_must_sign) {
        return Ok(Some(format!(
            "this change now needs approvals from {} people, but was approved by {}: approve it again",
            need.taps, a.required_taps
        )));
    }
    Ok(None)
}

/// Whether an approval is for a change to an account (its keys) rather than a package.
fn is_account_change(a: &Approval) -> Result<bool, GateError> {
    Ok(intent_of(a)?.is_some_and(|i| i.change.is_account_change()))
}

//! Changes to an account's security keys. The first key comes from the account's invite; every
//! later key, and every removal, needs a tap of one of the account's keys bound to exactly that
//! key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tapgate_shared::gate_intent::{Change, GateIntent};

use crate::gate::{self, Evidence, GateError, PolicyInForce, Request, Role};
use crate::policy::Policy;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::effects::Effects;
use crate::store::gate::{CommitError, Guard};
use crate::store::keys::{Enrollment, NewSecurityKey, SecurityKey};
use crate::store::users::User;

/// A key whose registration verified, waiting for the tap that enrolls it. Stored as the
/// approval's payload between the request and its repetition with the ticket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingKey {
    pub name: String,
    pub credential_id: Vec<u8>,
    pub credential: String,
    pub counter: i64,
    pub aaguid: String,
    pub attestation_format: String,
    pub attested: bool,
    pub attestation_ca: Option<String>,
    pub user_verified: bool,
    /// Hex SHA-256 of the attestation object the key's registration carried.
    pub attestation_sha256: String,
}

impl PendingKey {
    fn as_new<'a>(&'a self, user_id: &'a str) -> NewSecurityKey<'a> {
        NewSecurityKey {
            user_id,
            name: &self.name,
            credential_id: &self.credential_id,
            credential: &self.credential,
            counter: self.counter,
            aaguid: &self.aaguid,
            attestation_format: &self.attestation_format,
            attested: self.attested,
            attestation_ca: self.attestation_ca.as_deref(),
            user_verified: self.user_verified,
        }
    }
}

/// Account changes need a tap whatever any package's policy says.
fn account_policy() -> PolicyInForce {
    let policy = Policy::new(tapgate_shared::api::SecondFactor::SecurityKey);
    PolicyInForce { text: policy.to_stored(), policy, exists: true }
}

fn intent(actor: &User, change: Change) -> GateIntent {
    GateIntent { subject: actor.name.clone(), requested_by: actor.name.clone(), change }
}

/// The notice of a key change, to the account's own address.
async fn key_effects(
    state: &AppState,
    intent: &GateIntent,
    evidence: &Evidence,
    actor: &User,
) -> Result<Effects, GateError> {
    let authorized = crate::changes::authorized(state, evidence).await?;
    let client = crate::client_info::ClientInfo::unknown();
    let notice = crate::notify::events::change_notice(state, intent, &authorized, &client, Some(&actor.id));
    Ok(Effects { notice: Some(notice), audit: vec![crate::audit::accepted(intent, &authorized)] })
}

/// How a key enrollment arrives.
#[derive(Debug)]
pub enum KeyAdd {
    /// A fresh, verified registration; enrolled at once with an invite, else held for a tap.
    Registered { key: PendingKey, invite_hash: Option<String> },
    /// The request repeated with the ticket: the key is the one the tap approved.
    Repeated { name: String, credential_id: Vec<u8>, attestation_sha256: String },
}

fn commit_error(e: CommitError, subject: &str) -> GateError {
    match e {
        CommitError::Store(StoreError::Conflict(m)) if m.contains("already enrolled") => {
            GateError::KeyAlreadyEnrolled(
                "this security key is already enrolled; use a different key or keep using this one".into(),
            )
        }
        CommitError::Stale(m) if m.contains("invite") => GateError::InvalidInvite(
            "this invite was used meanwhile or has expired: ask an administrator for a new one".into(),
        ),
        other => gate::commit_error(other, subject),
    }
}

/// Enrolls a key on `actor`'s account.
pub async fn add_key(
    state: &AppState,
    actor: &User,
    add: KeyAdd,
    otp: Option<&str>,
) -> Result<SecurityKey, GateError> {
    let now = state.now();
    let (name, credential_id, attestation_sha256, payload) = match &add {
        KeyAdd::Registered { key, invite_hash: Some(invite_hash) } => {
            return state
                .store
                .add_key(&key.as_new(&actor.id), Enrollment::Invite(invite_hash), now)
                .await
                .map_err(|e| commit_error(e, &actor.name));
        }
        KeyAdd::Registered { key, invite_hash: None } => {
            let payload = serde_json::to_string(key).map_err(|e| GateError::Corrupt(e.to_string()))?;
            (key.name.clone(), key.credential_id.clone(), key.attestation_sha256.clone(), Some(payload))
        }
        KeyAdd::Repeated { name, credential_id, attestation_sha256 } => {
            (name.clone(), credential_id.clone(), attestation_sha256.clone(), None)
        }
    };
    let change = Change::KeyAdd {
        name,
        credential_id: URL_SAFE_NO_PAD.encode(&credential_id),
        attestation_sha256: attestation_sha256.clone(),
    };
    let intent = intent(actor, change);
    let policy = account_policy();
    let otp = if payload.is_some() { None } else { otp };
    // Account changes count against no package.
    let unknown = crate::client_info::ClientInfo::unknown();
    let request = Request {
        actor,
        intent: &intent,
        policy: &policy,
        role: Role::AccountOwner,
        otp,
        payload: payload.as_deref(),
        origin: None,
        tarball: None,
        facts: Default::default(),
        client: &unknown,
        oidc: None,
    };
    let evidence = gate::admit(state, &request).await?;
    let Evidence::Tap { payload: Some(payload), .. } = &evidence else {
        return Err(GateError::InvalidTicket(
            "this ticket does not carry a key enrollment: enroll the key again".into(),
        ));
    };
    let key: PendingKey = serde_json::from_str(payload).map_err(|e| GateError::Corrupt(e.to_string()))?;
    if key.credential_id != credential_id || key.attestation_sha256 != attestation_sha256 {
        return Err(GateError::InvalidTicket("this ticket approves a different key".into()));
    }
    let effects = key_effects(state, &intent, &evidence, actor).await?;
    let guard = Guard {
        actor: &actor.id,
        package: None,
        tap: evidence.tap(),
        deploy_key: None,
        oidc: None,
        now,
        effects: Some(&effects),
    };
    let stored = state
        .store
        .add_key(&key.as_new(&actor.id), Enrollment::Tap(&guard), now)
        .await
        .map_err(|e| commit_error(e, &actor.name))?;
    tracing::info!(user = %actor.name, key_id = %stored.id, "security key enrolled with a tap of an existing key");
    Ok(stored)
}

/// Removes one of `actor`'s keys (never the last usable one).
pub async fn remove_key(
    state: &AppState,
    actor: &User,
    key_id: &str,
    otp: Option<&str>,
) -> Result<(), GateError> {
    let key = state.store.key_by_id(key_id).await?.filter(|k| k.user_id == actor.id).ok_or_else(|| {
        GateError::NotFound(format!("you have no key {key_id:?}; list them with GET /api/v1/keys"))
    })?;
    let change = Change::KeyRemove {
        key_id: key.id.clone(),
        name: key.name.clone(),
        credential_id: URL_SAFE_NO_PAD.encode(&key.credential_id),
    };
    let intent = intent(actor, change);
    let policy = account_policy();
    let unknown = crate::client_info::ClientInfo::unknown();
    let request = Request {
        actor,
        intent: &intent,
        policy: &policy,
        role: Role::AccountOwner,
        otp,
        payload: None,
        origin: None,
        tarball: None,
        facts: Default::default(),
        client: &unknown,
        oidc: None,
    };
    let evidence = gate::admit(state, &request).await?;
    let effects = key_effects(state, &intent, &evidence, actor).await?;
    let guard = Guard {
        actor: &actor.id,
        package: None,
        tap: evidence.tap(),
        deploy_key: None,
        oidc: None,
        now: state.now(),
        effects: Some(&effects),
    };
    match state.store.delete_key(&actor.id, key_id, &guard).await {
        Ok(Some(())) => {
            tracing::info!(key_id = %key_id, user = %actor.name, "security key removed with a tap");
            Ok(())
        }
        Ok(None) => Err(GateError::NotFound(format!("you have no key {key_id:?}"))),
        Err(e) => Err(commit_error(e, &actor.name)),
    }
}

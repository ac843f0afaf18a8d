//! Ceremony plumbing shared by enrollment, login and publish approvals: persisting webauthn
//! state, loading a user's usable credentials, and verifying an assertion with every check that
//! follows it (counter compare-and-set, suspension on regression, security events).

use axum::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tapgate_shared::ErrorCode;
use webauthn_rs_core::proto::{AuthenticationState, Credential, PublicKeyCredential};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::ceremonies::{Ceremony, Taken};
use crate::store::keys::{CounterUpdate, SecurityKey};
use crate::webauthn::{CEREMONY_TTL_SECONDS, CeremonyFailure, StoredState};

/// Stores a ceremony and returns its random id.
pub async fn persist<C: Serialize>(
    state: &AppState,
    kind: &str,
    user_id: Option<&str>,
    stored: &StoredState,
    context: &C,
) -> Result<String, ApiError> {
    let now = state.now();
    let id = crate::secrets::public_id("cer_") + &crate::secrets::public_id("");
    let ceremony = Ceremony {
        id: id.clone(),
        kind: kind.to_string(),
        user_id: user_id.map(str::to_string),
        state: serde_json::to_string(stored).map_err(ApiError::internal)?,
        context: serde_json::to_string(context).map_err(ApiError::internal)?,
        created_at: now,
        expires_at: now + CEREMONY_TTL_SECONDS,
    };
    state.store.put_ceremony(&ceremony).await?;
    Ok(id)
}

/// Takes (and so consumes) a ceremony of `kind`, or explains why it cannot be used.
pub async fn take(state: &AppState, id: &str, kind: &str) -> Result<Ceremony, ApiError> {
    match state.store.take_ceremony(id, kind, state.now()).await? {
        Taken::Found(c) => Ok(c),
        Taken::Expired => Err(ApiError::new(
            StatusCode::GONE,
            ErrorCode::CeremonyExpired,
            "this request to your security key expired (they last 5 minutes): start again",
        )),
        Taken::Missing => Err(ApiError::new(
            StatusCode::GONE,
            ErrorCode::CeremonyExpired,
            "this request to your security key is unknown or was already used: start again",
        )),
    }
}

pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::internal(format!("corrupt ceremony data: {e}")))
}

/// Why an assertion was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("{}", .0.message())]
    Failed(CeremonyFailure),
    #[error("this key was used for another request at the same moment: try again")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

/// A stored key's credential with the authoritative counter from its column.
pub fn credential_of(key: &SecurityKey) -> Result<Credential, AssertionError> {
    let mut credential: Credential = serde_json::from_str(&key.credential)
        .map_err(|e| AssertionError::Corrupt(format!("corrupt credential for key {}: {e}", key.id)))?;
    credential.counter = u32::try_from(key.counter).unwrap_or(u32::MAX);
    Ok(credential)
}

/// A stored key's public part in the standard encodings, when it is of a supported kind.
pub fn public_key_of(key: &SecurityKey) -> Option<tapgate_shared::public_key::PublicKey> {
    let credential = credential_of(key).ok()?;
    let json = serde_json::to_value(&credential.cred).ok()?;
    tapgate_shared::public_key::PublicKey::from_webauthn_json(&json).ok()
}

/// The user's keys that may be used (not suspended), with their credentials.
pub async fn usable_keys(
    state: &AppState,
    user_id: &str,
) -> Result<Vec<(SecurityKey, Credential)>, AssertionError> {
    let keys = state.store.keys_of_user(user_id).await?;
    keys.into_iter().filter(|k| k.suspended_at.is_none()).map(|k| credential_of(&k).map(|c| (k, c))).collect()
}

/// A verified assertion from one of the expected user's keys.
#[derive(Debug, Clone)]
pub struct VerifiedAssertion {
    pub key: SecurityKey,
    pub user_verified: bool,
    pub counter: u32,
}

/// Verifies `credential` against a taken authentication ceremony, from a key of one of `users`
/// (none: a decoy ceremony that no answer passes), then moves the key's counter forward with
/// compare-and-set. A counter regression suspends the key and records a security event.
/// `package` names the package concerned, for the event log.
pub async fn verify_assertion(
    state: &AppState,
    stored_state: &str,
    users: &[&str],
    credential: &PublicKeyCredential,
    package: Option<&str>,
) -> Result<VerifiedAssertion, AssertionError> {
    let stored: StoredState = serde_json::from_str(stored_state)
        .map_err(|e| AssertionError::Corrupt(format!("ceremony state: {e}")))?;
    let StoredState::Authentication(auth_state) = stored else {
        return Err(AssertionError::Corrupt(
            "ceremony holds registration state where authentication was expected".into(),
        ));
    };
    if users.is_empty() {
        // A decoy ceremony for an unknown user: answer exactly as for a wrong key.
        return Err(AssertionError::Failed(CeremonyFailure::UnknownCredential));
    }
    let now = state.now();
    match state.rp.finish_authentication(credential, &auth_state) {
        Ok(result) => {
            let key = state
                .store
                .key_by_credential_id(result.cred_id())
                .await?
                .filter(|k| users.contains(&k.user_id.as_str()) && k.suspended_at.is_none())
                .ok_or(AssertionError::Failed(CeremonyFailure::UnknownCredential))?;
            let mut updated = credential_of(&key)?;
            let new_counter = result.counter();
            updated.counter = new_counter;
            let json = serde_json::to_string(&updated).map_err(|e| AssertionError::Corrupt(e.to_string()))?;
            // webauthn-rs compared the counter with the ceremony's snapshot of the key; a cloned
            // key answering an older ceremony can pass that and still be behind the live
            // counter. Compare with the live one.
            if i64::from(new_counter) <= key.counter && !(new_counter == 0 && key.counter == 0) {
                return Err(counter_regression(state, &key, package, now).await?);
            }
            match state.store.record_key_use(&key.id, key.counter, i64::from(new_counter), &json, now).await?
            {
                CounterUpdate::Updated => {}
                CounterUpdate::Lost => {
                    // Moved meanwhile: if it moved past this assertion's counter, this one is the
                    // older of two uses of one counter, which a genuine key never produces.
                    let live = state.store.key_by_id(&key.id).await?;
                    if let Some(live) = live.filter(|k| i64::from(new_counter) <= k.counter) {
                        return Err(counter_regression(state, &live, package, now).await?);
                    }
                    return Err(AssertionError::Busy);
                }
            }
            Ok(VerifiedAssertion { key, user_verified: result.user_verified(), counter: new_counter })
        }
        Err(CeremonyFailure::CounterRegression) => {
            if let Some(key) = state.store.key_by_credential_id(&credential.raw_id).await? {
                return Err(counter_regression(state, &key, package, now).await?);
            }
            Err(AssertionError::Failed(CeremonyFailure::CounterRegression))
        }
        Err(failure) => Err(AssertionError::Failed(failure)),
    }
}

/// Suspends a key whose counter went backwards and records the security event; returns the
/// refusal to answer.
async fn counter_regression(
    state: &AppState,
    key: &SecurityKey,
    package: Option<&str>,
    now: i64,
) -> Result<AssertionError, AssertionError> {
    let reason = "its signature counter went backwards (possible cloned key)";
    state.store.suspend_key(&key.id, reason, now).await?;
    let detail = format!(
        "key {} ({}) of user {} presented a signature counter at or below the stored {}; key suspended",
        key.id, key.name, key.user_id, key.counter
    );
    state.store.record_event(now, "counter_regression", Some(&key.user_id), package, &detail).await?;
    tracing::warn!(key_id = %key.id, user_id = %key.user_id, "security key counter regression; key suspended");
    Ok(AssertionError::Failed(CeremonyFailure::CounterRegression))
}

/// The challenge a stored authentication state expects (used by approval records).
pub fn challenge_of(auth_state: &AuthenticationState) -> Option<Vec<u8>> {
    crate::webauthn::state_challenge(auth_state)
}

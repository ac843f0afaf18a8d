//! Public keys, published for verifiers to pin (`tapgate keyring export`): `GET
//! /api/v1/users/{name}/keys` (that user's usable keys) and `GET /api/v1/packages/{name}/keys`
//! (every current maintainer's). Read-only and without authentication: public keys are public,
//! and maintainers' names already are.
//!
//! Pinning what this answers is trust on first use: a verifier who fetches it once, over a
//! channel it trusts, no longer needs to trust the registry for later versions.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_shared::api::{PublicKeyInfo, PublicKeyList};
use tapgate_shared::public_key::PublicKey;

use crate::ceremonies::public_key_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::routes::npm::packages::package_not_found;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{name}/keys", get(user_keys))
        .route("/packages/{name}/keys", get(package_keys))
}

/// The COSE (base64url) and SPKI (base64) encodings of a stored webauthn-rs public key, when it
/// is of a supported kind.
pub fn encodings(webauthn_json: &serde_json::Value) -> (Option<String>, Option<String>) {
    match PublicKey::from_webauthn_json(webauthn_json) {
        Ok(key) => (Some(key.cose_base64url()), Some(key.spki_base64())),
        Err(_) => (None, None),
    }
}

async fn keys_of(state: &AppState, user_id: &str, user: &str) -> ApiResult<Vec<PublicKeyInfo>> {
    let mut out = Vec::new();
    for key in state.store.keys_of_user(user_id).await? {
        if key.suspended_at.is_some() {
            continue;
        }
        let Some(public_key) = public_key_of(&key) else {
            tracing::warn!(key_id = %key.id, "a stored key's public key is of an unsupported kind");
            continue;
        };
        out.push(PublicKeyInfo {
            user: user.to_string(),
            credential_id: URL_SAFE_NO_PAD.encode(&key.credential_id),
            name: key.name,
            attested: key.attested,
            algorithm: public_key.algorithm().to_string(),
            public_key_spki: public_key.spki_base64(),
            public_key_cose: public_key.cose_base64url(),
        });
    }
    Ok(out)
}

async fn user_keys(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PublicKeyList>> {
    let user = state
        .store
        .user_by_name(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no user {name:?} on this registry")))?;
    Ok(Json(PublicKeyList { keys: keys_of(&state, &user.id, &user.name).await? }))
}

async fn package_keys(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PublicKeyList>> {
    if state.store.package(&name).await?.is_none() {
        return Err(package_not_found(&name));
    }
    let mut keys = Vec::new();
    for (user_id, user) in state.store.maintainers(&name).await? {
        keys.extend(keys_of(&state, &user_id, &user).await?);
    }
    Ok(Json(PublicKeyList { keys }))
}

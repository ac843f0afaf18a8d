//! `GET /api/v1/keys`, `PATCH /api/v1/keys/{id}`, `DELETE /api/v1/keys/{id}`.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_shared::api::{KeyInfo, KeyList, RenameKey};

use super::registrations::validate_key_name;
use crate::auth::{AuthUser, otp};
use crate::ceremonies::public_key_of;
use crate::changes::keys::remove_key;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;
use crate::store::keys::SecurityKey;

pub fn routes() -> Router<AppState> {
    Router::new().route("/keys", get(list)).route("/keys/{id}", axum::routing::patch(rename).delete(remove))
}

pub fn key_info(key: SecurityKey) -> KeyInfo {
    let public_key_spki = public_key_of(&key).map(|k| k.spki_base64());
    KeyInfo {
        credential_id: URL_SAFE_NO_PAD.encode(&key.credential_id),
        public_key_spki,
        id: key.id,
        name: key.name,
        aaguid: key.aaguid,
        attestation_format: key.attestation_format,
        attested: key.attested,
        attestation_ca: key.attestation_ca,
        user_verified: key.user_verified,
        created_at: rfc3339(key.created_at),
        last_used_at: key.last_used_at.map(rfc3339),
        suspended_reason: key
            .suspended_at
            .map(|_| key.suspended_reason.unwrap_or_else(|| "suspended".into())),
    }
}

async fn list(State(state): State<AppState>, AuthUser(auth, _): AuthUser) -> ApiResult<Json<KeyList>> {
    let keys = state.store.keys_of_user(&auth.user_id).await?;
    Ok(Json(KeyList { keys: keys.into_iter().map(key_info).collect() }))
}

async fn rename(
    State(state): State<AppState>,
    AuthUser(auth, _): AuthUser,
    Path(id): Path<String>,
    Json(body): Json<RenameKey>,
) -> ApiResult<Json<KeyInfo>> {
    let name = validate_key_name(&body.name)?;
    if !state.store.rename_key(&auth.user_id, &id, name).await? {
        return Err(ApiError::not_found(format!("you have no key {id:?}; list them with GET /api/v1/keys")));
    }
    let key = state
        .store
        .key_by_id(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("the key was removed meanwhile"))?;
    Ok(Json(key_info(key)))
}

/// Removing a key is a gated change: it needs a tap of one of the account's keys bound to
/// exactly this key (`401 otp_required` first, then the same request with `npm-otp`).
async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = user.actor(&state).await?;
    remove_key(&state, &actor.user, &id, otp(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}

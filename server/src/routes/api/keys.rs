//! `GET /api/v1/keys`, `PATCH /api/v1/keys/{id}`, `DELETE /api/v1/keys/{id}`.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tapgate_shared::api::{KeyInfo, KeyList, RenameKey};

use super::registrations::{require_fresh_login, validate_key_name};
use crate::auth::AuthUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::keys::SecurityKey;

pub fn routes() -> Router<AppState> {
    Router::new().route("/keys", get(list)).route("/keys/{id}", axum::routing::patch(rename).delete(remove))
}

pub fn key_info(key: SecurityKey) -> KeyInfo {
    KeyInfo {
        id: key.id,
        name: key.name,
        aaguid: key.aaguid,
        attestation_format: key.attestation_format,
        attested: key.attested,
        user_verified: key.user_verified,
        created_at: rfc3339(key.created_at),
        last_used_at: key.last_used_at.map(rfc3339),
        suspended_reason: key
            .suspended_at
            .map(|_| key.suspended_reason.unwrap_or_else(|| "suspended".into())),
    }
}

async fn list(State(state): State<AppState>, AuthUser(auth): AuthUser) -> ApiResult<Json<KeyList>> {
    let keys = state.store.keys_of_user(&auth.user_id).await?;
    Ok(Json(KeyList { keys: keys.into_iter().map(key_info).collect() }))
}

async fn rename(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
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

async fn remove(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_fresh_login(auth.source, auth.created_at, state.now())?;
    match state.store.delete_key(&auth.user_id, &id).await {
        Ok(Some(())) => {
            tracing::info!(key_id = %id, user = %auth.username, "security key removed");
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(None) => {
            Err(ApiError::not_found(format!("you have no key {id:?}; list them with GET /api/v1/keys")))
        }
        Err(StoreError::Conflict(msg)) => Err(ApiError::conflict(tapgate_shared::ErrorCode::Conflict, msg)),
        Err(e) => Err(e.into()),
    }
}

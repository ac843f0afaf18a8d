//! `npm logout` (`DELETE /-/user/token/<token>`: revokes the token on the server, so a copy left
//! in a file or a log stops working) and `npm token list|revoke` (`GET /-/npm/v1/tokens`,
//! `DELETE /-/npm/v1/tokens/token/<key or token>`). Revoking only takes power away, so it needs
//! no tap; a user can only ever revoke their own tokens here.

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get};
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/-/user/token/{token}", delete(logout))
        .route("/-/npm/v1/tokens", get(list))
        .route("/-/npm/v1/tokens/token/{key}", delete(revoke))
}

/// Resolves what npm sends (a token id, or the token itself) to one of the caller's token ids.
async fn token_id(state: &AppState, user: &AuthUser, key: &str) -> ApiResult<String> {
    if let Some(id) = state.store.token_id_of_secret(key, &user.0.user_id).await? {
        return Ok(id);
    }
    let live = state.store.list_tokens(&user.0.user_id, state.now()).await?;
    live.into_iter().map(|t| t.id).find(|id| id == key).ok_or_else(|| {
        ApiError::not_found(
            "you have no such token (it may be revoked already): list them with `npm token list`",
        )
    })
}

async fn revoke_one(state: &AppState, user: &AuthUser, id: &str) -> ApiResult<()> {
    if !state.store.revoke_token(id, Some(&user.0.user_id), state.now()).await? {
        return Err(ApiError::not_found("this token was revoked meanwhile"));
    }
    tracing::info!(token_id = %id, user = %user.0.username, "token revoked");
    Ok(())
}

async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
    Path(token): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = token_id(&state, &user, &token).await?;
    revoke_one(&state, &user, &id).await?;
    Ok(Json(json!({ "ok": true })))
}

async fn list(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Value>> {
    let tokens = state.store.list_tokens(&user.0.user_id, state.now()).await?;
    let objects: Vec<Value> = tokens
        .into_iter()
        .map(|t| {
            let readonly = !t.scopes.contains(&tapgate_shared::api::Scope::Publish);
            json!({
                "key": t.id,
                "token": "tg_api_",
                "name": t.name,
                "created": rfc3339(t.created_at),
                "updated": rfc3339(t.last_used_at.unwrap_or(t.created_at)),
                "expires": t.expires_at.map(rfc3339),
                "readonly": readonly,
                "cidr_whitelist": Value::Null,
            })
        })
        .collect();
    let total = objects.len();
    Ok(Json(json!({ "objects": objects, "total": total, "urls": {} })))
}

async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = token_id(&state, &user, &key).await?;
    revoke_one(&state, &user, &id).await?;
    Ok(Json(json!({ "ok": true })))
}

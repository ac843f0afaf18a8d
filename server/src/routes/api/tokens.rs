//! `GET /api/v1/tokens`, `DELETE /api/v1/tokens/{id}`: a user's API tokens.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{CreateToken, IssuedToken, Scope};
use tapgate_shared::api::{TokenInfo, TokenList};

use crate::auth::AuthUser;
use crate::bounds;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;
use crate::store::tokens::TokenRecord;

pub fn routes() -> Router<AppState> {
    Router::new().route("/tokens", get(list).post(create)).route("/tokens/{id}", delete(revoke))
}

pub fn token_info(record: TokenRecord, current_id: &str) -> TokenInfo {
    TokenInfo {
        current: record.id == current_id,
        id: record.id,
        name: record.name,
        scopes: record.scopes,
        created_at: rfc3339(record.created_at),
        expires_at: record.expires_at.map(rfc3339),
        last_used_at: record.last_used_at.map(rfc3339),
    }
}

async fn list(State(state): State<AppState>, AuthUser(auth, _): AuthUser) -> ApiResult<Json<TokenList>> {
    let records = state.store.list_tokens(&auth.user_id, state.now()).await?;
    let tokens = records.into_iter().map(|r| token_info(r, &auth.token_id)).collect();
    Ok(Json(TokenList { tokens }))
}

/// The longest a derived token may live.
pub const MAX_DERIVED_TOKEN_DAYS: u32 = 365;

/// When a token derived now from `parent` expires: when asked (default and at most
/// [`MAX_DERIVED_TOKEN_DAYS`]), and never after its parent.
pub fn derived_expiry(
    now: i64,
    asked_days: Option<u32>,
    parent_expires_at: Option<i64>,
) -> Result<i64, ApiError> {
    let days = asked_days.unwrap_or(MAX_DERIVED_TOKEN_DAYS);
    if days == 0 || days > MAX_DERIVED_TOKEN_DAYS {
        return Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            format!(
                "a token lives 1 to {MAX_DERIVED_TOKEN_DAYS} days: ask for expires_in_days in that range"
            ),
        ));
    }
    let asked = now + i64::from(days) * 86_400;
    Ok(parent_expires_at.map_or(asked, |parent| asked.min(parent)))
}

/// Issues a new token for the caller with a subset of the calling token's scopes, e.g. a
/// read-only token for a build machine. It expires no later than the calling token (and within
/// a year), and is revoked with it.
async fn create(
    State(state): State<AppState>,
    AuthUser(auth, _): AuthUser,
    Json(body): Json<CreateToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let name = bounds::text("the token name", &body.name, bounds::MAX_TOKEN_NAME_CHARS)?;
    if body.scopes.is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            "give the token at least one scope: read, publish or admin",
        ));
    }
    if let Some(extra) = body.scopes.iter().find(|s| !auth.scopes.contains(s)) {
        return Err(ApiError::forbidden(format!(
            "a token can only be given scopes the calling token has, and it lacks {:?}",
            extra.as_str()
        )));
    }
    if body.scopes.contains(&Scope::Admin) && !auth.admin {
        return Err(ApiError::forbidden("only administrators may hold admin tokens"));
    }
    let now = state.now();
    let expires_at = derived_expiry(now, body.expires_in_days, auth.expires_at)?;
    let (record, secret) = state
        .store
        .issue_derived_token(&auth.token_id, &auth.user_id, name, &body.scopes, Some(expires_at), now)
        .await?;
    tracing::info!(token_id = %record.id, user = %auth.username, "token issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            id: record.id,
            token: secret,
            username: auth.username,
            scopes: record.scopes,
            expires_at: record.expires_at.map(rfc3339),
        }),
    ))
}

/// Revokes one of the caller's tokens; an administrator (admin scope) may revoke anyone's.
async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let is_admin = user.require(Scope::Admin).is_ok();
    let owner = if is_admin { None } else { Some(user.0.user_id.as_str()) };
    if state.store.revoke_token(&id, owner, state.now()).await? {
        tracing::info!(token_id = %id, by = %user.0.username, "token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no live token {id:?} of yours; list them with GET /api/v1/tokens")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tokens_expire_within_a_year_and_never_after_their_parent() {
        let day = 86_400;
        assert_eq!(derived_expiry(0, None, None).ok(), Some(365 * day));
        assert_eq!(derived_expiry(0, Some(7), None).ok(), Some(7 * day));
        assert_eq!(derived_expiry(0, Some(7), Some(3 * day)).ok(), Some(3 * day));
        assert_eq!(derived_expiry(0, None, Some(30 * day)).ok(), Some(30 * day));
        assert!(derived_expiry(0, Some(366), None).is_err());
        assert!(derived_expiry(0, Some(0), None).is_err());
    }
}

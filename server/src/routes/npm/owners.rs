//! `npm owner ls|add|rm` reads `GET /-/user/org.couchdb.user:<name>` for the user it names; the
//! change itself is `PUT /<name>/-rev/<rev>` (see [`super::documents`]), a gated change like
//! every other.

use crate::extract::Path;
use axum::extract::State;
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;

/// `GET /-/user/org.couchdb.user:<name>` (signed-in users only).
pub async fn user_doc(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(rest): Path<String>,
) -> ApiResult<Json<Value>> {
    let name = rest
        .strip_prefix("org.couchdb.user:")
        .ok_or_else(|| ApiError::not_found(format!("no such endpoint: /-/user/{rest}")))?;
    let user = state
        .store
        .user_by_name(name)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::not_found(format!("no user named {name:?}")))?;
    // The verified alert address, so `npm owner ls` shows how to reach each maintainer.
    let email = state
        .store
        .user_email(&user.id)
        .await?
        .and_then(|e| e.address.filter(|_| e.verified_at.is_some()))
        .unwrap_or_default();
    Ok(Json(json!({ "_id": format!("org.couchdb.user:{}", user.name), "name": user.name, "email": email })))
}

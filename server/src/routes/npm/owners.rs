//! `npm owner ls|add|rm`: npm reads `GET /-/user/org.couchdb.user:<name>`, then writes the
//! package's whole maintainer list with `PUT /<name>/-rev/<rev>`. Each addition or removal goes
//! through the same rules as `tapgate owner` (a maintainer with a fresh key sign-in).

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::routing::put;
use serde::Deserialize;
use serde_json::{Value, json};
use tapgate_shared::ErrorCode;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::publish::owners;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/{name}/-rev/{rev}", put(set_maintainers))
}

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
    Ok(Json(json!({ "_id": format!("org.couchdb.user:{}", user.name), "name": user.name, "email": "" })))
}

#[derive(Debug, Deserialize)]
struct MaintainerEntry {
    name: String,
}

#[derive(Debug, Deserialize)]
struct MaintainersDoc {
    maintainers: Vec<MaintainerEntry>,
}

async fn set_maintainers(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, _rev)): Path<(String, String)>,
    Json(doc): Json<MaintainersDoc>,
) -> ApiResult<Json<Value>> {
    let wanted: Vec<String> = doc.maintainers.into_iter().map(|m| m.name).collect();
    if wanted.is_empty() {
        return Err(ApiError::bad_request(ErrorCode::BadRequest, "a package keeps at least one maintainer"));
    }
    let current: Vec<String> = state.store.maintainers(&name).await?.into_iter().map(|(_, n)| n).collect();
    for added in wanted.iter().filter(|w| !current.contains(w)) {
        owners::add(&state, &user, &name, added).await?;
    }
    for removed in current.iter().filter(|c| !wanted.contains(c)) {
        owners::remove(&state, &user, &name, removed).await?;
    }
    Ok(Json(json!({ "ok": true, "id": name })))
}

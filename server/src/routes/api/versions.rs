//! Releases through the JSON API (what `tapgate deprecate|unpublish` call), gated like the same
//! changes through npm's protocol:
//! `PUT /api/v1/packages/{name}/versions/{version}/deprecation {message}` (empty: lift it),
//! `DELETE /api/v1/packages/{name}/versions/{version}` (unpublish one version),
//! `DELETE /api/v1/packages/{name}` (unpublish every version; the name stays its maintainers').

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{delete, put};
use serde::Deserialize;
use serde_json::{Value, json};
use tapgate_shared::api::Scope;

use crate::auth::{AuthUser, otp};
use crate::changes::package as changes;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/packages/{name}/versions/{version}/deprecation", put(deprecate))
        .route("/packages/{name}/versions/{version}", delete(unpublish_version))
        .route("/packages/{name}", delete(unpublish_package))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deprecation {
    message: String,
}

async fn deprecate(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
    Json(body): Json<Deprecation>,
) -> ApiResult<Json<Value>> {
    user.require(Scope::Publish)?;
    crate::bounds::deprecation(&body.message)?;
    let actor = user.actor(&state).await?;
    let changed =
        changes::deprecate(&state, &actor, &name, &[(version, body.message)], otp(&headers)).await?;
    Ok(Json(json!({ "package": name, "deprecated": changed })))
}

async fn unpublish_version(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    let done = changes::unpublish_version(&state, &actor, &name, &version, otp(&headers)).await?;
    Ok(Json(json!({
        "package": name, "unpublished": [version], "removed_tags": done.removed_tags, "latest": done.latest,
    })))
}

async fn unpublish_package(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    let versions = changes::unpublish_package(&state, &actor, &name, otp(&headers)).await?;
    Ok(Json(json!({ "package": name, "unpublished": versions })))
}

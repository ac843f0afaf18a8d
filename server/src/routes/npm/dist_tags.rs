//! `npm dist-tag`: `GET /-/package/<name>/dist-tags`, `PUT|POST|DELETE …/dist-tags/<tag>`.

use std::collections::BTreeMap;

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::Scope;

use super::packages::package_not_found;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::names::validate_tag;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/-/package/{name}/dist-tags", get(list))
        .route("/-/package/{name}/dist-tags/{tag}", put(set).post(set).delete(remove))
}

async fn list(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    if state.store.package(&name).await?.is_none() {
        return Err(package_not_found(&name));
    }
    Ok(Json(state.store.dist_tags(&name).await?))
}

async fn authorize(state: &AppState, user: &AuthUser, name: &str) -> ApiResult<()> {
    user.require(Scope::Publish)?;
    if state.store.package(name).await?.is_none() {
        return Err(package_not_found(name));
    }
    if !state.store.is_maintainer(name, &user.0.user_id).await? {
        return Err(ApiError::forbidden(format!("only maintainers of {name} may change its dist-tags")));
    }
    Ok(())
}

async fn set(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, tag)): Path<(String, String)>,
    Json(version): Json<String>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    authorize(&state, &user, &name).await?;
    validate_tag(&tag).map_err(|m| ApiError::bad_request(ErrorCode::InvalidName, m))?;
    if state.store.version(&name, &version).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::PackageNotFound,
            format!("{name}@{version} is not published, so no tag can point at it"),
        ));
    }
    state.store.set_dist_tag(&name, &tag, &version, state.now()).await?;
    tracing::info!(package = %name, tag = %tag, version = %version, user = %user.0.username, "dist-tag set");
    Ok(Json(state.store.dist_tags(&name).await?))
}

async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, tag)): Path<(String, String)>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    authorize(&state, &user, &name).await?;
    if tag == "latest" {
        return Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            "the latest tag cannot be removed; point it elsewhere instead",
        ));
    }
    if !state.store.remove_dist_tag(&name, &tag).await? {
        return Err(ApiError::not_found(format!("{name} has no dist-tag {tag:?}")));
    }
    Ok(Json(state.store.dist_tags(&name).await?))
}

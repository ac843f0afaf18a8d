//! `npm dist-tag`: `GET /-/package/<name>/dist-tags`, `PUT|POST|DELETE …/dist-tags/<tag>`.
//! Moving or removing a tag is a gated change: on a protected package it needs a tap bound to
//! the tag and the version it points at.

use std::collections::BTreeMap;

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, put};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::Scope;

use super::packages::package_not_found;
use crate::auth::{AuthUser, otp};
use crate::changes::package::{remove_tag, set_tag};
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

async fn set(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, tag)): Path<(String, String)>,
    Json(version): Json<String>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    user.require(Scope::Publish)?;
    validate_tag(&tag).map_err(|m| ApiError::bad_request(ErrorCode::InvalidName, m))?;
    let actor = user.actor(&state).await?;
    set_tag(&state, &actor, &name, &tag, version.trim(), otp(&headers)).await?;
    Ok(Json(state.store.dist_tags(&name).await?))
}

async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, tag)): Path<(String, String)>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    remove_tag(&state, &actor, &name, &tag, otp(&headers)).await?;
    Ok(Json(state.store.dist_tags(&name).await?))
}

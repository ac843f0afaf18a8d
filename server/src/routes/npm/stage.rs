//! npm's staged publishing (`npm stage publish|list|view|download|approve|reject`):
//!
//! - `POST /-/stage/package/<name>`: the publish document, kept aside → `{stageId, …}`;
//! - `GET /-/stage?page=N&perPage=M[&package=NAME]` → `{items, total}`;
//! - `GET /-/stage/<id>`, `GET /-/stage/<id>/tarball`;
//! - `POST /-/stage/<id>/approve` and `DELETE /-/stage/<id>`: both gated (npm's web 2FA flow:
//!   `401` + `WWW-Authenticate: OTP`, then the request again with the ticket).
//!
//! Approving publishes the staged bytes as the approving maintainer's publish; a CI credential
//! may stage but never approve or reject.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tapgate_shared::ErrorCode;
use tapgate_shared::api::Scope;
use tapgate_shared::stage::{StageItem, StageList, StageState, Staged};

use super::publish::{body_bytes, only_own_package};
use crate::auth::{AuthUser, Publisher, otp};
use crate::changes::stage::{self, Uploader};
use crate::changes::{Actor, publish::may_write};
use crate::client_info::ClientInfo;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, RequestOrigin};
use crate::publish::packument::{parse_document, parse_upload_document};
use crate::state::AppState;
use crate::store::stages::StageRow;

pub fn routes(max_tarball_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/-/stage/package/{name}", post(create).layer(super::publish::body_limit(max_tarball_bytes)))
        .route("/-/stage", get(list))
        .route("/-/stage/{id}", get(view).delete(reject))
        .route("/-/stage/{id}/tarball", get(tarball))
        .route("/-/stage/{id}/approve", post(approve))
}

/// A stage as npm (and the CLI) read it.
pub fn item(state: &AppState, row: &StageRow) -> StageItem {
    StageItem {
        id: row.id.clone(),
        package_name: row.package.clone(),
        version: row.version.clone(),
        // npm shows one tag: `latest` when the release moves it, which matters most.
        tag: if row.tags.iter().any(|t| t == "latest") {
            "latest".into()
        } else {
            row.tags.first().cloned().unwrap_or_else(|| "latest".into())
        },
        tags: row.tags.clone(),
        created_at: rfc3339(row.created_at),
        actor: row.staged_by_name.clone(),
        actor_type: row.actor_type,
        credential: row.actor_ref.clone(),
        shasum: row.shasum.clone(),
        integrity: row.integrity.clone(),
        size: row.size,
        state: row.state_at(state.now()),
        expires_at: rfc3339(row.expires_at),
        decided_by: row.decided_by_name.clone(),
        decided_at: row.decided_at.map(rfc3339),
        url: state.config.url(&format!("/stage/{}", row.id)),
    }
}

/// The actor and credential for reading stages: an OIDC token (good for one upload) reads none.
async fn reader(
    state: &AppState,
    publisher: &Publisher,
    client: ClientInfo,
) -> ApiResult<(Actor, Option<crate::store::ci::CiCredential>)> {
    if let Publisher::Oidc(_) = publisher {
        return Err(ApiError::forbidden(
            "an OIDC token uploads one release; reading staged releases needs a maintainer's token or a CI credential",
        ));
    }
    who(state, publisher, client).await
}

/// The actor and, for a CI credential, the credential.
async fn who(
    state: &AppState,
    publisher: &Publisher,
    client: ClientInfo,
) -> ApiResult<(Actor, Option<crate::store::ci::CiCredential>)> {
    let mut actor = publisher.actor(state).await?;
    actor.client = client;
    let credential = match publisher {
        Publisher::Ci(ci) => Some(ci.0.clone()),
        Publisher::User(_) | Publisher::Oidc(_) => None,
    };
    Ok((actor, credential))
}

async fn create(
    State(state): State<AppState>,
    Path(name): Path<String>,
    publisher: Publisher,
    RequestOrigin(origin): RequestOrigin,
    client: ClientInfo,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    only_own_package(&publisher, &name)?;
    let (actor, credential) = who(&state, &publisher, client).await?;
    let actor = actor.with_origin(origin);
    let limit = state.config.max_tarball_bytes;
    let body = body_bytes(body, limit)?;
    // As for a publish: a stranger's upload is never decoded, hashed or decompressed.
    may_write(&state, &actor, &name).await?;
    stage::may_stage(&state, &actor, &name).await?;
    let upload = tokio::task::spawn_blocking(move || {
        let doc = parse_document(&body)?;
        parse_upload_document(&name, &doc, limit)
    })
    .await
    .map_err(ApiError::internal)??;
    let uploader = match (&credential, actor.oidc()) {
        (Some(c), _) => Uploader::Ci(c),
        (None, Some(o)) => Uploader::Oidc(o),
        (None, None) => Uploader::User,
    };
    let row = stage::stage(&state, &actor, uploader, &upload).await?;
    let staged = Staged { stage_id: row.id.clone(), item: item(&state, &row) };
    Ok((StatusCode::CREATED, Json(staged)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    #[serde(default)]
    page: i64,
    #[serde(default = "per_page")]
    per_page: i64,
    package: Option<String>,
    /// Only stages in this state (`pending`, `published`, `rejected`, `superseded`).
    state: Option<String>,
}

fn per_page() -> i64 {
    100
}

async fn list(
    State(state): State<AppState>,
    publisher: Publisher,
    client: ClientInfo,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<StageList>> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(ErrorCode::BadRequest, format!("give page and perPage as whole numbers: {e}"))
    })?;
    let (actor, credential) = reader(&state, &publisher, client).await?;
    let package = q.package.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let only = match q.state.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(StageState::parse(s).filter(|s| *s != StageState::Expired).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::BadRequest,
                format!("state={s:?}: use pending, published, rejected or superseded"),
            )
        })?),
    };
    let (rows, total) =
        stage::list(&state, &actor, credential.as_ref(), package, only, q.page, q.per_page).await?;
    Ok(Json(StageList { items: rows.iter().map(|r| item(&state, r)).collect(), total }))
}

async fn view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    publisher: Publisher,
    client: ClientInfo,
) -> ApiResult<Json<serde_json::Value>> {
    let (actor, credential) = reader(&state, &publisher, client).await?;
    let row = stage::visible(&state, &actor, credential.as_ref(), &id).await?;
    let mut value = serde_json::to_value(item(&state, &row)).map_err(ApiError::internal)?;
    // What the release holds and changes against the version before it, as approvals show it.
    if let Ok(bytes) = stage::tarball(&state, &row).await
        && let Some(diff) =
            crate::publish::diff::of_upload(&state, &row.package, &row.version, &bytes).await?
        && let Some(map) = value.as_object_mut()
    {
        map.insert("changes".into(), serde_json::to_value(diff).map_err(ApiError::internal)?);
    }
    Ok(Json(value))
}

async fn tarball(
    State(state): State<AppState>,
    Path(id): Path<String>,
    publisher: Publisher,
    client: ClientInfo,
) -> ApiResult<Response> {
    let (actor, credential) = reader(&state, &publisher, client).await?;
    let row = stage::visible(&state, &actor, credential.as_ref(), &id).await?;
    let bytes = stage::tarball(&state, &row).await?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(resp)
}

/// The maintainer deciding: a user's token with the publish scope, never a CI credential.
async fn decider(state: &AppState, user: &AuthUser, client: ClientInfo) -> ApiResult<Actor> {
    user.require(Scope::Publish)?;
    let mut actor = user.actor(state).await?;
    actor.client = client;
    Ok(actor)
}

async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    user: AuthUser,
    RequestOrigin(origin): RequestOrigin,
    client: ClientInfo,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = decider(&state, &user, client).await?.with_origin(origin);
    let row = stage::approve(&state, &actor, &id, otp(&headers)).await?;
    Ok(Json(
        serde_json::json!({ "ok": true, "id": row.package, "version": row.version, "stage": item(&state, &row) }),
    ))
}

async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
    user: AuthUser,
    RequestOrigin(origin): RequestOrigin,
    client: ClientInfo,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = decider(&state, &user, client).await?.with_origin(origin);
    let row = stage::reject(&state, &actor, &id, otp(&headers)).await?;
    Ok(Json(serde_json::json!({ "ok": true, "stage": item(&state, &row) })))
}

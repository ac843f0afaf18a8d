//! CI credentials and deploy keys:
//! `POST /api/v1/ci/credentials` (a maintainer, with a tap: `npm-otp` carries its ticket),
//! `GET /api/v1/ci/credentials?package=NAME`, `DELETE /api/v1/ci/credentials/{id}` (a
//! maintainer's token suffices: revoking takes power away), and
//! `POST /api/v1/ci/deploy-keys` (Bearer: the CI credential) → a deploy key for one publish.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, post};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::Scope;
use tapgate_shared::ci::{
    CiCredentialInfo, CiCredentialList, CreateCiCredential, DeployKeyRequest, IssuedCiCredential,
    IssuedDeployKey,
};

use crate::auth::{AuthUser, CiPrincipal, otp};
use crate::changes::ci;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Json, Path};
use crate::state::AppState;
use crate::store::ci::CiCredential;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ci/credentials", post(create).get(list))
        .route("/ci/credentials/{id}", delete(revoke))
        .route("/ci/deploy-keys", post(deploy_key))
}

async fn info(state: &AppState, c: CiCredential) -> ApiResult<CiCredentialInfo> {
    let created_by = state.store.user_by_id(&c.created_by).await?.map(|u| u.name).unwrap_or_default();
    Ok(CiCredentialInfo {
        id: c.id,
        package: c.package,
        name: c.name,
        versions: c.versions,
        tags: c.tags,
        cidrs: c.cidrs,
        expires_at: rfc3339(c.expires_at),
        created_by,
        created_at: rfc3339(c.created_at),
        approval_id: c.approval_id,
        revoked_at: c.revoked_at.map(rfc3339),
        last_used_at: c.last_used_at.map(rfc3339),
    })
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<CreateCiCredential>,
) -> ApiResult<(StatusCode, Json<IssuedCiCredential>)> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    let (created, secret) = ci::create(&state, &actor, &body, otp(&headers)).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedCiCredential { credential: secret, info: info(&state, created).await? }),
    ))
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<CiCredentialList>> {
    user.require(Scope::Read)?;
    let package = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "package")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::bad_request(ErrorCode::BadRequest, "name the package: ?package=NAME"))?;
    let actor = user.actor(&state).await?;
    let mut credentials = Vec::new();
    for c in ci::list(&state, &actor, &package).await? {
        credentials.push(info(&state, c).await?);
    }
    Ok(Json(CiCredentialList { credentials }))
}

async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<CiCredentialInfo>> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    let revoked = ci::revoke(&state, &actor, &id).await?;
    Ok(Json(info(&state, revoked).await?))
}

async fn deploy_key(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    CiPrincipal(credential): CiPrincipal,
    Json(body): Json<DeployKeyRequest>,
) -> ApiResult<(StatusCode, Json<IssuedDeployKey>)> {
    let issued = ci::issue_deploy_key(&state, &credential, ip, &body).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

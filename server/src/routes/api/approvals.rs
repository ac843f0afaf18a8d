//! `POST /api/v1/approvals` `{package, version, integrity}` → an intent awaiting a tap;
//! `GET /api/v1/approvals/{id}`; `POST /api/v1/approvals/{id}` `{credential}` → `{ticket, code}`.
//!
//! The approval id is an unguessable capability (it is the approval page's URL); the key tap
//! authenticates the approver.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket, CreateApproval, FinishApproval, Scope};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::names::{validate_package_name, validate_version};
use crate::publish::{approvals, may_publish};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/approvals", post(create)).route("/approvals/{id}", post(finish).get(show))
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<CreateApproval>,
) -> ApiResult<(StatusCode, Json<ApprovalInfo>)> {
    user.require(Scope::Publish)?;
    validate_package_name(&body.package).map_err(|m| ApiError::bad_request(ErrorCode::InvalidName, m))?;
    validate_version(&body.version).map_err(|m| ApiError::bad_request(ErrorCode::BadRequest, m))?;
    if !is_sha512_sri(&body.integrity) {
        return Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            "integrity must be the tarball's sha512 SRI string, sha512-<base64 of 64 bytes>",
        ));
    }
    if state.store.version(&body.package, &body.version).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::VersionExists,
            format!("{}@{} is already published: bump the version", body.package, body.version),
        ));
    }
    if !may_publish(&state, &body.package, &user.0.user_id).await? {
        return Err(ApiError::forbidden(format!("you are not a maintainer of {}", body.package)));
    }
    let requester = state
        .store
        .user_by_id(&user.0.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("your account no longer exists"))?;
    let created =
        approvals::create(&state, &requester, &body.package, &body.version, &body.integrity).await?;
    Ok((StatusCode::CREATED, Json(created.info)))
}

fn is_sha512_sri(s: &str) -> bool {
    use base64::Engine;
    s.strip_prefix("sha512-")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|d| d.len() == 64)
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ApprovalInfo>> {
    let approval = approvals::load(&state, &id).await?;
    Ok(Json(approvals::info(&state, &approval).await?))
}

async fn finish(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<FinishApproval>,
) -> ApiResult<Json<ApprovalTicket>> {
    Ok(Json(approvals::finish(&state, &id, &body.credential).await?))
}

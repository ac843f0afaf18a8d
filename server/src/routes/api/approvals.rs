//! `POST /api/v1/approvals` `{package, version, integrity, tags?}` → a publish intent awaiting a
//! tap (other changes get theirs by being asked for: the 401 carries the approval);
//! `GET /api/v1/approvals/{id}`; `POST /api/v1/approvals/{id}` `{credential}` → `{ticket, code}`
//! once the policy is satisfied, else `202 {status: "pending", approvals, required}`;
//! `GET /api/v1/approvals?pending=true` (a maintainer's token) → the approvals waiting on the
//! caller's packages; `POST /api/v1/approvals/{id}/reject` → the challenge a maintainer's key
//! signs to reject the change, `POST /api/v1/approvals/{id}/reject/{ceremony}` `{credential}` →
//! the approval, now `rejected`.
//!
//! The approval id is an unguessable capability (it is the approval page's URL); the key tap
//! authenticates the approver.

use crate::extract::Path;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{
    ApprovalInfo, CreateApproval, FinishApproval, PendingApprovals, RejectChallenge, Scope,
};
use tapgate_shared::gate_intent::Change;

use crate::auth::AuthUser;
use crate::bounds;
use crate::ceremonies;
use crate::changes::{self, publish::check_new_version};
use crate::client_info::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Json, RequestOrigin};
use crate::gate::approvals::{self, MAX_FAILED_ATTEMPTS, TapOutcome};
use crate::gate::roles::Asking;
use crate::gate::{Facts, GateError, policy_in_force, reject};
use crate::limits::{Attempt, Rule, Subject};
use crate::names::{validate_package_name, validate_tag, validate_version};
use crate::state::AppState;
use crate::throttle;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/approvals", post(create).get(list))
        .route("/approvals/{id}", post(finish).get(show))
        .route("/approvals/{id}/reject", post(begin_reject))
        .route("/approvals/{id}/reject/{ceremony}", post(finish_reject))
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    RequestOrigin(origin): RequestOrigin,
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
    let mut tags = body.tags.clone().unwrap_or_else(|| vec!["latest".into()]);
    if tags.len() > crate::changes::publish::MAX_TAGS_PER_PUBLISH {
        return Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            format!("a publish sets at most {} dist-tags", crate::changes::publish::MAX_TAGS_PER_PUBLISH),
        ));
    }
    for tag in &tags {
        validate_tag(tag).map_err(|m| ApiError::bad_request(ErrorCode::InvalidName, m))?;
    }
    tags.sort();
    tags.dedup();
    check_new_version(&state, &body.package, &body.version).await?;
    let actor = user.actor(&state).await?.with_origin(origin);
    let change = Change::Publish { version: body.version.clone(), integrity: body.integrity.clone(), tags };
    // The tarball is not here yet: where the policy asks for more approvals when install
    // scripts change, this approval asks for them (the publish is checked against the real
    // tarball when it comes).
    let policy = policy_in_force(&state, &body.package).await?;
    let facts = Facts { scripts_changed: true };
    match changes::admit_under(&state, &actor, &body.package, policy, Asking::Publish, change, None, facts)
        .await
    {
        Err(GateError::TapRequired(pending)) => Ok((StatusCode::CREATED, Json(pending.info))),
        Err(e) => Err(e.into()),
        Ok(_) => Err(ApiError::conflict(
            ErrorCode::Conflict,
            format!("{}'s policy needs no approval to publish: publish directly", body.package),
        )),
    }
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

/// A tap. Counted per client address, and per address for the account whose approval it is.
async fn finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    client: ClientInfo,
    Path(id): Path<String>,
    Json(body): Json<FinishApproval>,
) -> ApiResult<Response> {
    throttle::limit(&state, &[Attempt::new(Rule::Taps, Subject::Address(ip))]).await?.keep();
    let approval = approvals::load(&state, &id).await?;
    throttle::limit(&state, &[Attempt::new(Rule::TapsAccount, Subject::Account(&approval.requested_by, ip))])
        .await?
        .keep();
    let response = &body.credential.response;
    bounds::bytes("clientDataJSON", &response.client_data_json, bounds::MAX_CLIENT_DATA_BYTES)?;
    bounds::bytes("authenticatorData", &response.authenticator_data, bounds::MAX_AUTHENTICATOR_DATA_BYTES)?;
    bounds::bytes("the signature", &response.signature, bounds::MAX_SIGNATURE_BYTES)?;
    match approvals::finish(&state, &id, &body.credential, &client).await? {
        TapOutcome::Approved(ticket) => Ok(Json(ticket).into_response()),
        TapOutcome::Pending { approvals, required } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "status": "pending", "approvals": approvals, "required": required })),
        )
            .into_response()),
    }
}

/// Most approvals listed at once.
const MAX_LISTED: i64 = 100;

/// The approvals waiting on the caller's packages (and the caller's own requests).
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<PendingApprovals>> {
    user.require(Scope::Read)?;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key != "pending" || value != "true" {
            return Err(ApiError::bad_request(
                ErrorCode::BadRequest,
                "only pending approvals can be listed: GET /api/v1/approvals?pending=true",
            ));
        }
    }
    let actor = user.actor(&state).await?;
    let now = state.now();
    let mut out = Vec::new();
    for approval in
        state.store.pending_approvals_for(&actor.user.id, now, MAX_FAILED_ATTEMPTS, MAX_LISTED).await?
    {
        out.push(approvals::info(&state, &approval).await?);
    }
    Ok(Json(PendingApprovals { approvals: out }))
}

/// Starts rejecting a change: any maintainer of its package (or its requester) may.
async fn begin_reject(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RejectChallenge>)> {
    throttle::limit(&state, &[Attempt::new(Rule::Taps, Subject::Address(ip))]).await?.keep();
    Ok((StatusCode::CREATED, Json(reject::begin(&state, &id).await?)))
}

/// A rejecting tap: the approval is void from now on.
async fn finish_reject(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path((id, ceremony)): Path<(String, String)>,
    Json(body): Json<FinishApproval>,
) -> ApiResult<Json<ApprovalInfo>> {
    throttle::limit(&state, &[Attempt::new(Rule::Taps, Subject::Address(ip))]).await?.keep();
    let response = &body.credential.response;
    bounds::bytes("clientDataJSON", &response.client_data_json, bounds::MAX_CLIENT_DATA_BYTES)?;
    bounds::bytes("authenticatorData", &response.authenticator_data, bounds::MAX_AUTHENTICATOR_DATA_BYTES)?;
    bounds::bytes("the signature", &response.signature, bounds::MAX_SIGNATURE_BYTES)?;
    let ceremony = ceremonies::take(&state, &ceremony, reject::KIND).await?;
    Ok(Json(reject::finish(&state, &id, &ceremony, &body.credential).await?))
}

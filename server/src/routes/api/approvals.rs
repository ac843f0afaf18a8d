//! `POST /api/v1/approvals` `{package, version, integrity, tags?}` → a publish intent awaiting a
//! tap (other changes get theirs by being asked for: the 401 carries the approval);
//! `GET /api/v1/approvals/{id}`; `POST /api/v1/approvals/{id}` `{credential}` → `{ticket, code}`
//! once the policy is satisfied, else `202 {status: "pending", approvals, required}`.
//!
//! The approval id is an unguessable capability (it is the approval page's URL); the key tap
//! authenticates the approver.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{ApprovalInfo, CreateApproval, FinishApproval, Scope};
use tapgate_shared::gate_intent::Change;

use crate::auth::AuthUser;
use crate::bounds;
use crate::changes::{self, publish::check_new_version};
use crate::client_info::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Json};
use crate::gate::GateError;
use crate::gate::approvals::{self, TapOutcome};
use crate::gate::roles::Asking;
use crate::limits::{Attempt, Rule, Subject};
use crate::names::{validate_package_name, validate_tag, validate_version};
use crate::state::AppState;
use crate::throttle;

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
    let actor = user.actor(&state).await?;
    let change = Change::Publish { version: body.version.clone(), integrity: body.integrity.clone(), tags };
    match changes::admit(&state, &actor, &body.package, Asking::Publish, change, None).await {
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

//! `PUT /<name>`: npm publish, through the second-factor gate.
//!
//! Without a valid `npm-otp` on a package whose policy requires a key, the upload's intent is
//! recorded and npm is told, its own way, to get a second factor: `401`,
//! `WWW-Authenticate: OTP`, and a body with `authUrl` (the approval page) and `doneUrl` (polled
//! until the tap, then answering the ticket). With a ticket (or the page's typed code), the
//! version is committed only if the ticket approves exactly this package, version, tarball and
//! user, and the ticket is consumed in the same transaction.

use crate::extract::Path;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tapgate_shared::ErrorCode;
use tapgate_shared::api::Scope;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::publish::packument::{parse_upload, stored_manifest};
use crate::publish::{approvals, may_publish, policy_for, requires_key};
use crate::state::AppState;
use crate::store::packages::{PublishError, PublishRecord};

/// Publish bodies carry base64 tarballs: the largest tarball, base64-encoded, plus 1 MiB of
/// metadata. Larger bodies are refused while they stream in.
pub fn max_body_bytes(max_tarball_bytes: usize) -> usize {
    max_tarball_bytes.saturating_add(2) / 3 * 4 + 1024 * 1024
}

pub fn body_limit(max_tarball_bytes: usize) -> DefaultBodyLimit {
    DefaultBodyLimit::max(max_body_bytes(max_tarball_bytes))
}

fn version_exists(name: &str, version: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::VersionExists,
        format!(
            "{name}@{version} is already published; versions are immutable: bump the version and publish again"
        ),
    )
}

pub async fn publish(
    State(state): State<AppState>,
    Path(name): Path<String>,
    user: AuthUser,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    user.require(Scope::Publish)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "the publish body is too large",
            )
        } else {
            ApiError::bad_request(ErrorCode::BadRequest, format!("unreadable publish body: {e}"))
        }
    })?;
    let limit = state.config.max_tarball_bytes;
    if body.len() > max_body_bytes(limit) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the tarball is larger than this registry accepts ({limit} bytes)"),
        ));
    }
    let upload = parse_upload(&name, &body, limit)?;
    let auth = &user.0;
    if state.store.version(&upload.name, &upload.version).await?.is_some() {
        return Err(version_exists(&upload.name, &upload.version));
    }
    if !may_publish(&state, &upload.name, &auth.user_id).await? {
        return Err(ApiError::forbidden(format!(
            "you are not a maintainer of {}: ask one of its maintainers to add you",
            upload.name
        )));
    }
    let policy = policy_for(&state, &upload.name).await?;
    let mut approval_id = None;
    if requires_key(&policy) {
        let otp =
            headers.get("npm-otp").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        let Some(otp) = otp else {
            let requester = state
                .store
                .user_by_id(&auth.user_id)
                .await?
                .ok_or_else(|| ApiError::unauthorized("your account no longer exists"))?;
            let created =
                approvals::create(&state, &requester, &upload.name, &upload.version, &upload.integrity)
                    .await?;
            return Ok(otp_challenge(&state, &created));
        };
        let approval = approvals::redeemable(
            &state,
            otp,
            &upload.name,
            &upload.version,
            &upload.integrity,
            &auth.user_id,
        )
        .await?
        .ok_or_else(|| invalid_ticket("the one-time code or ticket is unknown: approve the publish again"))?;
        if let Some(why) = approvals::refusal(
            &approval,
            &upload.name,
            &upload.version,
            &upload.integrity,
            &auth.user_id,
            state.now(),
        ) {
            tracing::warn!(package = %upload.name, version = %upload.version, user = %auth.username, reason = %why, "publish ticket refused");
            state
                .store
                .record_event(state.now(), "ticket_refused", Some(&auth.user_id), Some(&upload.name), &why)
                .await?;
            return Err(invalid_ticket(&why));
        }
        approval_id = Some(approval.id);
    }
    let manifest = stored_manifest(&upload, &state.config.url("")).to_string();
    let default_policy =
        serde_json::to_string(&crate::publish::default_policy(&state)).map_err(ApiError::internal)?;
    let record = PublishRecord {
        package: &upload.name,
        version: &upload.version,
        manifest: &manifest,
        tarball: &upload.tarball,
        integrity: &upload.integrity,
        shasum: &upload.shasum,
        publisher_id: &auth.user_id,
        default_policy: &default_policy,
        approval_id: approval_id.as_deref(),
        tags: &upload.tags,
    };
    match state.store.publish(&record, state.now()).await {
        Ok(()) => {}
        Err(PublishError::VersionExists) => return Err(version_exists(&upload.name, &upload.version)),
        Err(PublishError::NotMaintainer) => {
            return Err(ApiError::forbidden(format!("you are not a maintainer of {}", upload.name)));
        }
        Err(PublishError::ApprovalNotUsable) => {
            return Err(invalid_ticket(
                "the ticket was used or expired meanwhile: approve the publish again",
            ));
        }
        Err(PublishError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(
        package = %upload.name,
        version = %upload.version,
        integrity = %upload.integrity,
        user = %auth.username,
        approved = approval_id.is_some(),
        "version published"
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "ok": true,
            "id": upload.name,
            "version": upload.version,
            "integrity": upload.integrity,
        })),
    )
        .into_response())
}

fn invalid_ticket(why: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::InvalidTicket, why)
}

/// npm's "a second factor is needed" answer, with the web-flow URLs.
fn otp_challenge(state: &AppState, created: &approvals::CreatedApproval) -> Response {
    let auth_url = created.info.url.clone();
    let done_url = approvals::done_url(state, &created.done_secret);
    let message = format!(
        "{}@{} needs approval with your security key: open {auth_url} and touch your key, or run `tapgate approve {auth_url}`",
        created.info.package, created.info.version
    );
    let body = json!({
        "error": { "code": ErrorCode::OtpRequired, "message": message },
        "authUrl": auth_url,
        "doneUrl": done_url,
    });
    let mut resp = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("OTP"));
    let notice = format!(
        "Approve this publish with your security key: open {auth_url} and touch your key; then enter the one-time code shown there"
    );
    if let Ok(value) = HeaderValue::from_str(&notice) {
        headers.insert("npm-notice", value);
    }
    resp
}

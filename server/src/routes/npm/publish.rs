//! `PUT /<name>`: npm publish (a document with a tarball) and npm deprecate (the whole packument
//! sent back with `deprecated` fields changed), both through the gate.
//!
//! Without a valid `npm-otp` on a protected package, the intent is recorded and npm is told, its
//! own way, to get a second factor: `401`, `WWW-Authenticate: OTP`, and a body with `authUrl`
//! (the approval page) and `doneUrl` (polled until the tap, then answering the ticket). With the
//! ticket (or the page's typed code) the change commits only if the ticket approves exactly this
//! change for this user, and the ticket is consumed in the same transaction.

use crate::extract::{Path, RequestOrigin};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tapgate_shared::ErrorCode;

use super::documents;
use crate::auth::{Publisher, otp};
use crate::changes::publish::{may_write, publish as publish_upload};
use crate::error::{ApiError, ApiResult};
use crate::publish::packument::{Upload, has_attachments, parse_document, parse_upload_document};
use crate::state::AppState;

/// Publish bodies carry base64 tarballs: the largest tarball, base64-encoded, plus 1 MiB of
/// metadata. Larger bodies are refused while they stream in.
pub fn max_body_bytes(max_tarball_bytes: usize) -> usize {
    max_tarball_bytes.saturating_add(2) / 3 * 4 + 1024 * 1024
}

pub fn body_limit(max_tarball_bytes: usize) -> DefaultBodyLimit {
    DefaultBodyLimit::max(max_body_bytes(max_tarball_bytes))
}

/// A `PUT /<name>` body: a publish, or metadata changes (deprecations).
enum Document {
    Upload(Box<Upload>),
    Metadata(String, serde_json::Map<String, serde_json::Value>),
}

pub async fn publish(
    State(state): State<AppState>,
    Path(name): Path<String>,
    publisher: Publisher,
    RequestOrigin(origin): RequestOrigin,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let actor = publisher.actor(&state).await?.with_origin(origin);
    only_own_package(&publisher, &name)?;
    let body = body_bytes(body, state.config.max_tarball_bytes)?;
    let limit = state.config.max_tarball_bytes;
    // Who may write here is decided before the body is read: a stranger's upload is never
    // decoded, hashed or decompressed.
    may_write(&state, &actor, &name).await?;
    // Decoding base64, hashing and bounded gunzip of up to the tarball limit run off the async
    // workers.
    let parsed = tokio::task::spawn_blocking(move || -> ApiResult<Document> {
        let doc = parse_document(&body)?;
        if has_attachments(&doc) {
            Ok(Document::Upload(Box::new(parse_upload_document(&name, &doc, limit)?)))
        } else {
            Ok(Document::Metadata(name, doc))
        }
    })
    .await
    .map_err(ApiError::internal)??;
    let upload = match parsed {
        Document::Metadata(_, _) if actor.ci.is_some() => {
            return Err(ApiError::forbidden(
                "a CI credential only publishes new versions; deprecations and other changes need a maintainer",
            ));
        }
        Document::Metadata(name, doc) => {
            return documents::update(&state, &actor, &name, &doc, otp(&headers)).await;
        }
        Document::Upload(upload) => upload,
    };
    publish_upload(&state, &actor, &upload, otp(&headers)).await?;
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

/// A publish body as it arrived, or the refusal for one too large or unreadable.
pub fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> ApiResult<Bytes> {
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
    if body.len() > max_body_bytes(limit) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the tarball is larger than this registry accepts ({limit} bytes)"),
        ));
    }
    Ok(body)
}

/// Refuses a CI credential's write to any package but its own.
pub fn only_own_package(publisher: &Publisher, name: &str) -> ApiResult<()> {
    if let Publisher::Ci(ci) = &publisher
        && ci.0.package != name
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::OutsideCiScope,
            format!("this CI credential publishes {} only, not {name}", ci.0.package),
        ));
    }
    Ok(())
}

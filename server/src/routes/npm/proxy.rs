//! Reads of names this registry does not hold, answered from the upstream (`--upstream`): the
//! packument rebuilt to point at this registry, manifests out of it, and tarballs checked against
//! the upstream's integrity before they are served or cached. Only GETs reach this module.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tapgate_shared::ErrorCode;

use super::packages::{not_modified, validated};
use crate::error::{ApiError, ApiResult};
use crate::publish::served::Form;
use crate::state::AppState;
use crate::upstream::Upstream;

/// Remembers that `name` was served from the upstream, so it is not claimed here afterwards
/// (one read per request; a write only the first time).
async fn remember(state: &AppState, name: &str) -> ApiResult<()> {
    if !state.store.upstream_name_served(name).await? {
        state.store.record_upstream_name(name, state.now()).await?;
    }
    Ok(())
}

pub async fn packument(
    state: &AppState,
    upstream: &Upstream,
    name: &str,
    form: Form,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let rebuilt = upstream.packument(name, form, &state.config.url("")).await?;
    remember(state, name).await?;
    let body = rebuilt.document.to_string();
    let digest = Sha256::digest(body.as_bytes());
    let etag = format!("W/\"u{}\"", hex::encode(&digest[..16]));
    if not_modified(headers, &etag) {
        return Ok(validated(StatusCode::NOT_MODIFIED.into_response(), &etag, true));
    }
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(form.content_type()));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(validated(resp, &etag, true))
}

pub async fn version_manifest(
    state: &AppState,
    upstream: &Upstream,
    name: &str,
    spec: &str,
) -> ApiResult<Response> {
    let rebuilt = upstream.packument(name, Form::Full, &state.config.url("")).await?;
    let doc = &rebuilt.document;
    let version = doc["dist-tags"].get(spec).and_then(|v| v.as_str()).unwrap_or(spec);
    let manifest = doc["versions"].get(version).ok_or_else(|| missing(name, spec))?;
    remember(state, name).await?;
    let mut resp = axum::Json(manifest).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn missing(name: &str, version: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::PackageNotFound,
        format!("{name}@{version} is neither in this registry nor in its upstream"),
    )
}

fn tarball_response(bytes: Vec<u8>, etag: &str) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    validated(resp, etag, false)
}

pub async fn tarball(
    state: &AppState,
    upstream: &Upstream,
    name: &str,
    version: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    if let Some(cached) = state.store.upstream_tarball(name, version).await? {
        let etag = format!("\"{}\"", cached.integrity);
        if not_modified(headers, &etag) {
            return Ok(validated(StatusCode::NOT_MODIFIED.into_response(), &etag, false));
        }
        return Ok(tarball_response(cached.bytes, &etag));
    }
    // The integrity comes from the upstream's packument, read now; the tarball from where that
    // packument says, on the upstream's own origin.
    let rebuilt = upstream.packument(name, Form::Abbreviated, &state.config.url("")).await?;
    let source = rebuilt.sources.get(version).ok_or_else(|| missing(name, version))?;
    let what = format!("{name}@{version}");
    let bytes = match upstream.tarball(&what, source, state.config.max_tarball_bytes).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(package = %name, version = %version, error = %e, "upstream tarball refused");
            return Err(e.into());
        }
    };
    remember(state, name).await?;
    let cap = upstream.config.cache_bytes;
    state.store.cache_upstream_tarball(name, version, &source.integrity, &bytes, state.now(), cap).await?;
    let etag = format!("\"{}\"", source.integrity);
    Ok(tarball_response(bytes, &etag))
}

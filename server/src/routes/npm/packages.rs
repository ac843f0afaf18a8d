//! Reading packages the way npm does: `GET /<name>` (packument), `GET /<name>/<version|tag>`,
//! and tarballs at `GET /<name>/-/<file>.tgz` (scoped names in both encodings).

use crate::extract::Path;
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use tapgate_shared::ErrorCode;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};

use crate::error::{ApiError, ApiResult};
use crate::names::validate_package_name;
use crate::publish::cache::Stamp;
use crate::publish::served::{Form, etag, packument, served_manifest};
use crate::state::AppState;
use crate::upstream::Upstream;

pub fn routes(max_tarball_bytes: usize) -> Router<AppState> {
    // Packuments and manifests are gzipped for clients that accept it (npm, yarn and pnpm all
    // do); tarballs are gzip already.
    let compressed = Router::new()
        .route(
            "/{name}",
            get(get_packument)
                .put(super::publish::publish)
                .layer(super::publish::body_limit(max_tarball_bytes)),
        )
        .route("/{first}/{second}", get(get_two_segments))
        .route("/{scope}/{name}/{spec}", get(get_scoped_version))
        .layer(CompressionLayer::new().gzip(true).compress_when(SizeAbove::new(1024).and(successful)));
    Router::new()
        .merge(compressed)
        .route("/{name}/-/{file}", get(get_tarball))
        .route("/{scope}/{name}/-/{file}", get(get_scoped_tarball))
}

/// Only successful answers are compressed: errors stay plain for the layer that rewrites them for
/// npm, and they are small.
fn successful(status: StatusCode, _: axum::http::Version, _: &HeaderMap, _: &axum::http::Extensions) -> bool {
    status.is_success()
}

pub fn package_not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::PackageNotFound,
        format!("package {name:?} is not in this registry"),
    )
}

fn json_response(value: &Value) -> Response {
    let mut resp = axum::Json(value).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The form a request asks for: npm's abbreviated packument when its `Accept` names it first.
fn form_of(headers: &HeaderMap) -> Form {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let first = accept.split(',').next().unwrap_or("").split(';').next().unwrap_or("").trim();
    if first.eq_ignore_ascii_case(Form::Abbreviated.content_type()) { Form::Abbreviated } else { Form::Full }
}

/// Whether `If-None-Match` names `etag` (weak comparison, as for GET).
pub(super) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "*" || v.split(',').any(|t| bare(t) == bare(etag)))
}

pub(super) fn validated(mut resp: Response, etag: &str, vary: bool) -> Response {
    if let Ok(value) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(header::ETAG, value);
    }
    if vary {
        resp.headers_mut().insert(header::VARY, HeaderValue::from_static("accept, accept-encoding"));
    }
    resp
}

/// Whether a request accepts a gzipped answer.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts
                .any(|p| p.trim().strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>() == Ok(0.0)));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Whether a packument GET may go to the upstream: not npm's read before a write
/// (`?write=true`), which answers for local packages only.
fn read_only(query: Option<&str>) -> bool {
    !query.unwrap_or("").split('&').any(|kv| kv.split('=').next() == Some("write"))
}

/// The upstream to read `name` from, when it is not a name of this registry.
async fn upstream_for<'a>(state: &'a AppState, name: &str) -> ApiResult<Option<&'a Upstream>> {
    let Some(upstream) = state.config.upstream.as_deref() else {
        return Ok(None);
    };
    if validate_package_name(name).is_err() || state.store.is_local_name(name).await? {
        return Ok(None);
    }
    Ok(Some(upstream))
}

/// The packument of `name` in `form`, or `304` when the client's copy is current, or 404; from
/// the upstream for a name this registry does not hold, when `proxy` allows.
pub async fn packument_response(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    proxy: bool,
) -> ApiResult<Response> {
    let form = form_of(headers);
    let Some(package) = state.store.package(name).await? else {
        if proxy && let Some(upstream) = upstream_for(state, name).await? {
            return super::proxy::packument(state, upstream, name, form, headers).await;
        }
        return Err(package_not_found(name));
    };
    let maintainers = match form {
        Form::Full => state.store.maintainer_emails(name).await?,
        Form::Abbreviated => Vec::new(),
    };
    let stamp = Stamp {
        revision: package.revision,
        modified_at: package.modified_at,
        maintainers: serde_json::json!(maintainers).to_string(),
    };
    let entry = match state.packuments.get(name, form, &stamp) {
        Some(entry) => entry,
        None => {
            let versions = state.store.versions(name).await?;
            if versions.iter().all(|v| v.unpublished_at.is_some()) {
                return Err(package_not_found(name));
            }
            let tags = state.store.dist_tags(name).await?;
            let etag = etag(name, &versions, &tags, &maintainers, package.modified_at, form);
            if not_modified(headers, &etag) {
                return Ok(validated(StatusCode::NOT_MODIFIED.into_response(), &etag, true));
            }
            let pieces =
                packument(name, versions, &tags, &maintainers, package.created_at, package.modified_at, form);
            let length: usize = pieces.iter().map(bytes::Bytes::len).sum();
            if !state.packuments.fits(length) {
                return Ok(streamed(pieces, length, form, &etag));
            }
            state.packuments.insert(name, form, stamp, etag, pieces.concat())
        }
    };
    if not_modified(headers, &entry.etag) {
        return Ok(validated(StatusCode::NOT_MODIFIED.into_response(), &entry.etag, true));
    }
    let gzip = accepts_gzip(headers) && !entry.gzip.is_empty();
    let body = if gzip { entry.gzip.clone() } else { entry.body.clone() };
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(form.content_type()));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if gzip {
        // Compressed once, when built; the compression layer leaves encoded answers alone.
        resp.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(validated(resp, &entry.etag, true))
}

/// A packument too large to keep, sent piece by piece as it was read (the compression layer
/// gzips it on the way for clients that accept it).
fn streamed(pieces: Vec<bytes::Bytes>, length: usize, form: Form, etag: &str) -> Response {
    let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::convert::Infallible>));
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(form.content_type()));
    resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    validated(resp, etag, true)
}

async fn get_packument(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    packument_response(&state, &name, &headers, read_only(query.as_deref())).await
}

/// `/@scope/name` (a packument) or `/name/<version|tag>` (one manifest).
async fn get_two_segments(
    State(state): State<AppState>,
    Path((first, second)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if first.starts_with('@') && !first.contains('/') {
        return packument_response(
            &state,
            &format!("{first}/{second}"),
            &headers,
            read_only(query.as_deref()),
        )
        .await;
    }
    version_manifest(&state, &first, &second).await
}

/// `/@scope/name/<version|tag>`
async fn get_scoped_version(
    State(state): State<AppState>,
    Path((scope, name, spec)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    if !scope.starts_with('@') {
        return Err(ApiError::not_found(format!("no such endpoint: /{scope}/{name}/{spec}")));
    }
    version_manifest(&state, &format!("{scope}/{name}"), &spec).await
}

async fn version_manifest(state: &AppState, name: &str, spec: &str) -> ApiResult<Response> {
    if state.store.package(name).await?.is_none()
        && let Some(upstream) = upstream_for(state, name).await?
    {
        return super::proxy::version_manifest(state, upstream, name, spec).await;
    }
    let tags = state.store.dist_tags(name).await?;
    let version = tags.get(spec).map_or(spec, String::as_str);
    let row = state.store.version(name, version).await?.filter(|v| v.unpublished_at.is_none()).ok_or_else(
        || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::PackageNotFound,
                format!("{name}@{spec} is not in this registry"),
            )
        },
    )?;
    Ok(json_response(&served_manifest(&row)))
}

async fn get_tarball(
    State(state): State<AppState>,
    Path((name, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    tarball(&state, &name, &file, &headers).await
}

async fn get_scoped_tarball(
    State(state): State<AppState>,
    Path((scope, name, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !scope.starts_with('@') {
        return Err(ApiError::not_found(format!("no such endpoint: /{scope}/{name}/-/{file}")));
    }
    tarball(&state, &format!("{scope}/{name}"), &file, &headers).await
}

/// The version a tarball file name (`<bare name>-<version>.tgz`) stands for.
pub fn version_of_tarball<'a>(name: &str, file: &'a str) -> ApiResult<&'a str> {
    let bare = name.rsplit('/').next().unwrap_or(name);
    file.strip_prefix(bare)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(".tgz"))
        .ok_or_else(|| ApiError::not_found(format!("{file:?} is not a tarball name of {name}")))
}

async fn tarball(state: &AppState, name: &str, file: &str, headers: &HeaderMap) -> ApiResult<Response> {
    let version = version_of_tarball(name, file)?;
    if state.store.package(name).await?.is_none()
        && let Some(upstream) = upstream_for(state, name).await?
    {
        return super::proxy::tarball(state, upstream, name, version, headers).await;
    }
    let gone = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::PackageNotFound,
            format!("{name}@{version} is not in this registry"),
        )
    };
    // A tarball never changes: its integrity is its validator, checked before its bytes are read.
    let row =
        state.store.version(name, version).await?.filter(|v| v.unpublished_at.is_none()).ok_or_else(gone)?;
    let etag = format!("\"{}\"", row.integrity);
    if not_modified(headers, &etag) {
        return Ok(validated(StatusCode::NOT_MODIFIED.into_response(), &etag, false));
    }
    let bytes = state.store.tarball(name, version).await?.ok_or_else(gone)?;
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    Ok(validated(resp, &etag, false))
}

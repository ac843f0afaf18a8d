//! Reading packages the way npm does: `GET /<name>` (packument), `GET /<name>/<version|tag>`,
//! and tarballs at `GET /<name>/-/<file>.tgz` (scoped names in both encodings).

use crate::extract::Path;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use tapgate_shared::ErrorCode;

use crate::error::{ApiError, ApiResult};
use crate::publish::served::{packument, served_manifest};
use crate::state::AppState;

pub fn routes(max_tarball_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/{name}",
            get(get_packument)
                .put(super::publish::publish)
                .layer(super::publish::body_limit(max_tarball_bytes)),
        )
        .route("/{first}/{second}", get(get_two_segments))
        .route("/{scope}/{name}/{spec}", get(get_scoped_version))
        .route("/{name}/-/{file}", get(get_tarball))
        .route("/{scope}/{name}/-/{file}", get(get_scoped_tarball))
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

/// The packument of `name` as JSON text in pieces, or 404.
pub async fn load_packument(state: &AppState, name: &str) -> ApiResult<Vec<bytes::Bytes>> {
    let package = state.store.package(name).await?.ok_or_else(|| package_not_found(name))?;
    let versions = state.store.versions(name).await?;
    if versions.iter().all(|v| v.unpublished_at.is_some()) {
        return Err(package_not_found(name));
    }
    let tags = state.store.dist_tags(name).await?;
    let maintainers = state.store.maintainer_emails(name).await?;
    Ok(packument(name, versions, &tags, &maintainers, package.created_at, package.modified_at))
}

fn json_text_response(pieces: Vec<bytes::Bytes>) -> Response {
    let length: usize = pieces.iter().map(bytes::Bytes::len).sum();
    let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::convert::Infallible>));
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

async fn get_packument(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(json_text_response(load_packument(&state, &name).await?))
}

/// `/@scope/name` (a packument) or `/name/<version|tag>` (one manifest).
async fn get_two_segments(
    State(state): State<AppState>,
    Path((first, second)): Path<(String, String)>,
) -> ApiResult<Response> {
    if first.starts_with('@') && !first.contains('/') {
        return Ok(json_text_response(load_packument(&state, &format!("{first}/{second}")).await?));
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
) -> ApiResult<Response> {
    tarball(&state, &name, &file).await
}

async fn get_scoped_tarball(
    State(state): State<AppState>,
    Path((scope, name, file)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    if !scope.starts_with('@') {
        return Err(ApiError::not_found(format!("no such endpoint: /{scope}/{name}/-/{file}")));
    }
    tarball(&state, &format!("{scope}/{name}"), &file).await
}

/// The version a tarball file name (`<bare name>-<version>.tgz`) stands for.
pub fn version_of_tarball<'a>(name: &str, file: &'a str) -> ApiResult<&'a str> {
    let bare = name.rsplit('/').next().unwrap_or(name);
    file.strip_prefix(bare)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(".tgz"))
        .ok_or_else(|| ApiError::not_found(format!("{file:?} is not a tarball name of {name}")))
}

async fn tarball(state: &AppState, name: &str, file: &str) -> ApiResult<Response> {
    let version = version_of_tarball(name, file)?;
    let bytes = state.store.tarball(name, version).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::PackageNotFound,
            format!("{name}@{version} is not in this registry"),
        )
    })?;
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    Ok(resp)
}

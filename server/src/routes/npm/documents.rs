//! npm's document writes other than publish, each turned into one gated change:
//!
//! - `PUT /<name>` without a tarball: `npm deprecate` / `npm undeprecate` send the whole
//!   packument back with `versions[v].deprecated` changed;
//! - `PUT /<name>/-rev/<rev>`: `npm unpublish pkg@v` (the packument without that version) and
//!   `npm owner add|rm` (`{_id, _rev, maintainers}`);
//! - `DELETE /<name>/-rev/<rev>`: `npm unpublish pkg --force`;
//! - `DELETE /<tarball path>/-rev/<rev>`: the tarball of a version `npm unpublish` removed.
//!
//! A document that asks for anything else (several changes at once, new versions without a
//! tarball, edited tags) is refused with a sentence naming the command that does it: nothing is
//! ever answered 200 without being done.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, put};
use serde_json::{Map, Value, json};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::Scope;

use crate::auth::{AuthUser, otp};
use crate::changes::Actor;
use crate::changes::package::{self as changes, served_versions};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::publish::packument::parse_document;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{name}/-rev/{rev}", put(put_rev).delete(delete_package))
        .route("/{name}/-/{file}/-rev/{rev}", delete(delete_tarball))
        .route("/{scope}/{name}/-/{file}/-rev/{rev}", delete(delete_scoped_tarball))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::BadRequest, message)
}

fn ok(name: &str) -> Response {
    axum::Json(json!({ "ok": true, "id": name })).into_response()
}

fn version_names(doc: &Map<String, Value>) -> Option<BTreeSet<String>> {
    doc.get("versions").and_then(Value::as_object).map(|v| v.keys().cloned().collect())
}

/// `PUT /<name>` without a tarball: deprecation changes.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    name: &str,
    doc: &Map<String, Value>,
    otp: Option<&str>,
) -> ApiResult<Response> {
    let versions = doc.get("versions").and_then(Value::as_object).ok_or_else(|| {
        bad("this document has neither a tarball nor versions: publish with a tarball, or use npm deprecate")
    })?;
    let served = served_versions(state, name).await?;
    if served.is_empty() {
        return Err(super::packages::package_not_found(name));
    }
    let served_names: BTreeSet<String> = served.iter().map(|v| v.version.clone()).collect();
    let sent: BTreeSet<String> = versions.keys().cloned().collect();
    if let Some(v) = sent.difference(&served_names).next() {
        return Err(bad(format!(
            "{name}@{v} is not published: publish new versions with their tarball (npm publish)"
        )));
    }
    if let Some(v) = served_names.difference(&sent).next() {
        return Err(bad(format!(
            "the document leaves out {name}@{v}: to remove a version use npm unpublish"
        )));
    }
    let wanted: Vec<(String, String)> = versions
        .iter()
        .map(|(v, manifest)| {
            (v.clone(), manifest.get("deprecated").and_then(Value::as_str).unwrap_or("").to_string())
        })
        .collect();
    for (_, message) in &wanted {
        crate::bounds::deprecation(message)?;
    }
    changes::deprecate(state, actor, name, &wanted, otp).await?;
    Ok(ok(name))
}

/// `PUT /<name>/-rev/<rev>`: unpublish one version, or change one maintainer.
async fn put_rev(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, _rev)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    user.require(Scope::Publish)?;
    let doc = parse_document(&body)?;
    let actor = user.actor(&state).await?;
    let otp = otp(&headers);
    if let Some(sent) = version_names(&doc) {
        let served: BTreeSet<String> =
            served_versions(&state, &name).await?.into_iter().map(|v| v.version).collect();
        if let Some(v) = sent.difference(&served).next() {
            return Err(bad(format!("{name}@{v} is not published: publish new versions with their tarball")));
        }
        let removed: Vec<&String> = served.difference(&sent).collect();
        match removed.as_slice() {
            [one] => {
                changes::unpublish_version(&state, &actor, &name, one, otp).await?;
                return Ok(ok(&name));
            }
            [] => {}
            _ => return Err(bad("unpublish one version at a time (npm unpublish NAME@VERSION)")),
        }
    }
    let Some(maintainers) = doc.get("maintainers").and_then(Value::as_array) else {
        return Err(bad(
            "this document changes nothing this registry supports: use npm owner, npm dist-tag, npm deprecate or npm unpublish",
        ));
    };
    let wanted: BTreeSet<String> = maintainers
        .iter()
        .filter_map(|m| m.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let current: BTreeSet<String> =
        state.store.maintainers(&name).await?.into_iter().map(|(_, n)| n).collect();
    let added: Vec<&String> = wanted.difference(&current).collect();
    let removed: Vec<&String> = current.difference(&wanted).collect();
    match (added.as_slice(), removed.as_slice()) {
        ([user], []) => changes::add_maintainer(&state, &actor, &name, user, otp).await?,
        ([], [user]) => changes::remove_maintainer(&state, &actor, &name, user, otp).await?,
        ([], []) => {
            return Err(ApiError::conflict(ErrorCode::Conflict, format!("nothing to change in {name}")));
        }
        _ => return Err(bad("change one maintainer at a time (npm owner add|rm USER PACKAGE)")),
    }
    Ok(ok(&name))
}

/// `DELETE /<name>/-rev/<rev>`: unpublish the whole package.
async fn delete_package(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, _rev)): Path<(String, String)>,
) -> ApiResult<Response> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    changes::unpublish_package(&state, &actor, &name, otp(&headers)).await?;
    Ok(ok(&name))
}

async fn delete_tarball(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, file, _rev)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    tarball_gone(&state, &user, &headers, &name, &file).await
}

async fn delete_scoped_tarball(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((scope, name, file, _rev)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    if !scope.starts_with('@') {
        return Err(ApiError::not_found(format!("no such endpoint: /{scope}/{name}/-/{file}")));
    }
    tarball_gone(&state, &user, &headers, &format!("{scope}/{name}"), &file).await
}

/// npm deletes a version's tarball after its `PUT …/-rev/…` removed the version: the tarball is
/// already gone then. Deleting the tarball of a version still served unpublishes it, through the
/// gate like any unpublish.
async fn tarball_gone(
    state: &AppState,
    user: &AuthUser,
    headers: &HeaderMap,
    name: &str,
    file: &str,
) -> ApiResult<Response> {
    user.require(Scope::Publish)?;
    let version = super::packages::version_of_tarball(name, file)?;
    let row =
        state.store.version(name, version).await?.ok_or_else(|| super::packages::package_not_found(name))?;
    if row.unpublished_at.is_none() {
        let actor = user.actor(state).await?;
        changes::unpublish_version(state, &actor, name, version, otp(headers)).await?;
    }
    Ok(ok(name))
}

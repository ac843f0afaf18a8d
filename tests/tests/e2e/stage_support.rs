//! Staged releases through the API: CI (or a maintainer) stages, a maintainer decides.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tapgate_shared::stage::{StageItem, StageList, Staged};

use crate::deploy_keys_support::{PKG, World};
use crate::gate_support::{send, tap_required};
use crate::publish_support::{Maintainer, approve, publish_body};

/// `POST /-/stage/package/<PKG>` with `bearer`, as `npm stage publish` sends it.
pub async fn stage_raw(w: &World, bearer: &str, body: &Value) -> reqwest::Response {
    send(&w.app, Method::POST, &format!("/-/stage/package/{PKG}"), bearer, Some(body), None).await
}

/// Stages `version` with `tgz` (it must be accepted); returns the stage.
pub async fn stage(w: &World, bearer: &str, version: &str, tgz: &[u8]) -> StageItem {
    let resp = stage_raw(w, bearer, &publish_body(PKG, version, tgz)).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let staged: Staged = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(staged.stage_id, staged.item.id);
    assert!(uuid::Uuid::parse_str(&staged.stage_id).is_ok(), "npm wants a UUID: {}", staged.stage_id);
    staged.item
}

/// `GET /-/stage/<id>` with `bearer`.
pub async fn view(w: &World, bearer: &str, id: &str) -> reqwest::Response {
    send(&w.app, Method::GET, &format!("/-/stage/{id}"), bearer, None, None).await
}

/// The stage as `bearer` sees it (it must be visible).
pub async fn stage_item(w: &World, bearer: &str, id: &str) -> StageItem {
    let resp = view(w, bearer, id).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// `GET /-/stage` (first page) with `bearer`.
pub async fn list(w: &World, bearer: &str) -> StageList {
    let resp = send(&w.app, Method::GET, "/-/stage?page=0&perPage=100", bearer, None, None).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// `POST /-/stage/<id>/approve` with `bearer` and optionally a ticket.
pub async fn approve_raw(w: &World, bearer: &str, id: &str, otp: Option<&str>) -> reqwest::Response {
    send(&w.app, Method::POST, &format!("/-/stage/{id}/approve"), bearer, None, otp).await
}

/// `DELETE /-/stage/<id>` with `bearer` and optionally a ticket.
pub async fn reject_raw(w: &World, bearer: &str, id: &str, otp: Option<&str>) -> reqwest::Response {
    send(&w.app, Method::DELETE, &format!("/-/stage/{id}"), bearer, None, otp).await
}

/// `m` asks to approve (or with `reject`, to reject) the stage, taps, and repeats with the
/// ticket; returns the approval's action and the final answer.
pub async fn decide_with_tap(
    w: &World,
    m: &Maintainer,
    id: &str,
    reject: bool,
) -> (String, reqwest::Response) {
    let first = if reject {
        reject_raw(w, &m.token, id, None).await
    } else {
        approve_raw(w, &m.token, id, None).await
    };
    let info = tap_required(first).await;
    let ticket = approve(&w.app, &info, &m.key).await;
    let resp = if reject {
        reject_raw(w, &m.token, id, Some(&ticket.ticket)).await
    } else {
        approve_raw(w, &m.token, id, Some(&ticket.ticket)).await
    };
    (info.action, resp)
}

/// A CI credential of alice's for any 1.x version with the tag latest, valid for 30 days (longer
/// than a stage waits).
pub async fn long_credential(w: &World, id: &str) -> String {
    let mut scope = w.scope(id, "^1.0.0", &["latest"], &[]);
    scope["expires_at"] = tapgate_shared::ci::format_utc(w.app.clock_now() + 30 * 86_400).into();
    w.credential(&scope).await.credential
}

//! Driving the gate: a write that needs a tap answers `401 otp_required` with its approval; the
//! test taps and repeats the write with the ticket.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tapgate_shared::api::ApprovalInfo;

use crate::keys_support::{SoftKey, enroll, login};
use crate::publish_support::{Maintainer, approve};
use crate::support::TestApp;

/// A request to the app with a token, a JSON body and optionally the ticket.
pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    otp: Option<&str>,
) -> reqwest::Response {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(body);
    }
    if let Some(otp) = otp {
        req = req.header("npm-otp", otp);
    }
    req.send().await.unwrap()
}

/// Asserts npm's "a tap is needed" answer and returns the approval it carries.
pub async fn tap_required(resp: reqwest::Response) -> ApprovalInfo {
    let status = resp.status();
    let www = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(www.as_deref(), Some("OTP"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "otp_required", "{text}");
    assert!(body["authUrl"].as_str().unwrap().contains("/approve/apr_"), "{text}");
    assert!(body["doneUrl"].as_str().unwrap().contains("/-/v1/done/approvals/"), "{text}");
    serde_json::from_value(body["approval"].clone()).unwrap()
}

/// Sends the write, expects the tap demand, taps with `key`, repeats with the ticket.
pub async fn with_tap(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    key: &SoftKey,
) -> (ApprovalInfo, reqwest::Response) {
    let info = tap_required(send(app, method.clone(), path, token, body, None).await).await;
    let ticket = approve(app, &info, key).await;
    let resp = send(app, method, path, token, body, Some(&ticket.ticket)).await;
    (info, resp)
}

/// An administrator with a key and a sign-in token (scopes read, publish, admin).
pub async fn admin(app: &TestApp, name: &str) -> Maintainer {
    let user = app.user(name, true).await;
    let invite = app.store().create_invite(&user.id, app.clock_now()).await.unwrap();
    let key = SoftKey::new();
    enroll(app, &invite, &key, "admin key").await;
    let token = login(app, name, &key).await;
    Maintainer { key, token }
}

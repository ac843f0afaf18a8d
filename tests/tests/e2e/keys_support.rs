//! Real WebAuthn ceremonies against the in-process app, with the CLI's own software key and
//! ceremony code (the same path `tapgate` takes, minus USB).

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tapgate::authenticator::AuthenticatorChoice;
use tapgate_shared::api::{AuthenticationChallenge, RegistrationChallenge};
use webauthn_rs_proto::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::support::TestApp;

/// A software security key in a file.
pub struct SoftKey {
    pub path: PathBuf,
    pub choice: AuthenticatorChoice,
    _dir: tempfile::TempDir,
}

impl SoftKey {
    pub fn new() -> SoftKey {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.cbor");
        SoftKey { choice: AuthenticatorChoice::Soft(path.clone()), path, _dir: dir }
    }

    /// The PEM of this key's attestation CA (the file exists once the key was first used).
    pub fn ca_pem(&self) -> PathBuf {
        // Touch the key so that its file and CA exist.
        let _ = tapgate::authenticator::open(&self.choice).unwrap();
        tapgate::authenticator::soft::ca_pem_path(&self.path)
    }
}

pub async fn begin_registration(app: &TestApp, bearer: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/keys/registrations"))
        .bearer_auth(bearer)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

/// Begins a registration and has `key` answer it (without finishing).
pub async fn registration_response(
    app: &TestApp,
    bearer: &str,
    key: &SoftKey,
) -> (String, RegisterPublicKeyCredential) {
    let resp = begin_registration(app, bearer).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let begin: RegistrationChallenge = resp.json().await.unwrap();
    let cred = tapgate::ceremony::register(&key.choice, &begin.public_key, &app.origin).await.unwrap();
    (begin.ceremony, cred)
}

pub async fn finish_registration(
    app: &TestApp,
    bearer: &str,
    ceremony: &str,
    name: &str,
    credential: &impl serde::Serialize,
) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v1/keys/registrations/{ceremony}")))
        .bearer_auth(bearer)
        .json(&json!({ "name": name, "credential": credential }))
        .send()
        .await
        .unwrap()
}

/// Enrolls `key` with `bearer`; returns the stored key's JSON.
pub async fn enroll(app: &TestApp, bearer: &str, key: &SoftKey, name: &str) -> Value {
    let (ceremony, cred) = registration_response(app, bearer, key).await;
    let resp = finish_registration(app, bearer, &ceremony, name, &cred).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

pub async fn begin_login(app: &TestApp, username: &str) -> AuthenticationChallenge {
    let resp = app
        .http
        .post(app.url("/api/v1/sessions"))
        .json(&json!({ "username": username }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

pub async fn assertion(app: &TestApp, key: &SoftKey, begin: &AuthenticationChallenge) -> PublicKeyCredential {
    tapgate::ceremony::assert(&key.choice, &begin.public_key, &app.origin).await.unwrap()
}

pub async fn finish_login(
    app: &TestApp,
    ceremony: &str,
    credential: &impl serde::Serialize,
) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v1/sessions/{ceremony}")))
        .json(&json!({ "credential": credential }))
        .send()
        .await
        .unwrap()
}

/// Signs in with `key`; returns the new token.
pub async fn login(app: &TestApp, username: &str, key: &SoftKey) -> String {
    let begin = begin_login(app, username).await;
    let cred = assertion(app, key, &begin).await;
    let resp = finish_login(app, &begin.ceremony, &cred).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["username"], username);
    body["token"].as_str().unwrap().to_string()
}

/// A user with an invite; returns the invite token.
pub async fn invited(app: &TestApp, name: &str) -> String {
    let user = app.user(name, false).await;
    app.store().create_invite(&user.id, app.clock_now()).await.unwrap()
}

pub async fn key_count(app: &TestApp, username: &str) -> usize {
    let user = app.store().user_by_name(username).await.unwrap().unwrap();
    app.store().keys_of_user(&user.id).await.unwrap().len()
}

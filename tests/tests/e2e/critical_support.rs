//! Helpers for critical packages: apps trusting some keys' attestation CAs, packages with
//! several maintainers, policies set by an administrator, and single taps.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_server::webauthn::AttestationTrust;
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket};

use crate::gate_support::{send, tap_required, with_tap};
use crate::keys_support::{SoftKey, enroll, invited, login, registration_response};
use crate::publish_support::{Maintainer, encode, finish_approval, maintainer, publish_body, put, tarball};
use crate::support::{Backend, TestApp};

/// An app whose relying party trusts the attestation CAs of `keys` (and no other).
pub async fn app_trusting(backend: Backend, keys: &[&SoftKey]) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("trusted.pem");
    let pems: Vec<String> = keys.iter().map(|k| std::fs::read_to_string(k.ca_pem()).unwrap()).collect();
    std::fs::write(&bundle, pems.join("\n")).unwrap();
    TestApp::with_trust(backend, AttestationTrust::load(&bundle, None).unwrap()).await
}

/// A user `name` whose first key is `key`, signed in.
pub async fn person_with(app: &TestApp, name: &str, key: SoftKey) -> Maintainer {
    let invite = invited(app, name).await;
    enroll(app, &invite, &key, "key").await;
    let token = login(app, name, &key).await;
    Maintainer { key, token }
}

/// Enrolls `extra` as `m`'s second key (approved with their first).
pub async fn add_key(app: &TestApp, m: &Maintainer, extra: &SoftKey, name: &str) {
    let (ceremony, cred) = registration_response(app, &m.token, extra).await;
    let (_, resp) = with_tap(
        app,
        Method::POST,
        &format!("/api/v1/keys/registrations/{ceremony}"),
        &m.token,
        Some(&json!({ "name": name, "credential": cred })),
        &m.key,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
}

/// `first` publishes `pkg@1.0.0` (a plain policy: their tap) and makes each of `others` a
/// maintainer, each addition approved with `first`'s tap.
pub async fn package_with(app: &TestApp, pkg: &str, first: &Maintainer, others: &[&str]) {
    let tgz = tarball(pkg, "1.0.0", "one");
    let (_, resp) = with_tap(
        app,
        Method::PUT,
        &format!("/{}", encode(pkg)),
        &first.token,
        Some(&publish_body(pkg, "1.0.0", &tgz)),
        &first.key,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    for user in others {
        let path = format!("/api/v1/packages/{}/maintainers/{user}", encode(pkg));
        let (_, resp) = with_tap(app, Method::PUT, &path, &first.token, None, &first.key).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    }
}

/// Maintainers `names` (the first publishes `pkg@1.0.0`), each with one key.
pub async fn maintainers(app: &TestApp, pkg: &str, names: &[&str]) -> Vec<Maintainer> {
    let mut out = Vec::new();
    for name in names {
        out.push(maintainer(app, name).await);
    }
    package_with(app, pkg, &out[0], &names[1..]).await;
    out
}

/// Makes a package's policy stricter: the administrator's tap alone does it.
pub async fn raise_policy(app: &TestApp, admin: &Maintainer, pkg: &str, policy: Value) {
    let path = format!("/api/v1/packages/{}/policy", encode(pkg));
    let (info, resp) = with_tap(app, Method::PUT, &path, &admin.token, Some(&policy), &admin.key).await;
    assert_eq!(info.required, 1, "raising a policy needs the administrator's tap only");
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
}

/// The stored policy JSON of `pkg`.
pub async fn stored_policy(app: &TestApp, pkg: &str) -> String {
    app.store().package(pkg).await.unwrap().unwrap().policy
}

/// A tarball of `pkg@version` whose package.json has `scripts`.
pub fn tarball_with_scripts(pkg: &str, version: &str, scripts: Value) -> Vec<u8> {
    let package_json = json!({ "name": pkg, "version": version, "scripts": scripts }).to_string();
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("package/package.json", package_json.as_bytes()),
        ("package/index.js", b"module.exports = 1;\n".as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// `m` asks to publish `pkg@version` as npm does: the registry answers with the approval.
pub async fn ask_publish(
    app: &TestApp,
    m: &Maintainer,
    pkg: &str,
    version: &str,
    tgz: &[u8],
) -> ApprovalInfo {
    tap_required(put(app, &m.token, pkg, &publish_body(pkg, version, tgz), None).await).await
}

/// `m` repeats the publish with `ticket`.
pub async fn publish_with(
    app: &TestApp,
    m: &Maintainer,
    pkg: &str,
    version: &str,
    tgz: &[u8],
    ticket: &str,
) -> reqwest::Response {
    put(app, &m.token, pkg, &publish_body(pkg, version, tgz), Some(ticket)).await
}

/// One tap by `key` on a pending approval: the registry's raw answer.
pub async fn tap(app: &TestApp, info: &ApprovalInfo, key: &SoftKey) -> reqwest::Response {
    let options = info.public_key.as_ref().expect("a pending approval has a challenge");
    let cred = tapgate::ceremony::assert(&key.choice, options, &app.origin).await.unwrap();
    // One second between taps: the record lists them in the order they came.
    app.clock.advance(1);
    finish_approval(app, &info.id, &cred).await
}

/// A tap that must leave the approval pending with `approvals` of `required`.
pub async fn tap_pending(app: &TestApp, info: &ApprovalInfo, key: &SoftKey, approvals: u32, required: u32) {
    let resp = tap(app, info, key).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({ "status": "pending", "approvals": approvals, "required": required }));
}

/// A tap that must complete the approval.
pub async fn tap_approves(app: &TestApp, info: &ApprovalInfo, key: &SoftKey) -> ApprovalTicket {
    let resp = tap(app, info, key).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The approval as anyone holding its URL sees it.
pub async fn approval(app: &TestApp, id: &str) -> ApprovalInfo {
    app.get_json(&format!("/api/v1/approvals/{id}")).await
}

/// The served versions of `pkg`.
pub async fn versions(app: &TestApp, pkg: &str) -> Vec<String> {
    let info: Value = app.get_json(&format!("/api/v1/packages/{}", encode(pkg))).await;
    info["versions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// A request without the ticket: the gate answers with a new approval.
pub async fn ask(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> ApprovalInfo {
    tap_required(send(app, method, path, token, body, None).await).await
}

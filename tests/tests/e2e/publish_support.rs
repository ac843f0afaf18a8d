//! Building tarballs and npm publish documents, and driving the approval API.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket};
use tapgate_shared::intent::sri_sha512;

use crate::keys_support::{SoftKey, enroll, invited, login};
use crate::support::TestApp;

/// A gzipped npm tarball for `name@version` with some content `salt` (so bytes differ).
pub fn tarball(name: &str, version: &str, salt: &str) -> Vec<u8> {
    tarball_with_body(name, version, salt, &format!("module.exports = {salt:?};\n"))
}

/// A tarball whose `index.js` is `body` (for large tarballs with small metadata).
pub fn tarball_with_body(name: &str, version: &str, salt: &str, body: &str) -> Vec<u8> {
    let package_json = json!({ "name": name, "version": version, "description": salt }).to_string();
    let index = body.to_string();
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in
        [("package/package.json", package_json.as_bytes()), ("package/index.js", index.as_bytes())]
    {
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

/// npm's publish document for a tarball, as `npm publish` builds it.
pub fn publish_body(name: &str, version: &str, tarball: &[u8]) -> Value {
    let bare = name.rsplit('/').next().unwrap();
    let file = format!("{bare}-{version}.tgz");
    json!({
        "_id": name,
        "name": name,
        "dist-tags": { "latest": version },
        "versions": { version: {
            "name": name, "version": version, "_id": format!("{name}@{version}"),
            "dist": {
                "integrity": sri_sha512(tarball),
                "shasum": hex::encode(Sha1::digest(tarball)),
                "tarball": format!("http://localhost/{name}/-/{file}"),
            }
        }},
        "_attachments": { file: {
            "content_type": "application/octet-stream",
            "data": base64::engine::general_purpose::STANDARD.encode(tarball),
            "length": tarball.len(),
        }},
    })
}

pub fn encode(name: &str) -> String {
    name.replace('/', "%2f")
}

pub async fn put(
    app: &TestApp,
    token: &str,
    name: &str,
    body: &Value,
    otp: Option<&str>,
) -> reqwest::Response {
    let mut req = app.http.put(app.url(&format!("/{}", encode(name)))).bearer_auth(token).json(body);
    if let Some(otp) = otp {
        req = req.header("npm-otp", otp);
    }
    req.send().await.unwrap()
}

/// A maintainer with a key and a fresh token.
pub struct Maintainer {
    pub key: SoftKey,
    pub token: String,
}

pub async fn maintainer(app: &TestApp, name: &str) -> Maintainer {
    let invite = invited(app, name).await;
    let key = SoftKey::new();
    enroll(app, &invite, &key, "key").await;
    let token = login(app, name, &key).await;
    Maintainer { key, token }
}

pub async fn create_approval(
    app: &TestApp,
    m: &Maintainer,
    name: &str,
    version: &str,
    integrity: &str,
) -> ApprovalInfo {
    let resp = app
        .http
        .post(app.url("/api/v1/approvals"))
        .bearer_auth(&m.token)
        .json(&json!({ "package": name, "version": version, "integrity": integrity }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    serde_json::from_str(&text).unwrap()
}

pub async fn finish_approval(
    app: &TestApp,
    id: &str,
    credential: &impl serde::Serialize,
) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v1/approvals/{id}")))
        .json(&json!({ "credential": credential }))
        .send()
        .await
        .unwrap()
}

/// Approves an approval with `key`; returns the ticket.
pub async fn approve(app: &TestApp, info: &ApprovalInfo, key: &SoftKey) -> ApprovalTicket {
    let options = info.public_key.as_ref().expect("pending approval has a challenge");
    let cred = tapgate::ceremony::assert(&key.choice, options, &app.origin).await.unwrap();
    let resp = finish_approval(app, &info.id, &cred).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The whole gate through the API: approval, tap, upload with the ticket.
pub async fn publish_with_key(
    app: &TestApp,
    m: &Maintainer,
    name: &str,
    version: &str,
    tarball: &[u8],
) -> reqwest::Response {
    let info = create_approval(app, m, name, version, &sri_sha512(tarball)).await;
    let ticket = approve(app, &info, &m.key).await;
    put(app, &m.token, name, &publish_body(name, version, tarball), Some(&ticket.ticket)).await
}

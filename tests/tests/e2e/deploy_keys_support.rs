//! A package whose policy lets CI publish with deploy keys, a maintainer who authorizes a CI
//! credential with a tap, and CI asking for deploy keys.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_shared::ci::{IssuedCiCredential, IssuedDeployKey};
use tapgate_shared::intent::sri_sha512;

use crate::gate_support::{admin, send, with_tap};
use crate::publish_support::{Maintainer, maintainer, publish_body, publish_with_key, put, tarball};
use crate::support::TestApp;

/// alice maintains `package` (1.0.0 published with her tap); an administrator set its policy.
pub struct World {
    pub app: TestApp,
    pub alice: Maintainer,
    pub root: Maintainer,
}

pub const PKG: &str = "left-pad";

/// A policy that needs a tap for every change and lets CI publish with `ci`.
pub fn policy(ci: &[&str]) -> Value {
    json!({ "second_factor": "security-key", "ci": ci })
}

impl World {
    pub async fn new(app: TestApp, ci: &[&str]) -> World {
        let alice = maintainer(&app, "alice").await;
        let root = admin(&app, "root").await;
        let tgz = tarball(PKG, "1.0.0", "first");
        assert_eq!(publish_with_key(&app, &alice, PKG, "1.0.0", &tgz).await.status(), StatusCode::CREATED);
        let w = World { app, alice, root };
        w.set_policy(PKG, ci).await;
        w
    }

    pub async fn set_policy(&self, package: &str, ci: &[&str]) {
        let path = format!("/api/v1/packages/{package}/policy");
        let body = policy(ci);
        let (_, resp) =
            with_tap(&self.app, Method::PUT, &path, &self.root.token, Some(&body), &self.root.key).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    }

    /// The body of a credential request, valid for a day.
    pub fn scope(&self, id: &str, versions: &str, tags: &[&str], cidrs: &[&str]) -> Value {
        json!({
            "id": id, "package": PKG, "name": "release workflow", "versions": versions, "tags": tags,
            "expires_at": tapgate_shared::ci::format_utc(self.app.clock_now() + 86_400), "cidrs": cidrs,
        })
    }

    /// alice creates a CI credential with her tap; returns the credential.
    pub async fn credential(&self, scope: &Value) -> IssuedCiCredential {
        let (info, resp) = with_tap(
            &self.app,
            Method::POST,
            "/api/v1/ci/credentials",
            &self.alice.token,
            Some(scope),
            &self.alice.key,
        )
        .await;
        assert_eq!(info.action, "ci-credential-create");
        let text = resp.text().await.unwrap();
        let issued: IssuedCiCredential =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(issued.credential.starts_with("tg_ci_"));
        issued
    }

    /// A credential for any 1.x version, tag latest, from anywhere.
    pub async fn any_credential(&self, id: &str) -> String {
        self.credential(&self.scope(id, "^1.0.0", &["latest"], &[])).await.credential
    }

    /// CI asks for a deploy key.
    pub async fn ask(&self, credential: &str, version: &str, tgz: &[u8], tags: &[&str]) -> reqwest::Response {
        let body = json!({ "package": PKG, "version": version, "integrity": sri_sha512(tgz), "tags": tags });
        send(&self.app, Method::POST, "/api/v1/ci/deploy-keys", credential, Some(&body), None).await
    }

    /// CI gets a deploy key (it must be issued).
    pub async fn deploy_key(&self, credential: &str, version: &str, tgz: &[u8]) -> String {
        let resp = self.ask(credential, version, tgz, &["latest"]).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let issued: IssuedDeployKey = serde_json::from_str(&text).unwrap();
        assert!(issued.deploy_key.starts_with("tg_dk_"));
        issued.deploy_key
    }

    /// `PUT /<pkg>` as npm sends it, with `bearer` and the deploy key as `npm-otp`.
    pub async fn publish(&self, bearer: &str, version: &str, tgz: &[u8], otp: &str) -> reqwest::Response {
        put(&self.app, bearer, PKG, &publish_body(PKG, version, tgz), Some(otp)).await
    }

    /// The versions served, oldest first.
    pub async fn versions(&self) -> Vec<String> {
        let info: Value = self.app.get_json(&format!("/api/v1/packages/{PKG}")).await;
        info["versions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }
}

/// npm's publish document for `version` setting the dist-tag `tag` instead of latest.
pub fn tagged_body(version: &str, tgz: &[u8], tag: &str) -> Value {
    let mut body = publish_body(PKG, version, tgz);
    body["dist-tags"] = json!({ tag: version });
    body
}

//! A registry that trusts the local test issuer (as its `github` issuer), alice maintaining
//! `left-pad` (1.0.0 published with her tap) under a policy an administrator set, and CI
//! exchanging ID tokens and publishing with what it gets.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_server::AppConfig;
use tapgate_server::oidc::OidcConfig;

use crate::gate_support::{admin, send, with_tap};
use crate::oidc_support::{TestIssuer, github_issuer};
use crate::publish_support::{Maintainer, maintainer, publish_body, publish_with_key, put, tarball};
use crate::support::{Backend, TestApp};

pub const PKG: &str = "left-pad";
pub const REPO: &str = "acme/left-pad";
pub const WORKFLOW: &str = "release.yml";

pub struct OidcWorld {
    pub app: TestApp,
    pub issuer: TestIssuer,
    pub alice: Maintainer,
    pub root: Maintainer,
}

impl OidcWorld {
    /// The world with `ci` as left-pad's CI ways; `configure` adjusts the app further.
    pub async fn with(
        backend: Backend,
        ci: &[&str],
        configure: impl FnOnce(&mut AppConfig),
    ) -> Option<OidcWorld> {
        let issuer = TestIssuer::start().await;
        let trusted = github_issuer(&issuer);
        let app = TestApp::with_config(backend, move |c| {
            c.oidc = OidcConfig::new(vec![trusted], Duration::ZERO);
            configure(c);
        })
        .await?;
        let alice = maintainer(&app, "alice").await;
        let root = admin(&app, "root").await;
        let tgz = tarball(PKG, "1.0.0", "first");
        assert_eq!(publish_with_key(&app, &alice, PKG, "1.0.0", &tgz).await.status(), StatusCode::CREATED);
        let w = OidcWorld { app, issuer, alice, root };
        w.set_policy(&json!({ "second_factor": "security-key", "ci": ci })).await;
        Some(w)
    }

    pub async fn new(backend: Backend, ci: &[&str]) -> Option<OidcWorld> {
        Self::with(backend, ci, |_| {}).await
    }

    pub async fn set_policy(&self, policy: &Value) {
        let path = format!("/api/v1/packages/{PKG}/policy");
        let (_, resp) =
            with_tap(&self.app, Method::PUT, &path, &self.root.token, Some(policy), &self.root.key).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    }

    /// The audience npm asks for: `npm:` and the registry's host name.
    pub fn audience(&self) -> String {
        "npm:localhost".into()
    }

    /// Claims of a token from acme/left-pad's release workflow, now.
    pub fn claims(&self) -> Value {
        self.issuer.claims(self.app.clock_now(), &self.audience(), REPO, WORKFLOW)
    }

    /// A token for those claims, patched.
    pub fn token(&self, patch: &Value) -> String {
        self.issuer.token(&self.claims(), patch)
    }

    /// npm's trust body for GitHub (`npm trust github`).
    pub fn github_trust(repository: &str, file: &str) -> Value {
        json!([{ "type": "github", "claims": { "repository": repository, "workflow_ref": { "file": file } },
                 "permissions": ["createPackage"] }])
    }

    /// `maintainer` creates `body`'s trust on `package` with a tap; answers the created trust.
    pub async fn trust_as(&self, who: &Maintainer, package: &str, body: &Value) -> Value {
        let path = format!("/-/package/{}/trust", package.replace('/', "%2f"));
        let (info, resp) = with_tap(&self.app, Method::POST, &path, &who.token, Some(body), &who.key).await;
        assert_eq!(info.action, "trust-create");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let created: Value = serde_json::from_str(&text).unwrap();
        created[0].clone()
    }

    /// alice trusts acme/left-pad's release workflow for left-pad.
    pub async fn trust(&self) -> Value {
        self.trust_as(&self.alice, PKG, &Self::github_trust(REPO, WORKFLOW)).await
    }

    /// CI exchanges `id_token` for `package`.
    pub async fn exchange_for(&self, package: &str, id_token: &str) -> reqwest::Response {
        let path = format!("/-/npm/v1/oidc/token/exchange/package/{}", package.replace('/', "%2f"));
        self.app.http.post(self.app.url(&path)).bearer_auth(id_token).send().await.unwrap()
    }

    pub async fn exchange(&self, id_token: &str) -> reqwest::Response {
        self.exchange_for(PKG, id_token).await
    }

    /// CI exchanges `id_token` and must get a registry token.
    pub async fn registry_token(&self, id_token: &str) -> String {
        let resp = self.exchange(id_token).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        let token = body["token"].as_str().unwrap().to_string();
        assert!(token.starts_with("tg_oidc_"), "{token}");
        token
    }

    /// npm's publish `PUT` of `version` with `bearer` (no one-time password).
    pub async fn publish(&self, bearer: &str, version: &str, tgz: &[u8]) -> reqwest::Response {
        put(&self.app, bearer, PKG, &publish_body(PKG, version, tgz), None).await
    }

    /// The versions served.
    pub async fn versions(&self) -> Vec<String> {
        let info: Value = self.app.get_json(&format!("/api/v1/packages/{PKG}")).await;
        info["versions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }

    /// The trusts npm lists for `package`, as `who` sees them.
    pub async fn trusts(&self, who: &Maintainer, package: &str) -> Vec<Value> {
        let path = format!("/-/package/{}/trust", package.replace('/', "%2f"));
        let resp = send(&self.app, Method::GET, &path, &who.token, None, None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }
}

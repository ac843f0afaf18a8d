//! Driving the real `tapgate-server` binary over HTTP: enrolment, sign-in and taps with a
//! software key, the way the in-process helpers do it for `TestApp`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket, AuthenticationChallenge, RegistrationChallenge};
use tapgate_tests::process::{ServerProcess, server_cli};

use crate::keys_support::SoftKey;

/// Where a server process answers.
#[derive(Clone)]
pub struct Remote {
    pub http: reqwest::Client,
    pub base: String,
    pub origin: String,
}

/// A user with an enrolled key and a sign-in token.
pub struct Person {
    pub key: SoftKey,
    pub token: String,
    /// The invite the user enrolled with.
    pub invite: String,
}

impl Remote {
    pub fn of(server: &ServerProcess) -> Remote {
        Remote { http: reqwest::Client::new(), base: server.base.clone(), origin: server.origin.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        otp: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(otp) = otp {
            req = req.header("npm-otp", otp);
        }
        req.send().await
    }

    /// Adds `name` with the admin CLI, enrolls a key with the invite and signs in.
    pub async fn person(
        &self,
        data: &std::path::Path,
        db_url: Option<&str>,
        name: &str,
        admin: bool,
    ) -> Person {
        let mut args = vec!["user", "add", name, "--json"];
        if admin {
            args.push("--admin");
        }
        let (status, out, err) = server_cli(data, db_url, &args);
        assert!(status.success(), "{err}");
        let added: Value = serde_json::from_str(&out).unwrap();
        let invite = added["invite_token"].as_str().unwrap().to_string();
        let key = SoftKey::new();
        let begin: RegistrationChallenge = self
            .http
            .post(self.url("/api/v1/keys/registrations"))
            .bearer_auth(&invite)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cred = tapgate::ceremony::register(&key.choice, &begin.public_key, &self.origin).await.unwrap();
        let resp = self
            .http
            .post(self.url(&format!("/api/v1/keys/registrations/{}", begin.ceremony)))
            .bearer_auth(&invite)
            .json(&json!({ "name": "key", "credential": cred }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
        let token = self.login(name, &key).await;
        Person { key, token, invite }
    }

    /// Signs in with `key`; returns the token.
    pub async fn login(&self, name: &str, key: &SoftKey) -> String {
        let begin: AuthenticationChallenge = self
            .http
            .post(self.url("/api/v1/sessions"))
            .json(&json!({ "username": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cred = tapgate::ceremony::assert(&key.choice, &begin.public_key, &self.origin).await.unwrap();
        let resp = self
            .http
            .post(self.url(&format!("/api/v1/sessions/{}", begin.ceremony)))
            .json(&json!({ "credential": cred }))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["token"].as_str().unwrap_or_else(|| panic!("sign-in failed: {body}")).to_string()
    }

    /// Sends the write without a ticket and returns the approval of npm's "tap needed" answer.
    pub async fn approval_for(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> ApprovalInfo {
        let resp = self.send(method, path, token, body, None).await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["code"], "otp_required", "{text}");
        serde_json::from_value(body["approval"].clone()).unwrap()
    }

    /// Taps `info` with `key`: the raw answer.
    pub async fn tap(&self, info: &ApprovalInfo, key: &SoftKey) -> reqwest::Result<reqwest::Response> {
        let options = info.public_key.as_ref().expect("pending approval has a challenge");
        let cred = tapgate::ceremony::assert(&key.choice, options, &self.origin).await.unwrap();
        self.http
            .post(self.url(&format!("/api/v1/approvals/{}", info.id)))
            .json(&json!({ "credential": cred }))
            .send()
            .await
    }

    /// Taps `info` with `key`; returns the ticket.
    pub async fn approve(&self, info: &ApprovalInfo, key: &SoftKey) -> ApprovalTicket {
        let resp = self.tap(info, key).await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The ticket for a write: asks, taps, and returns the ticket (the write is not repeated).
    pub async fn ticket(&self, method: Method, path: &str, who: &Person, body: Option<&Value>) -> String {
        let info = self.approval_for(method, path, &who.token, body).await;
        self.approve(&info, &who.key).await.ticket
    }
}

//! The HTTP application in-process: envelopes, bad input, tokens.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tapgate_shared::api::Scope;

use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(health_and_readiness, tokens_are_listed_created_and_revoked);

async fn health_and_readiness(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let live: Value = app.get_json("/healthz").await;
    assert_eq!(live["status"], "ok");
    let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("x-request-id"), "every response carries a request id");
    // With the database gone, readiness fails (and liveness does not).
    app.store().close().await;
    let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
    expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn tokens_are_listed_created_and_revoked(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = app.user("alice", false).await;
    let token = app.token(&alice, &[Scope::Read, Scope::Publish]).await;

    let who: Value = app.get_json_as("/api/v1/whoami", &token).await;
    assert_eq!(who["username"], "alice");
    assert_eq!(who["admin"], false);

    // Derive a read-only token; the secret is shown once and works.
    let resp = app
        .http
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&token)
        .json(&json!({"name": "ci reader", "scopes": ["read"], "expires_in_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let issued: Value = resp.json().await.unwrap();
    let reader = issued["token"].as_str().unwrap().to_string();
    assert!(reader.starts_with("tg_api_"));
    assert!(issued["expires_at"].is_string());

    // It cannot widen its own scopes, and a non-admin cannot mint admin tokens.
    let resp = app
        .http
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&reader)
        .json(&json!({"name": "x", "scopes": ["publish"]}))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app
        .http
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&token)
        .json(&json!({"name": "x", "scopes": ["admin"]}))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;

    let list: Value = app.get_json_as("/api/v1/tokens", &token).await;
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens.iter().all(|t| t.get("token").is_none() && t.get("token_hash").is_none()),
        "no secrets listed: {list}"
    );
    assert_eq!(tokens.iter().filter(|t| t["current"] == true).count(), 1);

    // Another user cannot revoke alice's token; alice can.
    let bob = app.user("bob", false).await;
    let bob_token = app.token(&bob, &[Scope::Read]).await;
    let reader_id = issued["id"].as_str().unwrap();
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/tokens/{reader_id}")))
        .bearer_auth(&bob_token)
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/tokens/{reader_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app.http.get(app.url("/api/v1/whoami")).bearer_auth(&reader).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Expiry follows the injected clock.
    let (_, short) = app
        .store()
        .issue_token(
            &alice.id,
            "short",
            &[Scope::Read],
            Some(app.clock_now() + 60),
            tapgate_server::store::tokens::TokenSource::Issued,
            app.clock_now(),
        )
        .await
        .unwrap();
    assert_eq!(
        app.http.get(app.url("/api/v1/whoami")).bearer_auth(&short).send().await.unwrap().status(),
        StatusCode::OK
    );
    app.clock.advance(61);
    let resp = app.http.get(app.url("/api/v1/whoami")).bearer_auth(&short).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn bad_input_gets_envelopes_never_500s() {
    let app = TestApp::new(Backend::Sqlite).await.unwrap();
    let alice = app.user("alice", false).await;
    let token = app.token(&alice, &[Scope::Read]).await;
    let post = || app.http.post(app.url("/api/v1/tokens")).bearer_auth(&token);

    let resp = post().header("content-type", "application/json").body("{\"name\": ").send().await.unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_json").await;
    let resp = post().header("content-type", "text/plain").body("{}").send().await.unwrap();
    expect_error(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let resp = post().json(&json!({"name": 5, "scopes": ["read"]})).send().await.unwrap();
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_json").await;
    let resp = post().json(&json!({"name": "x", "scopes": ["root"]})).send().await.unwrap();
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_json").await;
    let resp = post().json(&json!({"name": "x", "scopes": []})).send().await.unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
    let big = format!("{{\"name\": \"{}\", \"scopes\": [\"read\"]}}", "x".repeat(200 * 1024));
    let resp = post().header("content-type", "application/json").body(big).send().await.unwrap();
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    for path in ["/%ff%fe", "/-/package/%c3%28/dist-tags", "/api/v1/approvals/%ff"] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        expect_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    let resp = app.http.get(app.url("/no/such/route/at-all")).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app.http.put(app.url("/healthz")).send().await.unwrap();
    expect_error(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    for auth in ["", "Bearer", "Bearer tg_api_nope", "Basic dXNlcjpwYXNz", "Bearer \u{7f}"] {
        let resp = app.http.get(app.url("/api/v1/whoami")).header("authorization", auth).send().await;
        let Ok(resp) = resp else { continue }; // reqwest refuses some header values itself
        let msg = expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert!(!msg.contains("tg_api_nope"), "the token is never echoed");
    }
}

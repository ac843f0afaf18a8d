//! Holding under abuse: rate limits on sign-in, npm logins, taps, second factors and invites
//! (429 + Retry-After, shared by instances, per address), and bounded stored text and tokens.
//! Connections and timeouts: `limits_connections`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_server::limits::Limit;
use tapgate_shared::api::Scope;

use crate::gate_support::send;
use crate::keys_support::{begin_registration, invited};
use crate::publish_support::{maintainer, publish_with_key, tarball};
use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(
    sign_in_is_limited_per_account_and_address_and_recovers_after_the_window,
    refused_codes_are_limited_per_account_and_address_but_valid_tickets_never_count,
    taps_and_invites_are_limited_per_address,
    oversized_text_is_refused_and_nothing_is_stored,
    derived_tokens_never_outlive_their_parent_and_die_with_it,
);

/// An app whose rate limits are all off but the ones `configure` sets.
async fn app_with_limits(
    backend: Backend,
    configure: impl FnOnce(&mut tapgate_server::limits::RateLimits),
) -> Option<TestApp> {
    TestApp::with_config(backend, |c| {
        c.rate_limits = tapgate_server::limits::RateLimits::off();
        configure(&mut c.rate_limits);
    })
    .await
}

/// Asserts the `429` answer; returns its `Retry-After` seconds.
async fn expect_limited(resp: reqwest::Response) -> i64 {
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let message = expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let seconds: i64 = retry_after.expect("Retry-After header").parse().expect("Retry-After in seconds");
    assert!(seconds >= 1, "{seconds}");
    assert!(message.contains(&format!("{seconds} seconds")) || message.contains("minutes"), "{message}");
    assert!(message.contains("try again"), "{message}");
    seconds
}

async fn begin_sign_in(app: &TestApp, http: &reqwest::Client, username: &str) -> reqwest::Response {
    http.post(app.url("/api/v1/sessions")).json(&json!({ "username": username })).send().await.unwrap()
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the app).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
}

async fn sign_in_is_limited_per_account_and_address_and_recovers_after_the_window(backend: Backend) {
    let Some(app) = app_with_limits(backend, |l| l.sign_in_account = Some(Limit::new(3, 60))).await else {
        return;
    };
    app.user("alice", false).await;
    for _ in 0..3 {
        assert_eq!(begin_sign_in(&app, &app.http, "alice").await.status(), StatusCode::CREATED);
    }
    let retry_after = expect_limited(begin_sign_in(&app, &app.http, "alice").await).await;
    assert!(retry_after <= 60, "{retry_after}");
    // Unknown usernames count the same way (nothing tells them apart), and other accounts are
    // not affected, nor is alice from another address.
    assert_eq!(begin_sign_in(&app, &app.http, "bob").await.status(), StatusCode::CREATED);
    let elsewhere = client_from("127.0.0.2");
    assert_eq!(begin_sign_in(&app, &elsewhere, "alice").await.status(), StatusCode::CREATED);
    // Once the window has passed, alice may sign in again.
    app.clock.advance(retry_after);
    assert_eq!(begin_sign_in(&app, &app.http, "alice").await.status(), StatusCode::CREATED);
}

async fn refused_codes_are_limited_per_account_and_address_but_valid_tickets_never_count(backend: Backend) {
    let Some(app) = app_with_limits(backend, |l| l.otp_failures_account = Some(Limit::new(2, 900))).await
    else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let keys: Value = app.get_json_as("/api/v1/keys", &alice.token).await;
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_string();
    let remove_key = format!("/api/v1/keys/{key_id}");
    let guess = |code: &'static str| send(&app, Method::DELETE, &remove_key, &alice.token, None, Some(code));

    expect_error(guess("AAAAAAAA").await, StatusCode::FORBIDDEN, "invalid_ticket").await;
    // A valid ticket is given back: publishing with one does not count towards the limit.
    let resp = publish_with_key(&app, &alice, "left-pad", "1.0.0", &tarball("left-pad", "1.0.0", "a")).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    expect_error(guess("BBBBBBBB").await, StatusCode::FORBIDDEN, "invalid_ticket").await;
    let retry_after = expect_limited(guess("CCCCCCCC").await).await;
    assert!(retry_after <= 900, "{retry_after}");
    // Nothing changed: the key is still there.
    let keys: Value = app.get_json_as("/api/v1/keys", &alice.token).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    // The same account from another address is not locked out (an attacker holding a copy of
    // alice's token cannot lock her out by guessing from elsewhere).
    let elsewhere = client_from("127.0.0.2");
    let resp = elsewhere
        .delete(app.url(&remove_key))
        .bearer_auth(&alice.token)
        .header("npm-otp", "DDDDDDDD")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    // And the limit lifts with its window.
    app.clock.advance(retry_after);
    expect_error(guess("EEEEEEEE").await, StatusCode::FORBIDDEN, "invalid_ticket").await;
}

async fn taps_and_invites_are_limited_per_address(backend: Backend) {
    let Some(app) = app_with_limits(backend, |l| {
        l.taps = Some(Limit::new(2, 600));
        l.invites = Some(Limit::new(2, 600));
        l.npm_login = Some(Limit::new(1, 600));
    })
    .await
    else {
        return;
    };
    // Taps: wrong ones fail as such until the address has used its attempts.
    let bogus = json!({ "credential": {
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA" },
    }});
    let tap = || app.http.post(app.url("/api/v1/approvals/apr_unknown")).json(&bogus).send();
    expect_error(tap().await.unwrap(), StatusCode::NOT_FOUND, "package_not_found").await;
    expect_error(tap().await.unwrap(), StatusCode::NOT_FOUND, "package_not_found").await;
    expect_limited(tap().await.unwrap()).await;

    // Invites.
    invited(&app, "carol").await;
    let wrong = "tg_inv_0000000000000000000000000000000000000000000";
    expect_error(begin_registration(&app, wrong).await, StatusCode::UNAUTHORIZED, "invalid_invite").await;
    expect_error(begin_registration(&app, wrong).await, StatusCode::UNAUTHORIZED, "invalid_invite").await;
    let retry_after = expect_limited(begin_registration(&app, wrong).await).await;
    app.clock.advance(retry_after);
    expect_error(begin_registration(&app, wrong).await, StatusCode::UNAUTHORIZED, "invalid_invite").await;

    // npm web logins.
    let start = || app.http.post(app.url("/-/v1/login")).json(&json!({})).send();
    assert_eq!(start().await.unwrap().status(), StatusCode::OK);
    expect_limited(start().await.unwrap()).await;
}

async fn oversized_text_is_refused_and_nothing_is_stored(backend: Backend) {
    let Some(app) = TestApp::with_config(backend, |c| c.max_json_bytes = 4 * 1024 * 1024).await else {
        return;
    };
    let alice = app.user("alice", false).await;
    let token = app.token(&alice, &[Scope::Read, Scope::Publish]).await;
    let huge = "x".repeat(1024 * 1024);
    for name in [huge.as_str(), &"y".repeat(101), "   ", "tab\tname"] {
        let resp = app
            .http
            .post(app.url("/api/v1/tokens"))
            .bearer_auth(&token)
            .json(&json!({ "name": name, "scopes": ["read"] }))
            .send()
            .await
            .unwrap();
        let message = expect_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(message.contains("1 to 100"), "{message}");
    }
    let list: Value = app.get_json_as("/api/v1/tokens", &token).await;
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1, "only the caller's own token: {list}");

    // Sign-in: usernames and token names are bounded before anything is kept.
    let resp = app
        .http
        .post(app.url("/api/v1/sessions"))
        .json(&json!({ "username": "alice", "token_name": huge }))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
    let resp =
        app.http.post(app.url("/api/v1/sessions")).json(&json!({ "username": huge })).send().await.unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_name").await;

    // Deprecation messages, and URLs.
    let resp = app
        .http
        .put(app.url("/api/v1/packages/left-pad/versions/1.0.0/deprecation"))
        .bearer_auth(&token)
        .json(&json!({ "message": "z".repeat(5000) }))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
    let resp = app.http.get(app.url(&format!("/{}", "a".repeat(10_000)))).send().await.unwrap();
    expect_error(resp, StatusCode::URI_TOO_LONG, "bad_request").await;
}

async fn derived_tokens_never_outlive_their_parent_and_die_with_it(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = app.user("alice", false).await;
    let now = app.clock_now();
    let (parent_record, parent) = app
        .store()
        .issue_token(
            &alice.id,
            "parent",
            &[Scope::Read, Scope::Publish],
            Some(now + 10 * 86_400),
            tapgate_server::store::tokens::TokenSource::Login,
            now,
        )
        .await
        .unwrap();
    let derive = |from: String, days: Option<u32>| {
        let mut body = json!({ "name": "ci", "scopes": ["read"] });
        if let Some(days) = days {
            body["expires_in_days"] = json!(days);
        }
        app.http.post(app.url("/api/v1/tokens")).bearer_auth(from).json(&body).send()
    };
    // Asking for longer than the parent lives gets the parent's expiry, never later.
    let resp = derive(parent.clone(), Some(300)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let child: Value = resp.json().await.unwrap();
    let parent_expiry = tapgate_server::clock::rfc3339(now + 10 * 86_400);
    assert_eq!(child["expires_at"], parent_expiry.as_str());
    let child_token = child["token"].as_str().unwrap().to_string();
    let resp = derive(child_token.clone(), None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let grandchild: Value = resp.json().await.unwrap();
    assert_eq!(grandchild["expires_at"], parent_expiry.as_str());
    let grandchild_token = grandchild["token"].as_str().unwrap().to_string();
    // More than a year is refused outright.
    expect_error(derive(parent.clone(), Some(400)).await.unwrap(), StatusCode::BAD_REQUEST, "bad_request")
        .await;

    // A token with no expiry derives tokens that live a year at most.
    let unbounded = app.token(&alice, &[Scope::Read]).await;
    let resp = derive(unbounded, None).await.unwrap();
    let capped: Value = resp.json().await.unwrap();
    assert_eq!(capped["expires_at"], tapgate_server::clock::rfc3339(now + 365 * 86_400).as_str());

    // Revoking the parent revokes what was derived from it, however indirectly.
    let whoami = |t: &str| app.http.get(app.url("/api/v1/whoami")).bearer_auth(t.to_string()).send();
    assert_eq!(whoami(&grandchild_token).await.unwrap().status(), StatusCode::OK);
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/tokens/{}", parent_record.id)))
        .bearer_auth(&parent)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for t in [&child_token, &grandchild_token] {
        expect_error(whoami(t).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

/// Two instances on one PostgreSQL database count the same attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_shared_by_instances_on_one_database() {
    let Some(a) = app_with_limits(Backend::Postgres, |l| l.npm_login = Some(Limit::new(2, 600))).await else {
        return;
    };
    let b = a.another_instance().await;
    let start = |app: &TestApp| app.http.post(app.url("/-/v1/login")).json(&json!({})).send();
    assert_eq!(start(&a).await.unwrap().status(), StatusCode::OK);
    assert_eq!(start(&b).await.unwrap().status(), StatusCode::OK);
    expect_limited(start(&a).await.unwrap()).await;
    expect_limited(start(&b).await.unwrap()).await;
    // The purge forgets windows that have passed (and only those).
    a.clock.advance(600);
    assert!(a.store().purge_expired(a.clock_now()).await.unwrap() >= 1);
    assert_eq!(start(&b).await.unwrap().status(), StatusCode::OK);
}

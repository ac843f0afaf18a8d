//! Security keys: enrollment, sign-in, management, attestation facts, and attacks on each.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gate_support::{send, tap_required, with_tap};
use crate::keys_support::*;
use crate::publish_support::approve;
use crate::support::{Backend, TestApp, backend_tests, expect_error};
use reqwest::Method;

backend_tests!(
    enroll_with_invite_sign_in_and_manage_keys,
    ceremonies_started_on_one_instance_finish_on_another,
    counter_regression_suspends_the_key_and_is_recorded,
);

async fn enroll_with_invite_sign_in_and_manage_keys(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let invite = invited(&app, "alice").await;
    let key = SoftKey::new();
    let stored = enroll(&app, &invite, &key, "desk key").await;
    assert_eq!(stored["name"], "desk key");
    assert_eq!(stored["attestation_format"], "packed");
    assert_eq!(stored["attested"], false, "no CA is trusted by default");
    assert_eq!(stored["user_verified"], true, "the soft key verifies the user when asked");
    assert!(stored["aaguid"].as_str().unwrap().len() == 36);

    // The invite is used up.
    let resp = begin_registration(&app, &invite).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_invite").await;

    let token = login(&app, "alice", &key).await;
    assert!(token.starts_with("tg_api_"));
    let who: Value = app.get_json_as("/api/v1/whoami", &token).await;
    assert_eq!(who["username"], "alice");

    // A second key: the token alone enrolls nothing; one of alice's keys approves exactly it.
    let backup = SoftKey::new();
    let (ceremony, cred) = registration_response(&app, &token, &backup).await;
    let info = tap_required(finish_registration(&app, &token, &ceremony, "backup", &cred).await).await;
    assert_eq!(info.action, "key-add");
    assert!(info.description.contains("\"backup\""), "{}", info.description);
    assert_eq!(key_count(&app, "alice").await, 1, "nothing enrolled before the tap");
    let ticket = approve(&app, &info, &key).await;
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/keys/registrations/{ceremony}")))
        .bearer_auth(&token)
        .header("npm-otp", &ticket.ticket)
        .json(&json!({ "name": "backup", "credential": cred }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let second: Value = resp.json().await.unwrap();
    let keys: Value = app.get_json_as("/api/v1/keys", &token).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    // Re-enrolling an already enrolled key is refused by the key (exclude list).
    let resp = begin_registration(&app, &token).await;
    let begin: tapgate_shared::api::RegistrationChallenge = resp.json().await.unwrap();
    let err = tapgate::ceremony::register(&key.choice, &begin.public_key, &app.origin).await.unwrap_err();
    assert!(err.to_string().contains("already enrolled"), "{err}");

    // Rename (not a gated change: names are labels) and remove (gated).
    let id = second["id"].as_str().unwrap();
    let renamed: Value = app
        .http
        .patch(app.url(&format!("/api/v1/keys/{id}")))
        .bearer_auth(&token)
        .json(&json!({"name": "safe"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["name"], "safe");
    let resp = app
        .http
        .patch(app.url(&format!("/api/v1/keys/{id}")))
        .bearer_auth(&token)
        .json(&json!({"name": " "}))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_name").await;
    let path = format!("/api/v1/keys/{id}");
    let (info, resp) = with_tap(&app, Method::DELETE, &path, &token, None, &key).await;
    assert_eq!(info.action, "key-remove");
    assert_eq!(resp.status(), 204);
    let first = stored["id"].as_str().unwrap();
    let resp = send(&app, Method::DELETE, &format!("/api/v1/keys/{first}"), &token, None, None).await;
    let info = tap_required(resp).await;
    let ticket = approve(&app, &info, &key).await;
    let resp =
        send(&app, Method::DELETE, &format!("/api/v1/keys/{first}"), &token, None, Some(&ticket.ticket))
            .await;
    let msg = expect_error(resp, StatusCode::CONFLICT, "conflict").await;
    assert!(msg.contains("last usable security key"), "{msg}");
    assert_eq!(key_count(&app, "alice").await, 1);
    // The removed key no longer signs in.
    let begin = begin_login(&app, "alice").await;
    let err = tapgate::ceremony::assert(&backup.choice, &begin.public_key, &app.origin).await.unwrap_err();
    assert!(err.to_string().contains("is enrolled for this account"), "{err}");
}

async fn ceremonies_started_on_one_instance_finish_on_another(backend: Backend) {
    let Some(a) = TestApp::new(backend).await else {
        return;
    };
    let b = a.another_instance().await;
    let invite = invited(&a, "alice").await;
    let key = SoftKey::new();
    let resp = begin_registration(&a, &invite).await;
    let begin: tapgate_shared::api::RegistrationChallenge = resp.json().await.unwrap();
    let cred = tapgate::ceremony::register(&key.choice, &begin.public_key, &a.origin).await.unwrap();
    let resp = finish_registration(&b, &invite, &begin.ceremony, "k", &cred).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    // Sign-in: begun on b, finished on a.
    let begin = begin_login(&b, "alice").await;
    let cred = assertion(&a, &key, &begin).await;
    let resp = finish_login(&a, &begin.ceremony, &cred).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // And it is single-use across instances.
    let resp = finish_login(&b, &begin.ceremony, &cred).await;
    expect_error(resp, StatusCode::GONE, "ceremony_expired").await;
}

async fn counter_regression_suspends_the_key_and_is_recorded(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let invite = invited(&app, "alice").await;
    let key = SoftKey::new();
    enroll(&app, &invite, &key, "k").await;
    let snapshot = std::fs::read(&key.path).unwrap();
    login(&app, "alice", &key).await;
    login(&app, "alice", &key).await;
    // A clone of the key as it was earlier: its counter is behind the registry's.
    std::fs::write(&key.path, &snapshot).unwrap();
    let begin = begin_login(&app, "alice").await;
    let cred = assertion(&app, &key, &begin).await;
    let resp = finish_login(&app, &begin.ceremony, &cred).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "counter_regression").await;
    let events = app.store().recent_events(10).await.unwrap();
    assert_eq!(events[0].kind, "counter_regression");
    let user = app.store().user_by_name("alice").await.unwrap().unwrap();
    let keys = app.store().keys_of_user(&user.id).await.unwrap();
    assert!(keys[0].suspended_at.is_some(), "the key is suspended");
    // Even the genuine key (counter ahead) is refused now: the user must enroll again.
    let begin = begin_login(&app, "alice").await;
    assert!(begin.public_key.allow_credentials.iter().all(|c| c.id != keys[0].credential_id));

    // A clone answering a ceremony begun before the genuine key's latest use: its counter is
    // above that ceremony's snapshot but not above the live counter. That is a regression too.
    let invite = invited(&app, "bob").await;
    let key = SoftKey::new();
    enroll(&app, &invite, &key, "k").await;
    let older = begin_login(&app, "bob").await;
    let clone = std::fs::read(&key.path).unwrap();
    login(&app, "bob", &key).await;
    std::fs::write(&key.path, &clone).unwrap();
    let cred = assertion(&app, &key, &older).await;
    let resp = finish_login(&app, &older.ceremony, &cred).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "counter_regression").await;
    let bob = app.store().user_by_name("bob").await.unwrap().unwrap();
    assert!(app.store().keys_of_user(&bob.id).await.unwrap()[0].suspended_at.is_some());
    let events = app.store().recent_events(10).await.unwrap();
    assert_eq!(
        (events[0].kind.as_str(), events[0].user_id.as_deref()),
        ("counter_regression", Some(bob.id.as_str()))
    );
}

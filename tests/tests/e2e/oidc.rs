//! Trusted publishing (OIDC) from a local issuer over HTTPS: a maintainer's tap creates a trust;
//! CI exchanges an ID token for a short-lived registry token and publishes once; every token
//! that must not publish is refused with its exact code, counted towards the lock, and nothing
//! is published. Both backends.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_shared::api::ApprovalRecord;
use tapgate_shared::ci::ServerKeys;
use tapgate_shared::oidc::OidcPublish;

use crate::gate_support::send;
use crate::oidc_support::{IssuerKey, TestIssuer, forged_tokens};
use crate::oidc_world::{OidcWorld, PKG, REPO, WORKFLOW};
use crate::publish_support::tarball;
use crate::support::{Backend, backend_tests, expect_error};

backend_tests!(
    ci_publishes_once_with_an_id_token_and_the_record_verifies_offline,
    tokens_that_must_not_publish_are_refused_with_their_code,
    policies_without_oidc_and_critical_packages_refuse_it,
    rotated_issuer_keys_are_fetched_once_and_made_up_kids_are_rate_limited,
    an_id_token_is_exchanged_once_across_instances,
    refused_tokens_count_towards_the_lock,
    trusts_need_a_tap_the_required_claims_and_removal_kills_their_tokens,
    a_pending_trusted_publisher_claims_a_new_name,
);

async fn ci_publishes_once_with_an_id_token_and_the_record_verifies_offline(backend: Backend) {
    let Some(w) = OidcWorld::new(backend, &["oidc"]).await else { return };
    let trust = w.trust().await;
    assert_eq!(trust["type"], "github");
    assert_eq!(trust["claims"]["workflow_ref"]["file"], WORKFLOW);
    assert_eq!(trust["permissions"], json!(["createPackage"]));
    let listed = w.trusts(&w.alice, PKG).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], trust["id"]);

    let id_token = w.token(&json!({}));
    let token = w.registry_token(&id_token).await;
    let tgz = tarball(PKG, "1.1.0", "oidc");
    let resp = w.publish(&token, "1.1.0", &tgz).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);

    // Single use: the registry token, and the ID token (its jti).
    let tgz2 = tarball(PKG, "1.1.1", "oidc");
    let m =
        expect_error(w.publish(&token, "1.1.1", &tgz2).await, StatusCode::UNAUTHORIZED, "invalid_oidc_token")
            .await;
    assert!(m.contains("already used"), "{m}");
    expect_error(w.exchange(&id_token).await, StatusCode::UNAUTHORIZED, "oidc_token_replayed").await;
    // The registry token does nothing else: no dist-tag, no other package, no API.
    let tag = send(
        &w.app,
        Method::PUT,
        &format!("/-/package/{PKG}/dist-tags/beta"),
        &token,
        Some(&json!("1.0.0")),
        None,
    )
    .await;
    expect_error(tag, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);

    // The record: the tap over the trust, and the registry's statement with the ID token.
    let record: ApprovalRecord =
        w.app.get_json(&format!("/api/v1/packages/{PKG}/versions/1.1.0/approval")).await;
    let intent = record.gate_intent.clone().unwrap();
    assert_eq!(intent.change.action(), "trust-create");
    assert_eq!(intent.requested_by, "alice");
    let statement = OidcPublish::parse(record.oidc_publish.as_deref().unwrap()).unwrap();
    assert_eq!(statement.payload.id_token, id_token);
    assert_eq!(statement.payload.integrity, tapgate_shared::intent::sri_sha512(&tgz));
    assert_eq!(statement.payload.trust_id, trust["id"].as_str().unwrap());

    // Offline: the chain verifies with the keys the verifier trusts, and not when edited.
    let keyring = crate::verify_keyring::exported(&w.app, "/api/v1/users/alice/keys").await;
    let pinned: ServerKeys = w.app.get_json("/.well-known/tapgate-keys").await;
    let published = tapgate_shared::intent::sri_sha512(&tgz);
    let opts = |issuer_keys: Option<Vec<tapgate_shared::oidc::Jwk>>| tapgate::verify_oidc::OidcPins {
        audience: "npm:localhost".into(),
        issuer_keys,
    };
    let verify = |r: &ApprovalRecord, keys: &ServerKeys, pins: &tapgate::verify_oidc::OidcPins| {
        tapgate::verify::verify_record_oidc(r, PKG, "1.1.0", &tgz, &published, &keyring, keys, pins)
    };
    let v = verify(&record, &pinned, &opts(None));
    assert!(v.ok(), "{:#?}", v.checks);
    assert_eq!(v.approved_by, ["alice"]);
    let unpinned = v.checks.iter().find(|c| c.name.contains("issuer's key")).unwrap();
    assert!(unpinned.detail.contains("not pinned"), "{unpinned:?}");
    let jwk = statement.payload.jwk.clone();
    assert!(verify(&record, &pinned, &opts(Some(vec![jwk]))).ok(), "pinned issuer key");
    let other = serde_json::from_value(IssuerKey::new("key-1").jwk()).unwrap();
    assert!(!verify(&record, &pinned, &opts(Some(vec![other]))).ok(), "another pinned issuer key");
    assert!(!verify(&record, &ServerKeys::default(), &opts(None)).ok(), "no pinned registry key");
    let wrong_aud = tapgate::verify_oidc::OidcPins { audience: "npm:elsewhere".into(), issuer_keys: None };
    assert!(!verify(&record, &pinned, &wrong_aud).ok(), "another registry's audience");
    let mut edited = record.clone();
    if let Some(tapgate_shared::gate_intent::GateIntent {
        change: tapgate_shared::gate_intent::Change::TrustCreate { claims, .. },
        ..
    }) = edited.gate_intent.as_mut()
    {
        *claims = json!({"repository": "evil/x", "workflow_ref": {"file": "x.yml"}}).to_string();
    }
    assert!(!verify(&edited, &pinned, &opts(None)).ok(), "edited trust claims no longer match the tap");
    let mut swapped = record.clone();
    let text = record.oidc_publish.clone().unwrap();
    let (payload, sig) = text.split_once('.').unwrap();
    let mut p: Value = serde_json::from_slice(&base64_decode(payload)).unwrap();
    p["version"] = json!("1.1.0");
    p["integrity"] = json!(tapgate_shared::intent::sri_sha512(b"evil"));
    swapped.oidc_publish = Some(format!("{}.{sig}", base64_encode(&serde_json::to_vec(&p).unwrap())));
    assert!(!verify(&swapped, &pinned, &opts(None)).ok(), "an edited statement");
    let evil = tarball(PKG, "1.1.0", "evil");
    let v = tapgate::verify::verify_record_oidc(
        &record,
        PKG,
        "1.1.0",
        &evil,
        &published,
        &keyring,
        &pinned,
        &opts(None),
    );
    assert!(!v.ok(), "another tarball");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

async fn tokens_that_must_not_publish_are_refused_with_their_code(backend: Backend) {
    let Some(w) = OidcWorld::new(backend, &["oidc"]).await else { return };
    w.trust().await;
    let now = w.app.clock_now();
    let untrusted = TestIssuer::start().await;
    let (none, hs256) = forged_tokens(&w.issuer.current(), &w.claims());
    let impostor = IssuerKey::new("key-1");
    let cases: Vec<(&str, String, &str)> = vec![
        ("issuer not configured", untrusted.token(&untrusted.claims(now, "npm:localhost", REPO, WORKFLOW), &json!({})), "oidc_issuer_untrusted"),
        ("wrong audience", w.token(&json!({"aud": "npm:registry.npmjs.org"})), "oidc_wrong_audience"),
        ("audience list without ours", w.token(&json!({"aud": ["a", "b"]})), "oidc_wrong_audience"),
        ("another repository", w.token(&json!({"repository": "evil/left-pad", "workflow_ref": "evil/left-pad/.github/workflows/release.yml@refs/heads/main"})), "oidc_no_matching_trust"),
        ("another workflow", w.token(&json!({"workflow_ref": format!("{REPO}/.github/workflows/other.yml@refs/heads/main")})), "oidc_no_matching_trust"),
        ("expired", w.token(&json!({"exp": now - 61, "iat": now - 400, "nbf": now - 400})), "oidc_token_expired"),
        ("not yet valid", w.token(&json!({"nbf": now + 300, "exp": now + 600})), "oidc_token_not_yet_valid"),
        ("issued in the future", w.token(&json!({"iat": now + 300, "exp": now + 600})), "oidc_token_not_yet_valid"),
        ("alg none", none, "invalid_oidc_token"),
        ("HS256 with the JWK as secret", hs256, "invalid_oidc_token"),
        ("signed by a key the issuer does not publish", impostor.sign(&json!({}), &w.claims()), "invalid_oidc_token"),
        ("a kid the issuer does not publish", w.issuer.current().sign(&json!({"kid": "nope"}), &w.claims()), "invalid_oidc_token"),
        ("no jti", w.token(&json!({"jti": null})), "invalid_oidc_token"),
        ("not a JWT", "tg_api_nope".to_string(), "invalid_oidc_token"),
    ];
    for (what, token, code) in &cases {
        let m = expect_error(w.exchange(token).await, StatusCode::UNAUTHORIZED, code).await;
        assert!(!m.is_empty(), "{what}");
    }
    // A token for left-pad's trust, exchanged for another package (which has no trust).
    expect_error(
        w.exchange_for("right-pad", &w.token(&json!({}))).await,
        StatusCode::UNAUTHORIZED,
        "oidc_no_matching_trust",
    )
    .await;
    // A registry token for left-pad used on another package: refused as such.
    let token = w.registry_token(&w.token(&json!({}))).await;
    let tgz = tarball("right-pad", "1.0.0", "x");
    let resp = crate::publish_support::put(
        &w.app,
        &token,
        "right-pad",
        &crate::publish_support::publish_body("right-pad", "1.0.0", &tgz),
        None,
    )
    .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "oidc_no_matching_trust").await;
    // And an expired registry token.
    w.app.clock.advance(301);
    let tgz = tarball(PKG, "1.2.0", "late");
    expect_error(w.publish(&token, "1.2.0", &tgz).await, StatusCode::UNAUTHORIZED, "oidc_token_expired")
        .await;
    assert_eq!(w.versions().await, ["1.0.0"], "nothing published");
    let right: Value = w.app.get_json("/api/v1/packages/right-pad").await;
    assert_eq!(right["error"]["code"], "package_not_found");
}

async fn policies_without_oidc_and_critical_packages_refuse_it(backend: Backend) {
    let Some(w) = OidcWorld::new(backend, &["deploy-key"]).await else { return };
    w.trust().await;
    let m =
        expect_error(w.exchange(&w.token(&json!({}))).await, StatusCode::FORBIDDEN, "policy_violation").await;
    assert!(m.contains("\"oidc\""), "{m}");
    // A token obtained while allowed is refused once the policy no longer allows it.
    w.set_policy(&json!({"second_factor": "security-key", "ci": ["oidc"]})).await;
    let token = w.registry_token(&w.token(&json!({}))).await;
    w.set_policy(&json!({"second_factor": "security-key", "ci": []})).await;
    let tgz = tarball(PKG, "1.1.0", "x");
    expect_error(w.publish(&token, "1.1.0", &tgz).await, StatusCode::FORBIDDEN, "policy_violation").await;
    // A trust that only stages: its token cannot publish.
    w.set_policy(&json!({"second_factor": "security-key", "ci": ["oidc"]})).await;
    let stager = json!([{ "type": "github", "claims": { "repository": "acme/stager", "workflow_ref": { "file": WORKFLOW } },
                          "permissions": ["createStagedPackage"] }]);
    w.trust_as(&w.alice, PKG, &stager).await;
    let claims = w.issuer.claims(w.app.clock_now(), "npm:localhost", "acme/stager", WORKFLOW);
    let resp = w.exchange(&w.issuer.token(&claims, &json!({}))).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["permissions"], json!(["createStagedPackage"]));
    let m = expect_error(
        w.publish(body["token"].as_str().unwrap(), "1.1.0", &tgz).await,
        StatusCode::FORBIDDEN,
        "policy_violation",
    )
    .await;
    assert!(m.contains("stage"), "{m}");
    // A critical package keeps its releases to people, whatever its "ci" says.
    w.set_policy(&json!({"second_factor": "security-key", "ci": ["oidc"], "all_maintainers_enrolled": true}))
        .await;
    let m =
        expect_error(w.exchange(&w.token(&json!({}))).await, StatusCode::FORBIDDEN, "policy_violation").await;
    assert!(m.contains("critical"), "{m}");
    assert_eq!(w.versions().await, ["1.0.0"]);
}

async fn rotated_issuer_keys_are_fetched_once_and_made_up_kids_are_rate_limited(backend: Backend) {
    let Some(w) =
        OidcWorld::with(backend, &["oidc"], |c| c.oidc.min_refetch = std::time::Duration::from_millis(1500))
            .await
    else {
        return;
    };
    w.trust().await;
    let token = w.registry_token(&w.token(&json!({}))).await;
    assert!(token.starts_with("tg_oidc_"));
    assert_eq!(w.issuer.fetches(), 1);
    w.registry_token(&w.token(&json!({}))).await;
    assert_eq!(w.issuer.fetches(), 1, "cached");
    // Made-up key ids right after a fetch: refused without asking the issuer again.
    for _ in 0..3 {
        let t = w.issuer.current().sign(&json!({"kid": "made-up"}), &w.claims());
        expect_error(w.exchange(&t).await, StatusCode::UNAUTHORIZED, "invalid_oidc_token").await;
    }
    assert_eq!(w.issuer.fetches(), 1, "rate-limited");
    // The issuer rotates; once the limit has passed, the new kid is fetched once and works.
    w.issuer.rotate("key-2");
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    w.registry_token(&w.token(&json!({}))).await;
    assert_eq!(w.issuer.fetches(), 2);
    w.registry_token(&w.token(&json!({}))).await;
    assert_eq!(w.issuer.fetches(), 2);
}

async fn an_id_token_is_exchanged_once_across_instances(backend: Backend) {
    let Some(w) = OidcWorld::new(backend, &["oidc"]).await else { return };
    w.trust().await;
    let id_token = w.token(&json!({}));
    let other = w.app.another_instance().await;
    w.registry_token(&id_token).await;
    let path = format!("/-/npm/v1/oidc/token/exchange/package/{PKG}");
    let resp = other.http.post(other.url(&path)).bearer_auth(&id_token).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "oidc_token_replayed").await;
    // Racing exchanges of one fresh token: exactly one wins.
    let fresh = w.token(&json!({}));
    let (a, b) =
        tokio::join!(w.exchange(&fresh), other.http.post(other.url(&path)).bearer_auth(&fresh).send());
    let statuses = [a.status(), b.unwrap().status()];
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
}

async fn refused_tokens_count_towards_the_lock(backend: Backend) {
    let Some(w) = OidcWorld::with(backend, &["oidc"], |c| {
        // Anonymous failures count within a per-address limit (2 an hour by default), so that
        // one address cannot lock a package; raised here so that five from loopback lock it.
        c.rate_limits.lock_failures = Some(tapgate_server::limits::Limit::new(10, 3600));
    })
    .await
    else {
        return;
    };
    w.trust().await;
    for _ in 0..5 {
        let bad = w.token(&json!({"aud": "npm:elsewhere"}));
        let resp = w.exchange(&bad).await;
        assert_ne!(resp.status(), StatusCode::CREATED);
    }
    let lock: Value = w.app.get_json(&format!("/api/v1/packages/{PKG}/lock")).await;
    assert!(lock["lock"]["lock_id"].as_str().is_some_and(|id| id.starts_with("lck_")), "{lock}");
    // Locked: even a good token publishes nothing.
    let resp = w.exchange(&w.token(&json!({}))).await;
    expect_error(resp, StatusCode::LOCKED, "package_locked").await;
    assert_eq!(w.versions().await, ["1.0.0"]);
    let audit: Value = w.app.get_json(&format!("/api/v1/packages/{PKG}/audit")).await;
    let text = audit.to_string();
    assert!(text.contains("oidc_token") && text.contains("package.locked"), "{text}");
}

async fn trusts_need_a_tap_the_required_claims_and_removal_kills_their_tokens(backend: Backend) {
    let Some(w) = OidcWorld::new(backend, &["oidc"]).await else { return };
    let path = format!("/-/package/{PKG}/trust");
    // A trust that would let any repository publish is refused: the operator requires both.
    let loose = json!([{ "type": "github", "claims": { "repository": REPO } }]);
    let resp = send(&w.app, Method::POST, &path, &w.alice.token, Some(&loose), None).await;
    let m = expect_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(m.contains("workflow_ref"), "{m}");
    // Without a tap: nothing but the demand for one.
    let body = OidcWorld::github_trust(REPO, WORKFLOW);
    let resp = send(&w.app, Method::POST, &path, &w.alice.token, Some(&body), None).await;
    crate::gate_support::tap_required(resp).await;
    assert!(w.trusts(&w.alice, PKG).await.is_empty());
    // A non-maintainer cannot create one, nor list them.
    let bob = crate::publish_support::maintainer(&w.app, "bob").await;
    let resp = send(&w.app, Method::POST, &path, &bob.token, Some(&body), None).await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = send(&w.app, Method::GET, &path, &bob.token, None, None).await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    // An issuer the operator does not trust.
    let gitlab = json!([{ "type": "gitlab", "claims": { "project_path": "g/p", "ci_config_ref_uri": { "file": ".gitlab-ci.yml" } } }]);
    let resp = send(&w.app, Method::POST, &path, &w.alice.token, Some(&gitlab), None).await;
    let m = expect_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(m.contains("gitlab"), "{m}");

    let trust = w.trust().await;
    let id = trust["id"].as_str().unwrap();
    let token = w.registry_token(&w.token(&json!({}))).await;
    // Removal: the token suffices (it takes power away), and unspent tokens die with it.
    let resp = send(&w.app, Method::DELETE, &format!("{path}/{id}"), &w.alice.token, None, None).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    assert!(w.trusts(&w.alice, PKG).await.is_empty());
    let tgz = tarball(PKG, "1.1.0", "x");
    expect_error(w.publish(&token, "1.1.0", &tgz).await, StatusCode::UNAUTHORIZED, "oidc_no_matching_trust")
        .await;
    expect_error(w.exchange(&w.token(&json!({}))).await, StatusCode::UNAUTHORIZED, "oidc_no_matching_trust")
        .await;
    assert_eq!(w.versions().await, ["1.0.0"]);
    // The same trust again (a new id: the removed one stays removed).
    let again = w.trust().await;
    assert_ne!(again["id"], trust["id"]);
    let audit: Value = w.app.get_json(&format!("/api/v1/packages/{PKG}/audit")).await;
    let text = audit.to_string();
    assert!(text.contains("trust-create") && text.contains("trust-remove"), "{text}");
}

async fn a_pending_trusted_publisher_claims_a_new_name(backend: Backend) {
    let Some(w) = OidcWorld::with(backend, &["oidc", "stage"], |c| {
        c.default_ci = vec![tapgate_shared::api::CiMethod::Oidc];
    })
    .await
    else {
        return;
    };
    let name = "brand-new";
    let trust = w.trust_as(&w.alice, name, &OidcWorld::github_trust(REPO, WORKFLOW)).await;
    assert_eq!(trust["package"], name);
    // bob cannot see or remove alice's pending trust.
    let bob = crate::publish_support::maintainer(&w.app, "bob").await;
    assert!(w.trusts(&bob, name).await.is_empty());
    let id = trust["id"].as_str().unwrap();
    let resp =
        send(&w.app, Method::DELETE, &format!("/-/package/{name}/trust/{id}"), &bob.token, None, None).await;
    expect_error(resp, StatusCode::NOT_FOUND, "package_not_found").await;
    let token = {
        let resp = w.exchange_for(name, &w.token(&json!({}))).await;
        let text = resp.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
        body["token"].as_str().unwrap_or_else(|| panic!("{text}")).to_string()
    };
    let tgz = tarball(name, "0.1.0", "x");
    let resp = crate::publish_support::put(
        &w.app,
        &token,
        name,
        &crate::publish_support::publish_body(name, "0.1.0", &tgz),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    let info: Value = w.app.get_json(&format!("/api/v1/packages/{name}")).await;
    assert_eq!(info["maintainers"], json!(["alice"]), "{info}");
}

//! Critical packages: only attested keys approve, every tap verifies its user where the policy
//! says so, and every maintainer holds a compliant key. Each refusal has its code and changes
//! nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use webauthn_rs_proto::UserVerificationPolicy;

use crate::critical_support::*;
use crate::gate_support::{admin, send};
use crate::keys_support::SoftKey;
use crate::publish_support::{maintainer, publish_body, put, tarball};
use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(
    attested_keys_approve_a_critical_package,
    a_key_whose_ca_is_not_trusted_is_refused,
    each_tap_must_verify_its_user_where_the_policy_says_so,
);

const CRITICAL: &str = "crit-pkg";

async fn attested_keys_approve_a_critical_package(backend: Backend) {
    let (alice_key, carol_key, bob_later) = (SoftKey::new(), SoftKey::new(), SoftKey::new());
    let Some(app) = app_trusting(backend, &[&alice_key, &carol_key, &bob_later]).await else { return };
    let alice = person_with(&app, "alice", alice_key).await;
    let carol = person_with(&app, "carol", carol_key).await;
    // bob's key is genuine, but its maker's CA is not one the registry trusts.
    let bob = maintainer(&app, "bob").await;
    package_with(&app, CRITICAL, &alice, &["bob", "carol"]).await;
    let keys: Value = app.get_json("/api/v1/users/alice/keys").await;
    assert_eq!(keys["keys"][0]["attested"], true);
    let keys: Value = app.get_json("/api/v1/users/bob/keys").await;
    assert_eq!(keys["keys"][0]["attested"], false);

    let root = admin(&app, "root").await;
    let policy = json!({"second_factor": "security-key", "attested_keys": true, "approvals": 2,
        "all_maintainers_enrolled": true});
    raise_policy(&app, &root, CRITICAL, policy.clone()).await;
    assert!(stored_policy(&app, CRITICAL).await.starts_with(r#"{"v":2,"#), "stored in format 2");
    let info: Value = app.get_json(&format!("/api/v1/packages/{CRITICAL}")).await;
    assert_eq!(info["policy"], policy);
    let listed = info["noncompliant_maintainers"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{info}");
    assert_eq!(listed[0]["user"], "bob");
    assert!(listed[0]["needs"].as_str().unwrap().contains("attested hardware security key"), "{info}");

    // bob cannot ask for a change until he complies; nothing is recorded.
    let tgz = tarball(CRITICAL, "1.1.0", "two");
    let resp = put(&app, &bob.token, CRITICAL, &publish_body(CRITICAL, "1.1.0", &tgz), None).await;
    let msg = expect_error(resp, StatusCode::FORBIDDEN, "policy_violation").await;
    assert!(msg.contains(r#"your key "key" is not attested"#) && msg.contains("tapgate key add"), "{msg}");
    let pending: Value = app.get_json_as("/api/v1/approvals?pending=true", &alice.token).await;
    assert_eq!(pending["approvals"], json!([]));

    // alice asks; only the attested keys (alice's and carol's) may tap.
    let info = ask_publish(&app, &alice, CRITICAL, "1.1.0", &tgz).await;
    assert_eq!((info.approvals, info.required), (0, 2));
    assert_eq!(info.public_key.as_ref().unwrap().allow_credentials.len(), 2);
    // bob's unattested key answering anyway is refused with a sentence, and counts for nothing.
    let mut options = info.public_key.clone().unwrap();
    let bob_id = app.store().user_by_name("bob").await.unwrap().unwrap().id;
    options.allow_credentials[0].id =
        app.store().keys_of_user(&bob_id).await.unwrap()[0].credential_id.clone();
    let cred = tapgate::ceremony::assert(&bob.key.choice, &options, &app.origin).await.unwrap();
    let resp = crate::publish_support::finish_approval(&app, &info.id, &cred).await;
    let msg = expect_error(resp, StatusCode::FORBIDDEN, "policy_violation").await;
    assert!(
        msg.contains(
            r#"this package requires an attested hardware security key; your key "key" is not attested"#
        ),
        "{msg}"
    );
    assert_eq!(approval(&app, &info.id).await.approvals, 0);

    tap_pending(&app, &info, &alice.key, 1, 2).await;
    let ticket = tap_approves(&app, &info, &carol.key).await;
    let resp = publish_with(&app, &alice, CRITICAL, "1.1.0", &tgz, &ticket.ticket).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    let record: Value = app.get_json(&format!("/api/v1/packages/{CRITICAL}/versions/1.1.0/approval")).await;
    assert_eq!(record["policy"], policy, "the record names the policy in force");
    assert_eq!(record["required_approvals"], 2);
    let signers: Vec<&str> =
        record["signatures"].as_array().unwrap().iter().map(|s| s["approved_by"].as_str().unwrap()).collect();
    assert_eq!(signers, ["alice", "carol"]);

    // Adding a maintainer without a compliant key is refused before any tap, saying what to do.
    let dave = maintainer(&app, "dave").await;
    let resp = send(
        &app,
        Method::PUT,
        &format!("/api/v1/packages/{CRITICAL}/maintainers/dave"),
        &alice.token,
        None,
        None,
    )
    .await;
    let msg = expect_error(resp, StatusCode::FORBIDDEN, "policy_violation").await;
    assert!(msg.contains("dave must enroll an attested hardware security key"), "{msg}");
    let owners: Value = app.get_json(&format!("/api/v1/packages/{CRITICAL}/maintainers")).await;
    assert_eq!(owners["maintainers"], json!(["alice", "bob", "carol"]));
    drop(dave);

    // Once bob enrolls an attested key he is listed no more, and may ask for changes.
    add_key(&app, &bob, &bob_later, "yubikey").await;
    let info: Value = app.get_json(&format!("/api/v1/packages/{CRITICAL}")).await;
    assert!(info.get("noncompliant_maintainers").is_none(), "{info}");
    let tgz = tarball(CRITICAL, "1.2.0", "three");
    let info = ask_publish(&app, &bob, CRITICAL, "1.2.0", &tgz).await;
    assert_eq!(
        info.public_key.as_ref().unwrap().allow_credentials.len(),
        3,
        "alice's, carol's, bob's new key"
    );
}

async fn a_key_whose_ca_is_not_trusted_is_refused(backend: Backend) {
    // The very key that publishes a critical package where its CA is trusted.
    let Some(app) = TestApp::new(backend).await else { return };
    let alice = maintainer(&app, "alice").await;
    package_with(&app, CRITICAL, &alice, &[]).await;
    let root = admin(&app, "root").await;
    raise_policy(&app, &root, CRITICAL, json!({"second_factor": "security-key", "attested_keys": true}))
        .await;
    let before = stored_policy(&app, CRITICAL).await;

    let tgz = tarball(CRITICAL, "1.1.0", "two");
    let resp = put(&app, &alice.token, CRITICAL, &publish_body(CRITICAL, "1.1.0", &tgz), None).await;
    let msg = expect_error(resp, StatusCode::FORBIDDEN, "policy_violation").await;
    assert!(msg.contains("needs your approval with an attested hardware security key"), "{msg}");
    assert!(msg.contains(r#"your key "key" is not attested"#), "{msg}");
    // Nothing changed, nothing waits.
    assert_eq!(versions(&app, CRITICAL).await, ["1.0.0"]);
    let pending: Value = app.get_json_as("/api/v1/approvals?pending=true", &alice.token).await;
    assert_eq!(pending["approvals"], json!([]));
    assert_eq!(stored_policy(&app, CRITICAL).await, before);
    // Other changes too: every intent of the gate follows the policy.
    let resp = send(
        &app,
        Method::PUT,
        &format!("/-/package/{CRITICAL}/dist-tags/beta"),
        &alice.token,
        Some(&json!("1.0.0")),
        None,
    )
    .await;
    expect_error(resp, StatusCode::FORBIDDEN, "policy_violation").await;
    let tags: Value = app.get_json(&format!("/-/package/{CRITICAL}/dist-tags")).await;
    assert_eq!(tags, json!({"latest": "1.0.0"}));
}

async fn each_tap_must_verify_its_user_where_the_policy_says_so(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let alice = maintainer(&app, "alice").await;
    package_with(&app, CRITICAL, &alice, &[]).await;
    let root = admin(&app, "root").await;
    raise_policy(&app, &root, CRITICAL, json!({"second_factor": "security-key", "user_verification": true}))
        .await;

    let tgz = tarball(CRITICAL, "1.1.0", "two");
    let info = ask_publish(&app, &alice, CRITICAL, "1.1.0", &tgz).await;
    let options = info.public_key.clone().unwrap();
    assert!(
        matches!(options.user_verification, UserVerificationPolicy::Required),
        "keys are asked for their PIN"
    );
    // A tap without user verification (the key was told to skip it): refused by the policy.
    let mut lax = options.clone();
    lax.user_verification = UserVerificationPolicy::Discouraged_DO_NOT_USE;
    let cred = tapgate::ceremony::assert(&alice.key.choice, &lax, &app.origin).await.unwrap();
    assert_eq!(cred.response.authenticator_data[32] & 0x04, 0, "the UV flag is clear");
    let resp = crate::publish_support::finish_approval(&app, &info.id, &cred).await;
    let msg = expect_error(resp, StatusCode::FORBIDDEN, "policy_violation").await;
    assert!(msg.contains("requires user verification") && msg.contains("did not verify you"), "{msg}");
    let now = approval(&app, &info.id).await;
    assert_eq!((now.status.as_str(), now.approvals), ("pending", 0), "the tap counted for nothing");
    let resp = publish_with(&app, &alice, CRITICAL, "1.1.0", &tgz, "tg_tkt_bogus").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(versions(&app, CRITICAL).await, ["1.0.0"]);

    // The same key verifying its user approves.
    let ticket = tap_approves(&app, &info, &alice.key).await;
    let resp = publish_with(&app, &alice, CRITICAL, "1.1.0", &tgz, &ticket.ticket).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let record: Value = app.get_json(&format!("/api/v1/packages/{CRITICAL}/versions/1.1.0/approval")).await;
    assert_eq!(record["signatures"][0]["user_verified"], true);
    assert_eq!(record["policy"]["user_verification"], true);

    // Setting a policy that makes no sense is refused and changes nothing.
    let before = stored_policy(&app, CRITICAL).await;
    for (bad, says) in [
        (json!({"second_factor": "none", "approvals": 2}), "set second_factor to security-key"),
        (json!({"second_factor": "security-key", "approvals": 0}), "approvals must be between 1"),
        (
            json!({"second_factor": "security-key", "approvals": 2, "approvals_when_scripts_change": 2}),
            "must be more than",
        ),
        (json!({"second_factor": "security-key", "approvals": 2}), "could never be given"),
    ] {
        let (resp_status, text) = {
            let resp = send(
                &app,
                Method::PUT,
                &format!("/api/v1/packages/{CRITICAL}/policy"),
                &root.token,
                Some(&bad),
                None,
            )
            .await;
            (resp.status(), resp.text().await.unwrap())
        };
        assert_eq!(resp_status, StatusCode::BAD_REQUEST, "{bad}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{bad}: {text}");
    }
    let resp = send(
        &app,
        Method::PUT,
        &format!("/api/v1/packages/{CRITICAL}/policy"),
        &root.token,
        Some(&json!({"second_factor": "security-key", "quorum": 3})),
        None,
    )
    .await;
    expect_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_json").await;
    assert_eq!(stored_policy(&app, CRITICAL).await, before);
}

//! N-of-M approvals: several distinct maintainers tap the same intent; one person's two keys
//! count once; any maintainer can reject; lowering a critical policy needs the administrator
//! and the maintainers; the commit re-checks that the approvers still satisfy the policy.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_shared::api::{ApprovalInfo, FinishApproval, RejectChallenge};
use tapgate_shared::intent::sri_sha512;

use crate::critical_support::*;
use crate::gate_support::{admin, send};
use crate::keys_support::SoftKey;
use crate::publish_support::{Maintainer, finish_approval, maintainer, publish_body, put, tarball};
use crate::support::{Backend, TestApp, backend_tests, expect_error};
use crate::verify_keyring::exported;

backend_tests!(
    two_of_three_maintainers_approve_a_release,
    a_maintainer_rejects_and_the_change_is_void,
    lowering_a_critical_policy_needs_the_admin_and_n_maintainers,
    the_commit_rechecks_that_the_approvers_still_satisfy_the_policy,
    more_approvals_when_install_scripts_change,
    pending_approvals_are_listed_for_their_maintainers,
    approvals_wait_as_long_as_the_operator_configured,
);

const PKG: &str = "duo";

/// alice, bob and carol maintain `duo` (1.0.0 published), whose policy needs 2 approvals.
async fn two_of_three(app: &TestApp) -> (Vec<Maintainer>, Maintainer) {
    let ms = maintainers(app, PKG, &["alice", "bob", "carol"]).await;
    let root = admin(app, "root").await;
    raise_policy(app, &root, PKG, json!({"second_factor": "security-key", "approvals": 2})).await;
    (ms, root)
}

async fn two_of_three_maintainers_approve_a_release(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let (ms, _root) = two_of_three(&app).await;
    let (alice, bob, carol) = (&ms[0], &ms[1], &ms[2]);
    let bob_backup = SoftKey::new();
    add_key(&app, bob, &bob_backup, "backup").await;

    let tgz = tarball(PKG, "1.1.0", "two");
    let info = ask_publish(&app, alice, PKG, "1.1.0", &tgz).await;
    assert_eq!((info.approvals, info.required), (0, 2));
    assert_eq!(info.public_key.as_ref().unwrap().allow_credentials.len(), 4, "every maintainer's keys");

    // One tap is not enough; bob's second key is still bob.
    tap_pending(&app, &info, &bob.key, 1, 2).await;
    let resp = publish_with(&app, alice, PKG, "1.1.0", &tgz, "tg_tkt_not_yet").await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    tap_pending(&app, &info, &bob_backup, 1, 2).await;
    let resp = tap(&app, &info, &bob.key).await;
    expect_error(resp, StatusCode::CONFLICT, "conflict").await;
    let now = approval(&app, &info.id).await;
    assert_eq!((now.status.as_str(), now.approvals, now.required), ("pending", 1, 2));
    assert_eq!(now.approved_by, ["bob"]);
    assert_eq!(versions(&app, PKG).await, ["1.0.0"], "nothing published yet");

    // A second person's tap yields the ticket.
    let ticket = tap_approves(&app, &info, &carol.key).await;
    let now = approval(&app, &info.id).await;
    assert_eq!((now.status.as_str(), now.approvals), ("approved", 2));
    assert_eq!(now.approved_by, ["bob", "carol"]);
    let resp = publish_with(&app, alice, PKG, "1.1.0", &tgz, &ticket.ticket).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());

    // The record holds every tap and the policy in force; a verifier counts distinct trusted
    // people against it.
    let record: tapgate_shared::api::ApprovalRecord =
        app.get_json(&format!("/api/v1/packages/{PKG}/versions/1.1.0/approval")).await;
    let signers: Vec<&str> = record.signatures.iter().map(|s| s.approved_by.as_str()).collect();
    assert_eq!(signers, ["bob", "bob", "carol"]);
    assert_eq!(record.policy.as_ref().map(|p| p.approvals), Some(2));
    let all = exported(&app, &format!("/api/v1/packages/{PKG}/keys")).await;
    let v = tapgate::verify::verify_record(&record, PKG, "1.1.0", &tgz, &sri_sha512(&tgz), &all);
    assert!(v.ok(), "{v:#?}");
    assert_eq!(v.approved_by, ["bob", "carol"]);
    let carols_only = exported(&app, "/api/v1/users/carol/keys").await;
    let v = tapgate::verify::verify_record(&record, PKG, "1.1.0", &tgz, &sri_sha512(&tgz), &carols_only);
    assert!(!v.ok());
    let count =
        v.checks.iter().find(|c| c.name == "enough distinct people approved with keys you trust").unwrap();
    assert!(!count.ok);
    assert_eq!(
        count.detail,
        "the policy in force requires 2 approvals by distinct maintainers, but only 1 signed with keys you trust (carol)"
    );
}

/// Begins a rejection and checks the key would sign a rejection, never an approval.
async fn begin_reject(app: &TestApp, info: &ApprovalInfo) -> RejectChallenge {
    let resp = app.http.post(app.url(&format!("/api/v1/approvals/{}/reject", info.id))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let begin: RejectChallenge = resp.json().await.unwrap();
    let nonce: [u8; 32] = URL_SAFE_NO_PAD.decode(&begin.nonce).unwrap().try_into().unwrap();
    assert_eq!(begin.public_key.challenge.as_ref() as &[u8], begin.intent.reject_challenge(&nonce));
    assert_ne!(begin.intent.reject_challenge(&nonce), begin.intent.challenge(&nonce));
    begin
}

async fn finish_reject(
    app: &TestApp,
    id: &str,
    ceremony: &str,
    cred: &webauthn_rs_proto::PublicKeyCredential,
) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v1/approvals/{id}/reject/{ceremony}")))
        .json(&FinishApproval { credential: cred.clone() })
        .send()
        .await
        .unwrap()
}

async fn a_maintainer_rejects_and_the_change_is_void(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let (ms, _root) = two_of_three(&app).await;
    let (alice, bob, carol) = (&ms[0], &ms[1], &ms[2]);
    let dave = maintainer(&app, "dave").await;
    let tgz = tarball(PKG, "1.1.0", "two");
    let resp = put(&app, &alice.token, PKG, &publish_body(PKG, "1.1.0", &tgz), None).await;
    let body: Value = resp.json().await.unwrap();
    let info: ApprovalInfo = serde_json::from_value(body["approval"].clone()).unwrap();
    let done_url = body["doneUrl"].as_str().unwrap().replace(&app.origin, &app.base);
    tap_pending(&app, &info, &alice.key, 1, 2).await;

    // A rejection tap is no approval: presented as one, it does not verify.
    let begin = begin_reject(&app, &info).await;
    let carols = tapgate::ceremony::assert(&carol.key.choice, &begin.public_key, &app.origin).await.unwrap();
    let resp = finish_approval(&app, &info.id, &carols).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "webauthn_failed").await;
    assert_eq!(approval(&app, &info.id).await.approvals, 1);

    // Someone who maintains nothing here cannot reject it.
    let other = begin_reject(&app, &info).await;
    let mut options = other.public_key.clone();
    let dave_id = app.store().user_by_name("dave").await.unwrap().unwrap().id;
    options.allow_credentials[0].id =
        app.store().keys_of_user(&dave_id).await.unwrap()[0].credential_id.clone();
    let daves = tapgate::ceremony::assert(&dave.key.choice, &options, &app.origin).await.unwrap();
    let resp = finish_reject(&app, &info.id, &other.ceremony, &daves).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "webauthn_failed").await;
    assert_eq!(approval(&app, &info.id).await.status, "pending");

    // carol rejects: the approval is void for everyone.
    let resp = finish_reject(&app, &info.id, &begin.ceremony, &carols).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let rejected: ApprovalInfo = resp.json().await.unwrap();
    assert_eq!((rejected.status.as_str(), rejected.rejected_by.as_deref()), ("rejected", Some("carol")));
    let resp = tap(&app, &info, &bob.key).await;
    expect_error(resp, StatusCode::GONE, "approval_expired").await;
    let resp = app.http.get(&done_url).send().await.unwrap();
    expect_error(resp, StatusCode::GONE, "approval_expired").await;
    let now = approval(&app, &info.id).await;
    assert_eq!((now.status.as_str(), now.approvals), ("rejected", 1));
    assert_eq!(versions(&app, PKG).await, ["1.0.0"]);
    let again =
        app.http.post(app.url(&format!("/api/v1/approvals/{}/reject", info.id))).send().await.unwrap();
    expect_error(again, StatusCode::GONE, "approval_expired").await;

    // Even an approved change whose ticket is out is void once rejected.
    let tgz = tarball(PKG, "1.2.0", "three");
    let info = ask_publish(&app, alice, PKG, "1.2.0", &tgz).await;
    tap_pending(&app, &info, &alice.key, 1, 2).await;
    let ticket = tap_approves(&app, &info, &bob.key).await;
    let begin = begin_reject(&app, &info).await;
    let cred = tapgate::ceremony::assert(&carol.key.choice, &begin.public_key, &app.origin).await.unwrap();
    assert_eq!(finish_reject(&app, &info.id, &begin.ceremony, &cred).await.status(), StatusCode::OK);
    let resp = publish_with(&app, alice, PKG, "1.2.0", &tgz, &ticket.ticket).await;
    let msg = expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    assert!(msg.contains("rejected"), "{msg}");
    assert_eq!(versions(&app, PKG).await, ["1.0.0"]);
}

async fn lowering_a_critical_policy_needs_the_admin_and_n_maintainers(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let (ms, root) = two_of_three(&app).await;
    let (alice, bob, carol) = (&ms[0], &ms[1], &ms[2]);
    let critical = stored_policy(&app, PKG).await;
    let path = format!("/api/v1/packages/{PKG}/policy");
    let lower = json!({"second_factor": "security-key"});

    // The administrator's token asks; the gate wants the administrator and two maintainers.
    let info = ask(&app, Method::PUT, &path, &root.token, Some(&lower)).await;
    assert_eq!((info.action.as_str(), info.required), ("policy-set", 3));
    assert!(info.description.starts_with("Change the policy of duo"), "{}", info.description);
    // Every maintainer approving without the administrator's tap is not enough.
    tap_pending(&app, &info, &alice.key, 1, 3).await;
    tap_pending(&app, &info, &bob.key, 2, 3).await;
    tap_pending(&app, &info, &carol.key, 2, 3).await;
    assert_eq!(approval(&app, &info.id).await.status, "pending");
    assert_eq!(stored_policy(&app, PKG).await, critical);

    // Nor is the administrator with a single maintainer.
    let info = ask(&app, Method::PUT, &path, &root.token, Some(&lower)).await;
    tap_pending(&app, &info, &root.key, 1, 3).await;
    tap_pending(&app, &info, &alice.key, 2, 3).await;
    let resp = send(&app, Method::PUT, &path, &root.token, Some(&lower), Some("tg_tkt_not_yet")).await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    assert_eq!(stored_policy(&app, PKG).await, critical);
    // The administrator and two maintainers: lowered.
    let ticket = tap_approves(&app, &info, &bob.key).await;
    let resp = send(&app, Method::PUT, &path, &root.token, Some(&lower), Some(&ticket.ticket)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    assert_eq!(stored_policy(&app, PKG).await, r#"{"v":1,"second_factor":"security-key"}"#);
}

async fn the_commit_rechecks_that_the_approvers_still_satisfy_the_policy(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let alice = maintainer(&app, "alice").await;
    let ms = [maintainer(&app, "bob").await, maintainer(&app, "carol").await];
    package_with(&app, PKG, &alice, &["bob", "carol"]).await;
    let root = admin(&app, "root").await;

    // An approval given under the plain policy does not commit under a stricter one.
    let tgz = tarball(PKG, "1.1.0", "two");
    let info = ask_publish(&app, &alice, PKG, "1.1.0", &tgz).await;
    let ticket = tap_approves(&app, &info, &alice.key).await;
    raise_policy(&app, &root, PKG, json!({"second_factor": "security-key", "approvals": 2})).await;
    let resp = publish_with(&app, &alice, PKG, "1.1.0", &tgz, &ticket.ticket).await;
    let msg = expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    assert!(msg.contains("policy of duo changed"), "{msg}");
    assert_eq!(versions(&app, PKG).await, ["1.0.0"]);

    // alice and bob approve 1.1.0; then bob stops being a maintainer (alice and carol approve
    // that): the ticket no longer stands for two maintainers' approval.
    let info = ask_publish(&app, &alice, PKG, "1.1.0", &tgz).await;
    tap_pending(&app, &info, &alice.key, 1, 2).await;
    let ticket = tap_approves(&app, &info, &ms[0].key).await;
    let path = format!("/api/v1/packages/{PKG}/maintainers/bob");
    let removal = ask(&app, Method::DELETE, &path, &alice.token, None).await;
    assert_eq!(removal.required, 2);
    tap_pending(&app, &removal, &alice.key, 1, 2).await;
    let removal_ticket = tap_approves(&app, &removal, &ms[1].key).await;
    let resp = send(&app, Method::DELETE, &path, &alice.token, None, Some(&removal_ticket.ticket)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    let resp = publish_with(&app, &alice, PKG, "1.1.0", &tgz, &ticket.ticket).await;
    let msg = expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    assert!(msg.contains("no longer satisfy the policy"), "{msg}");
    assert_eq!(versions(&app, PKG).await, ["1.0.0"]);

    // With two maintainers left, neither can be removed: two approvals must stay possible.
    let resp = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/packages/{PKG}/maintainers/carol"),
        &alice.token,
        None,
        None,
    )
    .await;
    let msg = expect_error(resp, StatusCode::CONFLICT, "conflict").await;
    assert!(msg.contains("needs 2 maintainers"), "{msg}");
    let owners: Value = app.get_json(&format!("/api/v1/packages/{PKG}/maintainers")).await;
    assert_eq!(owners["maintainers"], json!(["alice", "carol"]));
}

/// `alice` alone approves and publishes `version` with `scripts`.
async fn publish_alone(app: &TestApp, alice: &Maintainer, version: &str, scripts: Value) {
    let tgz = tarball_with_scripts(PKG, version, scripts);
    let info = ask_publish(app, alice, PKG, version, &tgz).await;
    assert_eq!(info.required, 1, "{version}");
    let ticket = tap_approves(app, &info, &alice.key).await;
    let resp = publish_with(app, alice, PKG, version, &tgz, &ticket.ticket).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{version}");
}

async fn more_approvals_when_install_scripts_change(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let ms = maintainers(&app, PKG, &["alice", "bob"]).await;
    let (alice, bob) = (&ms[0], &ms[1]);
    let root = admin(&app, "root").await;
    raise_policy(
        &app,
        &root,
        PKG,
        json!({"second_factor": "security-key", "approvals_when_scripts_change": 2}),
    )
    .await;

    publish_alone(&app, alice, "1.1.0", json!({"test": "node test.js", "build": "tsc"})).await;

    // A postinstall appears: two maintainers must approve.
    let evil = json!({"test": "node test.js", "postinstall": "node setup.js"});
    let tgz = tarball_with_scripts(PKG, "1.2.0", evil.clone());
    let info = ask_publish(&app, alice, PKG, "1.2.0", &tgz).await;
    assert_eq!(info.required, 2);
    tap_pending(&app, &info, &alice.key, 1, 2).await;
    let ticket = tap_approves(&app, &info, &bob.key).await;
    assert_eq!(
        publish_with(&app, alice, PKG, "1.2.0", &tgz, &ticket.ticket).await.status(),
        StatusCode::CREATED
    );
    // Unchanged since the previous version: the base count; changed again: two.
    publish_alone(&app, alice, "1.3.0", evil).await;
    let changed = tarball_with_scripts(PKG, "1.4.0", json!({"postinstall": "node other.js"}));
    assert_eq!(ask_publish(&app, alice, PKG, "1.4.0", &changed).await.required, 2);
    let prepare = tarball_with_scripts(PKG, "1.4.0", json!({"postinstall": "node setup.js", "prepare": "x"}));
    assert_eq!(ask_publish(&app, alice, PKG, "1.4.0", &prepare).await.required, 2);
    // Approvals asked for before the tarball is known assume the scripts change.
    let resp = app
        .http
        .post(app.url("/api/v1/approvals"))
        .bearer_auth(&alice.token)
        .json(&json!({"package": PKG, "version": "1.4.0", "integrity": sri_sha512(&changed)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.json::<ApprovalInfo>().await.unwrap().required, 2);
}

async fn pending_approvals_are_listed_for_their_maintainers(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let (ms, _root) = two_of_three(&app).await;
    let (alice, bob) = (&ms[0], &ms[1]);
    let dave = maintainer(&app, "dave").await;
    let tgz = tarball(PKG, "1.1.0", "two");
    let info = ask_publish(&app, alice, PKG, "1.1.0", &tgz).await;
    tap_pending(&app, &info, &alice.key, 1, 2).await;

    let listed: Value = app.get_json_as("/api/v1/approvals?pending=true", &bob.token).await;
    let list = listed["approvals"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{listed}");
    assert_eq!(list[0]["id"], info.id.as_str());
    assert_eq!((list[0]["approvals"].as_u64(), list[0]["required"].as_u64()), (Some(1), Some(2)));
    assert_eq!(list[0]["approved_by"], json!(["alice"]));
    assert_eq!(list[0]["requested_by"], "alice");
    let theirs: Value = app.get_json_as("/api/v1/approvals?pending=true", &dave.token).await;
    assert_eq!(theirs["approvals"], json!([]), "not dave's package");
    let resp = app.http.get(app.url("/api/v1/approvals?pending=true")).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = app
        .http
        .get(app.url("/api/v1/approvals?pending=false"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "bad_request").await;

    // Approved: no longer pending.
    tap_approves(&app, &info, &bob.key).await;
    let listed: Value = app.get_json_as("/api/v1/approvals?pending=true", &bob.token).await;
    assert_eq!(listed["approvals"], json!([]));

    // The page, linked from /keys, under the same strict policy as the others.
    let page = app.http.get(app.url("/pending")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<script src="/static/pending.js"></script>"#) && !html.contains("<script>"),
        "{html}"
    );
    let keys = app.http.get(app.url("/keys")).send().await.unwrap().text().await.unwrap();
    assert!(keys.contains(r#"href="/pending""#), "{keys}");
    let js = app.http.get(app.url("/static/pending.js")).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.text().await.unwrap().contains("/api/v1/approvals?pending=true"));
}

async fn approvals_wait_as_long_as_the_operator_configured(backend: Backend) {
    let Some(app) = TestApp::with_config(backend, |c| c.approval_ttl_seconds = 3600).await else { return };
    let (ms, _root) = two_of_three(&app).await;
    let (alice, bob) = (&ms[0], &ms[1]);
    let tgz = tarball(PKG, "1.1.0", "two");
    let info = ask_publish(&app, alice, PKG, "1.1.0", &tgz).await;
    tap_pending(&app, &info, &alice.key, 1, 2).await;
    // Past the default ten minutes, the approval still waits for bob.
    app.clock.advance(1800);
    assert_eq!(approval(&app, &info.id).await.status, "pending");
    let info2 = ask_publish(&app, alice, PKG, "1.1.0", &tgz).await;
    let ticket = tap_approves(&app, &info, &bob.key).await;
    assert_eq!(
        publish_with(&app, alice, PKG, "1.1.0", &tgz, &ticket.ticket).await.status(),
        StatusCode::CREATED
    );
    // After the hour it is gone.
    app.clock.advance(3600);
    assert_eq!(approval(&app, &info2.id).await.status, "expired");
    let resp = tap(&app, &info2, &bob.key).await;
    expect_error(resp, StatusCode::GONE, "approval_expired").await;
}

//! A head start for maintainers: failed second-factor attempts lock a package; writes are
//! refused (`package_locked`) until a maintainer's tap unlocks it; reads never stop; floods
//! from one address and non-maintainers' attempts do not lock it.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tapgate_server::store::gate::{CommitError, Guard, PackageGuard};
use tapgate_server::store::lockout::{LockRule, NewFailure, Recorded};
use tapgate_shared::intent::sri_sha512;

use tapgate_tests::process::tapgate_cli;

use crate::gate_support::send;
use crate::publish_support::{
    Maintainer, approve, create_approval, encode, maintainer, publish_body, publish_with_key, put, tarball,
};
use crate::store_gate::{approved_intent, publish_record};
use crate::support::{Backend, TestApp, backend_tests, expect_error, test_store};

backend_tests!(
    bad_attempts_lock_the_package_until_a_tap_unlocks_it,
    floods_and_non_maintainers_do_not_lock_a_package,
    a_lock_taken_while_a_change_waits_wins_inside_the_commit,
);

/// `name` published by `m` at 1.0.0.
async fn published(app: &TestApp, m: &Maintainer, name: &str) {
    let resp = publish_with_key(app, m, name, "1.0.0", &tarball(name, "1.0.0", "a")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// One refused typed code on a write to `name`, as npm would send it.
pub async fn wrong_code(app: &TestApp, token: &str, name: &str, version: &str) {
    let body = publish_body(name, version, &tarball(name, version, "x"));
    let resp = put(app, token, name, &body, Some("ZZZZ9999")).await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
}

pub async fn lock_of(app: &TestApp, name: &str) -> Value {
    let status: Value = app.get_json(&format!("/api/v1/packages/{}/lock", encode(name))).await;
    status["lock"].clone()
}

async fn versions(app: &TestApp, name: &str) -> Value {
    let info: Value = app.get_json(&format!("/api/v1/packages/{}", encode(name))).await;
    info["versions"].clone()
}

async fn bad_attempts_lock_the_package_until_a_tap_unlocks_it(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    published(&app, &alice, "left-pad").await;
    // A ticket approved before the lock: the lock still wins.
    let next = tarball("left-pad", "1.0.1", "b");
    let early = create_approval(&app, &alice, "left-pad", "1.0.1", &sri_sha512(&next)).await;
    let early = approve(&app, &early, &alice.key).await;

    for attempt in 1..=4 {
        wrong_code(&app, &alice.token, "left-pad", "9.9.9").await;
        assert!(lock_of(&app, "left-pad").await.is_null(), "not locked after {attempt} failures");
    }
    wrong_code(&app, &alice.token, "left-pad", "9.9.9").await;
    let lock = lock_of(&app, "left-pad").await;
    assert_eq!(lock["failures"], 5, "{lock}");

    // Every write is refused, with the way out; nothing changes.
    let body = publish_body("left-pad", "1.0.1", &next);
    let message = expect_error(
        put(&app, &alice.token, "left-pad", &body, Some(&early.ticket)).await,
        StatusCode::LOCKED,
        "package_locked",
    )
    .await;
    assert!(message.contains("tapgate unlock left-pad"), "{message}");
    let tag = send(
        &app,
        Method::PUT,
        "/-/package/left-pad/dist-tags/beta",
        &alice.token,
        Some(&Value::String("1.0.0".into())),
        None,
    )
    .await;
    expect_error(tag, StatusCode::LOCKED, "package_locked").await;
    let approval = app
        .http
        .post(app.url("/api/v1/approvals"))
        .bearer_auth(&alice.token)
        .json(&serde_json::json!({"package": "left-pad", "version": "1.0.2", "integrity": sri_sha512(&next)}))
        .send()
        .await
        .unwrap();
    expect_error(approval, StatusCode::LOCKED, "package_locked").await;
    assert_eq!(versions(&app, "left-pad").await, serde_json::json!(["1.0.0"]));

    // Reading and installing go on.
    let packument = app.http.get(app.url("/left-pad")).send().await.unwrap();
    assert_eq!(packument.status(), StatusCode::OK);
    let tgz = app.http.get(app.url("/left-pad/-/left-pad-1.0.0.tgz")).send().await.unwrap();
    assert_eq!(tgz.status(), StatusCode::OK);
    let info: Value = app.get_json("/api/v1/packages/left-pad").await;
    assert_eq!(info["lock"]["lock_id"], lock["lock_id"]);

    // Every failure is on record, with the client that made it.
    let failures = app.store().failures_since("left-pad", 0, 100).await.unwrap();
    assert_eq!(failures.len(), 5);
    assert!(
        failures
            .iter()
            .all(|f| f.kind == "ticket_refused" && f.counted && f.client_ip.as_deref() == Some("127.0.0.1"))
    );

    // A maintainer's tap unlocks it (through the CLI, which shows the lock and checks that the
    // key approves lifting exactly it); publishing works again.
    let cfg = tempfile::tempdir().unwrap();
    let key = format!("soft:{}", alice.key.path.display());
    let (status, out, err) = tapgate_cli(
        cfg.path(),
        &["--server", &app.origin, "--authenticator", &key, "unlock", "left-pad"],
        &[("TAPGATE_TOKEN", &alice.token)],
    );
    assert!(status.success(), "{err}");
    assert!(err.contains("locked at") && err.contains("after 5 failed"), "{err}");
    assert!(err.contains("Unlock left-pad"), "the intent is shown before the tap: {err}");
    assert!(out.contains("left-pad is unlocked"), "{out}");
    assert!(lock_of(&app, "left-pad").await.is_null());
    let resp = publish_with_key(&app, &alice, "left-pad", "1.0.1", &next).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // The failures before the unlock no longer count: one more does not lock it again.
    wrong_code(&app, &alice.token, "left-pad", "9.9.9").await;
    assert!(lock_of(&app, "left-pad").await.is_null());
    // Unlocking what is not locked is refused.
    let resp = send(&app, Method::POST, "/api/v1/packages/left-pad/unlock", &alice.token, None, None).await;
    expect_error(resp, StatusCode::CONFLICT, "conflict").await;
}

async fn floods_and_non_maintainers_do_not_lock_a_package(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let mallory = maintainer(&app, "mallory").await;
    let trudy = maintainer(&app, "trudy").await;
    published(&app, &alice, "left-pad").await;
    for i in 0..8 {
        for m in [&mallory, &trudy] {
            let body = publish_body("left-pad", &format!("6.6.{i}"), &tarball("left-pad", "6.6.6", "evil"));
            expect_error(
                put(&app, &m.token, "left-pad", &body, None).await,
                StatusCode::FORBIDDEN,
                "forbidden",
            )
            .await;
        }
    }
    assert!(lock_of(&app, "left-pad").await.is_null(), "16 attempts from one address by non-maintainers");
    // Anyone holding an approval's URL may answer it, but only the requester's keys count.
    let pending = create_approval(&app, &alice, "left-pad", "1.0.9", &sri_sha512(b"x")).await;
    for _ in 0..10 {
        let resp = app
            .http
            .post(app.url(&format!("/api/v1/approvals/{}", pending.id)))
            .json(&serde_json::json!({ "credential": { "id": "AAAA", "rawId": "AAAA", "type": "public-key",
                "response": { "clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA" } } }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    assert!(lock_of(&app, "left-pad").await.is_null(), "made-up taps by anonymous clients");
    let failures = app.store().failures_since("left-pad", 0, 100).await.unwrap();
    assert_eq!(failures.len(), 16, "every attempt is on record");
    assert!(failures.iter().all(|f| f.kind == "not_maintainer"));
    assert_eq!(failures.iter().filter(|f| f.counted).count(), 2, "one address counts twice an hour");
    // The maintainer still publishes.
    let resp = publish_with_key(&app, &alice, "left-pad", "1.0.1", &tarball("left-pad", "1.0.1", "b")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

async fn a_lock_taken_while_a_change_waits_wins_inside_the_commit(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    const NOW: i64 = 1_800_000_000;
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let first = approved_intent(&store, &alice.id, "apr_1", "p", "1.0.0", true).await;
    store.publish(&publish_record(&alice.id, "p", "1.0.0", Some(&first)).as_record(NOW)).await.unwrap();
    let waiting = approved_intent(&store, &alice.id, "apr_2", "p", "1.0.1", true).await;
    let rule = LockRule { threshold: 3, window_seconds: 3600 };
    let mut last = None;
    for i in 0..3 {
        let failure = NewFailure {
            package: "p",
            kind: "ticket_refused",
            user_id: Some(&alice.id),
            key_id: None,
            client_ip: Some("192.0.2.1"),
            user_agent: Some("test"),
            detail: "a refused ticket",
            counted: true,
            at: NOW + i,
        };
        last = Some(
            store
                .record_failure(&failure, Some(rule), &format!("lck_{i}"), &Default::default(), &|_, _| {
                    Default::default()
                })
                .await
                .unwrap(),
        );
    }
    let Some(Recorded::Locked(lock)) = last else { panic!("the third failure locks: {last:?}") };
    assert_eq!(lock.lock_id, "lck_2");
    let blocked = publish_record(&alice.id, "p", "1.0.1", Some(&waiting));
    let err = store.publish(&blocked.as_record(NOW + 10)).await.unwrap_err();
    assert!(matches!(err, CommitError::Locked), "{err:?}");
    assert!(store.version("p", "1.0.1").await.unwrap().is_none());
    // The unlock needs its own evidence and lifts exactly this lock.
    let unlock = approved_intent(&store, &alice.id, "apr_3", "p", "unlock", true).await;
    let guard = |tap| Guard {
        actor: &alice.id,
        package: Some(PackageGuard {
            package: "p",
            policy: r#"{"v":1,"second_factor":"security-key"}"#,
            must_maintain: true,
            unlocking: true,
        }),
        tap,
        deploy_key: None,
        oidc: None,
        now: NOW + 20,
        effects: None,
    };
    let err = store.unlock_package("p", "lck_0", &guard(Some(unlock.tap()))).await.unwrap_err();
    assert!(matches!(err, CommitError::Stale(_)), "another lock id: {err:?}");
    store.unlock_package("p", "lck_2", &guard(Some(unlock.tap()))).await.unwrap();
    assert!(store.package_lock("p").await.unwrap().is_none());
    // The waiting ticket was not spent by the refused commit.
    store.publish(&blocked.as_record(NOW + 30)).await.unwrap();
}

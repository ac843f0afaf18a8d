//! Races on every single-use thing, truly concurrent: two requests built in advance are released
//! together (a barrier, two tasks on a multi-threaded runtime) against the real application,
//! over many rounds. Exactly one wins; the loser gets its exact error code; the stored state
//! shows the thing used once (one key, one version, one spent ticket…).

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_shared::intent::sri_sha512;
use tokio::sync::Barrier;

use crate::deploy_keys_support::{PKG, World};
use crate::gate_support::{send, tap_required};
use crate::keys_support::{SoftKey, assertion, begin_login, invited, registration_response};
use crate::lockout::{lock_of, wrong_code};
use crate::publish_support::{approve, create_approval, maintainer, publish_body, tarball};
use crate::state_support::Snapshot;
use crate::support::{Backend, TestApp, backend_tests};

backend_tests!(
    two_finishes_of_one_sign_in_ceremony,
    two_finishes_of_one_registration_ceremony,
    two_taps_of_one_approval,
    two_uploads_with_one_ticket,
    two_uploads_with_one_deploy_key,
    two_redemptions_of_one_invite,
    two_unlocks_of_one_lock,
);

const ROUNDS: usize = 6;

/// Runs `a` and `b` at the same moment; returns (status, error code or "") of each.
async fn together<A, B>(a: A, b: B) -> [(StatusCode, String); 2]
where
    A: std::future::Future<Output = reqwest::Response> + Send + 'static,
    B: std::future::Future<Output = reqwest::Response> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let (ba, bb) = (barrier.clone(), barrier);
    let ta = tokio::spawn(async move {
        ba.wait().await;
        outcome(a.await).await
    });
    let tb = tokio::spawn(async move {
        bb.wait().await;
        outcome(b.await).await
    });
    [ta.await.unwrap(), tb.await.unwrap()]
}

async fn outcome(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let code = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code)
}

/// Exactly one of the two succeeded with `won`; the other failed with one of `lost` (status,
/// code): an exact answer for each way the loser can lose.
#[track_caller]
fn one_wins(results: &[(StatusCode, String); 2], won: StatusCode, lost: &[(StatusCode, &str)], what: &str) {
    let winners = results.iter().filter(|(s, _)| *s == won).count();
    assert_eq!(winners, 1, "{what}: exactly one wins: {results:?}");
    let loser = results.iter().find(|(s, _)| *s != won).unwrap();
    assert!(
        lost.iter().any(|(s, c)| *s == loser.0 && *c == loser.1),
        "{what}: the loser's answer {loser:?} is not one of {lost:?}"
    );
}

async fn two_finishes_of_one_sign_in_ceremony(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let alice = maintainer(&app, "alice").await;
    let user = app.store().user_by_name("alice").await.unwrap().unwrap();
    for round in 0..ROUNDS {
        let before = app.store().list_tokens(&user.id, app.clock_now()).await.unwrap().len();
        let begin = begin_login(&app, "alice").await;
        let cred = assertion(&app, &alice.key, &begin).await;
        let (a, b) = (app.http.clone(), app.http.clone());
        let url = app.url(&format!("/api/v1/sessions/{}", begin.ceremony));
        let body = json!({ "credential": cred });
        let (ua, ba) = (url.clone(), body.clone());
        let results = together(async move { a.post(ua).json(&ba).send().await.unwrap() }, async move {
            b.post(url).json(&body).send().await.unwrap()
        })
        .await;
        one_wins(&results, StatusCode::CREATED, &[(StatusCode::GONE, "ceremony_expired")], "sign-in");
        let after = app.store().list_tokens(&user.id, app.clock_now()).await.unwrap().len();
        assert_eq!(after, before + 1, "round {round}: one token issued");
    }
}

async fn two_finishes_of_one_registration_ceremony(backend: Backend) {
    let Some(app) = unthrottled(backend).await else { return };
    for round in 0..ROUNDS {
        // An enrolment with an invite: one ceremony, one answer, finished twice at once.
        let invite = invited(&app, &format!("user{round}")).await;
        let key = SoftKey::new();
        let (ceremony, cred) = registration_response(&app, &invite, &key).await;
        let before = Snapshot::of_app(&app).await;
        let (a, b) = (app.clone_handle(), app.clone_handle());
        let (ca, cb) = (ceremony.clone(), ceremony);
        let (ra, rb) = (cred.clone(), cred);
        let (ta, tb) = (invite.clone(), invite);
        let results = together(async move { a.finish_registration_as(&ta, &ca, &ra).await }, async move {
            b.finish_registration_as(&tb, &cb, &rb).await
        })
        .await;
        // The loser finds the ceremony consumed, or (arriving after) the invite spent.
        one_wins(
            &results,
            StatusCode::CREATED,
            &[(StatusCode::GONE, "ceremony_expired"), (StatusCode::UNAUTHORIZED, "invalid_invite")],
            "registration",
        );
        let after = Snapshot::of_app(&app).await;
        assert_eq!(
            after.rows("security_keys").len(),
            before.rows("security_keys").len() + 1,
            "round {round}"
        );
    }
}

async fn two_taps_of_one_approval(backend: Backend) {
    let Some(app) = unthrottled(backend).await else { return };
    for round in 0..ROUNDS {
        // A maintainer and package per round: a lost race may suspend the key (below).
        let alice = maintainer(&app, &format!("alice{round}")).await;
        let name = format!("pkg{round}");
        let tgz = tarball(&name, "1.0.0", "t");
        let info = create_approval(&app, &alice, &name, "1.0.0", &sri_sha512(&tgz)).await;
        let options = info.public_key.clone().unwrap();
        let cred = tapgate::ceremony::assert(&alice.key.choice, &options, &app.origin).await.unwrap();
        let (a, b) = (app.clone_handle(), app.clone_handle());
        let (ia, ib) = (info.id.clone(), info.id.clone());
        let (ra, rb) = (cred.clone(), cred);
        let results = together(async move { a.finish_approval(&ia, &ra).await }, async move {
            b.finish_approval(&ib, &rb).await
        })
        .await;
        // The replayed twin of a valid answer loses as a second signature by the same key (the
        // first was recorded) or as a counter that did not advance (the two were verified at
        // once); in that case the key is suspended as possibly cloned.
        one_wins(
            &results,
            StatusCode::OK,
            &[(StatusCode::CONFLICT, "conflict"), (StatusCode::UNAUTHORIZED, "counter_regression")],
            "tap",
        );
        let snap = Snapshot::of_app(&app).await;
        let sigs = snap.rows("approval_signatures").iter().filter(|r| r.starts_with(&info.id)).count();
        assert_eq!(sigs, 1, "round {round}: one signature recorded");
        let approved = snap
            .rows("approvals")
            .iter()
            .filter(|r| r.starts_with(&info.id) && !r.contains("approved=-"))
            .count();
        assert_eq!(approved, 1, "round {round}: approved once");
    }
}

async fn two_uploads_with_one_ticket(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let alice = maintainer(&app, "alice").await;
    for round in 0..ROUNDS {
        let version = format!("1.0.{round}");
        let tgz = tarball("left-pad", &version, "u");
        let info = create_approval(&app, &alice, "left-pad", &version, &sri_sha512(&tgz)).await;
        let ticket = approve(&app, &info, &alice.key).await.ticket;
        let body = publish_body("left-pad", &version, &tgz);
        let (a, b) = (app.clone_handle(), app.clone_handle());
        let (ta, tb) = (alice.token.clone(), alice.token.clone());
        let (ka, kb) = (ticket.clone(), ticket);
        let (ba, bb) = (body.clone(), body);
        let results = together(async move { a.put_with_otp(&ta, &ba, &ka).await }, async move {
            b.put_with_otp(&tb, &bb, &kb).await
        })
        .await;
        // The loser lost inside the commit (the ticket was spent) or arrived after it (the
        // version exists, which is checked first).
        one_wins(
            &results,
            StatusCode::CREATED,
            &[(StatusCode::FORBIDDEN, "invalid_ticket"), (StatusCode::FORBIDDEN, "version_exists")],
            "upload",
        );
        let snap = Snapshot::of_app(&app).await;
        let versions =
            snap.rows("versions").iter().filter(|r| r.starts_with(&format!("left-pad@{version} "))).count();
        assert_eq!(versions, 1, "round {round}");
        let used = snap
            .rows("approvals")
            .iter()
            .filter(|r| r.starts_with(&info.id) && !r.contains("used=-"))
            .count();
        assert_eq!(used, 1, "round {round}: the ticket is spent");
    }
}

async fn two_uploads_with_one_deploy_key(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let w = World::new(app, &["deploy-key"]).await;
    let credential = w.any_credential("ci_00000000000000000001").await;
    for round in 0..ROUNDS {
        let version = format!("1.1.{round}");
        let tgz = tarball(PKG, &version, "dk");
        let key = w.deploy_key(&credential, &version, &tgz).await;
        let body = publish_body(PKG, &version, &tgz);
        let (a, b) = (w.app.clone_handle(), w.app.clone_handle());
        let (ta, tb) = (credential.clone(), credential.clone());
        let (ka, kb) = (key.clone(), key);
        let (ba, bb) = (body.clone(), body);
        let results = together(async move { a.put_with_otp_to(PKG, &ta, &ba, &ka).await }, async move {
            b.put_with_otp_to(PKG, &tb, &bb, &kb).await
        })
        .await;
        one_wins(
            &results,
            StatusCode::CREATED,
            &[(StatusCode::FORBIDDEN, "invalid_deploy_key"), (StatusCode::FORBIDDEN, "version_exists")],
            "deploy key",
        );
        let snap = Snapshot::of_app(&w.app).await;
        let spent = snap.rows("deploy_keys").iter().filter(|r| !r.ends_with(" unspent")).count();
        assert_eq!(spent, round + 1, "one deploy key spent per round");
        assert_eq!(w.versions().await.iter().filter(|v| **v == version).count(), 1);
    }
}

/// An app whose rate limits stay out of the way of many rounds from one address (the package
/// lock after repeated failures stays as it is).
async fn unthrottled(backend: Backend) -> Option<TestApp> {
    TestApp::with_config(backend, |c| {
        let l = &mut c.rate_limits;
        (l.otp_failures, l.otp_failures_account, l.invites, l.taps, l.taps_account) =
            (None, None, None, None, None);
        (l.lock_failures, l.lock_failures_account) = (None, None);
    })
    .await
}

async fn two_redemptions_of_one_invite(backend: Backend) {
    let Some(app) = unthrottled(backend).await else { return };
    for round in 0..ROUNDS {
        let name = format!("user{round}");
        let invite = invited(&app, &name).await;
        let (k1, k2) = (SoftKey::new(), SoftKey::new());
        let (c1, r1) = registration_response(&app, &invite, &k1).await;
        let (c2, r2) = registration_response(&app, &invite, &k2).await;
        let (a, b) = (app.clone_handle(), app.clone_handle());
        let (ia, ib) = (invite.clone(), invite.clone());
        let results = together(async move { a.finish_registration_as(&ia, &c1, &r1).await }, async move {
            b.finish_registration_as(&ib, &c2, &r2).await
        })
        .await;
        one_wins(&results, StatusCode::CREATED, &[(StatusCode::UNAUTHORIZED, "invalid_invite")], "invite");
        let user = app.store().user_by_name(&name).await.unwrap().unwrap();
        assert_eq!(app.store().keys_of_user(&user.id).await.unwrap().len(), 1, "round {round}: one key");
        let snap = Snapshot::of_app(&app).await;
        let used =
            snap.rows("invites").iter().filter(|r| r.contains(&user.id) && !r.ends_with(" unused")).count();
        assert_eq!(used, 1, "round {round}: the invite is used");
    }
}

async fn two_unlocks_of_one_lock(backend: Backend) {
    let Some(app) = unthrottled(backend).await else { return };
    let alice = maintainer(&app, "alice").await;
    let tgz = tarball("left-pad", "1.0.0", "a");
    assert_eq!(
        crate::publish_support::publish_with_key(&app, &alice, "left-pad", "1.0.0", &tgz).await.status(),
        StatusCode::CREATED
    );
    for round in 0..ROUNDS {
        for _ in 0..20 {
            if !lock_of(&app, "left-pad").await.is_null() {
                break;
            }
            wrong_code(&app, &alice.token, "left-pad", "9.9.9").await;
        }
        assert!(!lock_of(&app, "left-pad").await.is_null(), "round {round}: locked");
        // Two unlocks of the same lock, each approved with its own tap.
        let path = "/api/v1/packages/left-pad/unlock";
        let mut tickets = Vec::new();
        for _ in 0..2 {
            let info = tap_required(send(&app, Method::POST, path, &alice.token, None, None).await).await;
            tickets.push(approve(&app, &info, &alice.key).await.ticket);
        }
        let used = |s: &Snapshot| s.rows("approvals").iter().filter(|r| !r.contains("used=-")).count();
        let before = used(&Snapshot::of_app(&app).await);
        let (a, b) = (app.clone_handle(), app.clone_handle());
        let (ta, tb) = (alice.token.clone(), alice.token.clone());
        let (ka, kb) = (tickets[0].clone(), tickets[1].clone());
        let results = together(async move { a.post_with_otp(path, &ta, &ka).await }, async move {
            b.post_with_otp(path, &tb, &kb).await
        })
        .await;
        one_wins(&results, StatusCode::OK, &[(StatusCode::CONFLICT, "conflict")], "unlock");
        assert!(lock_of(&app, "left-pad").await.is_null(), "round {round}: unlocked");
        assert_eq!(used(&Snapshot::of_app(&app).await), before + 1, "round {round}: one ticket spent");
    }
}

/// What a task needs to send requests to the app (the app itself stays with the test).
#[derive(Clone)]
pub struct Handle {
    http: reqwest::Client,
    base: String,
}

impl TestApp {
    pub fn clone_handle(&self) -> Handle {
        Handle { http: self.http.clone(), base: self.base.clone() }
    }
}

impl Handle {
    async fn finish_registration_as(
        &self,
        bearer: &str,
        ceremony: &str,
        cred: &impl serde::Serialize,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/keys/registrations/{ceremony}", self.base))
            .bearer_auth(bearer)
            .json(&json!({ "name": "key", "credential": cred }))
            .send()
            .await
            .unwrap()
    }

    async fn finish_approval(&self, id: &str, cred: &impl serde::Serialize) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/approvals/{id}", self.base))
            .json(&json!({ "credential": cred }))
            .send()
            .await
            .unwrap()
    }

    async fn put_with_otp(&self, token: &str, body: &Value, otp: &str) -> reqwest::Response {
        self.put_with_otp_to("left-pad", token, body, otp).await
    }

    async fn put_with_otp_to(&self, name: &str, token: &str, body: &Value, otp: &str) -> reqwest::Response {
        self.http
            .put(format!("{}/{name}", self.base))
            .bearer_auth(token)
            .header("npm-otp", otp)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn post_with_otp(&self, path: &str, token: &str, otp: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("npm-otp", otp)
            .send()
            .await
            .unwrap()
    }
}

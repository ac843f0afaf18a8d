//! Ways around staging, each refused with its exact code and nothing published or staged: CI
//! approving its own upload, strangers, a CI path the policy does not allow, a credential out of
//! its scope, a ticket for another stage, an expired stage, a locked package, a tampered stored
//! tarball, and an unbounded number of stages. Both backends.

use reqwest::{Method, StatusCode};
use tapgate_shared::intent::sri_sha512;
use tapgate_shared::stage::StageState;

use crate::deploy_keys_support::{PKG, World, tagged_body};
use crate::gate_support::tap_required;
use crate::publish_support::{approve, maintainer, publish_body, tarball};
use crate::stage_support::{
    approve_raw, list, long_credential, reject_raw, stage, stage_item, stage_raw, view,
};
use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(
    ci_credentials_and_strangers_never_decide,
    ci_stages_only_where_the_policy_and_its_scope_allow,
    a_ticket_for_another_stage_publishes_nothing,
    expired_stages_and_locked_packages_publish_nothing,
    a_tampered_staged_tarball_is_refused,
    stages_per_package_are_bounded,
    revoking_a_credential_rejects_what_it_staged,
    a_rejection_voids_every_approval_of_those_bytes,
    withdrawn_trust_and_foreign_credentials_are_refused,
);

async fn world(backend: Backend, ci: &[&str]) -> Option<World> {
    Some(World::new(TestApp::new(backend).await?, ci).await)
}

async fn nothing_staged(w: &World) {
    assert_eq!(list(w, &w.alice.token).await.total, 0, "no stage was recorded");
}

async fn ci_credentials_and_strangers_never_decide(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000011").await;
    let staged = stage(&w, &ci, "1.1.0", &tarball(PKG, "1.1.0", "x")).await;
    // The CI credential that staged it cannot approve or reject it.
    expect_error(approve_raw(&w, &ci, &staged.id, None).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    expect_error(reject_raw(&w, &ci, &staged.id, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Someone who maintains nothing here does not even learn it exists.
    let bob = maintainer(&w.app, "bob").await;
    expect_error(view(&w, &bob.token, &staged.id).await, StatusCode::NOT_FOUND, "stage_not_found").await;
    expect_error(
        approve_raw(&w, &bob.token, &staged.id, None).await,
        StatusCode::NOT_FOUND,
        "stage_not_found",
    )
    .await;
    expect_error(
        reject_raw(&w, &bob.token, &staged.id, None).await,
        StatusCode::NOT_FOUND,
        "stage_not_found",
    )
    .await;
    assert_eq!(list(&w, &bob.token).await.total, 0);
    // An id that was never issued answers the same.
    let unknown = uuid::Uuid::new_v4().to_string();
    expect_error(view(&w, &w.alice.token, &unknown).await, StatusCode::NOT_FOUND, "stage_not_found").await;
    // Nor can bob stage releases of a package he does not maintain.
    let resp = stage_raw(&w, &bob.token, &publish_body(PKG, "1.9.0", &tarball(PKG, "1.9.0", "bob"))).await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(stage_item(&w, &w.alice.token, &staged.id).await.state, StageState::Pending);
    assert_eq!(list(&w, &w.alice.token).await.total, 1);
    assert_eq!(w.versions().await, ["1.0.0"]);
}

async fn ci_stages_only_where_the_policy_and_its_scope_allow(backend: Backend) {
    // The policy lets CI publish with deploy keys, not stage.
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    let ci =
        w.credential(&w.scope("ci_00000000000000000012", "^1.0.0", &["latest"], &["203.0.113.0/24"])).await;
    let body = publish_body(PKG, "1.1.0", &tarball(PKG, "1.1.0", "x"));
    let message =
        expect_error(stage_raw(&w, &ci.credential, &body).await, StatusCode::FORBIDDEN, "policy_violation")
            .await;
    assert!(message.contains("\"stage\""), "{message}");
    nothing_staged(&w).await;

    w.set_policy(PKG, &["stage"]).await;
    // The credential's networks do not include loopback.
    expect_error(stage_raw(&w, &ci.credential, &body).await, StatusCode::FORBIDDEN, "outside_ci_scope").await;
    let ci = w.any_credential("ci_00000000000000000013").await;
    // Outside its versions, its tags, its package; a number already used.
    let major = publish_body(PKG, "2.0.0", &tarball(PKG, "2.0.0", "x"));
    expect_error(stage_raw(&w, &ci, &major).await, StatusCode::FORBIDDEN, "outside_ci_scope").await;
    let beta = tagged_body("1.1.0", &tarball(PKG, "1.1.0", "x"), "beta");
    expect_error(stage_raw(&w, &ci, &beta).await, StatusCode::FORBIDDEN, "outside_ci_scope").await;
    let other = "right-pad";
    let resp = crate::gate_support::send(
        &w.app,
        Method::POST,
        &format!("/-/stage/package/{other}"),
        &ci,
        Some(&publish_body(other, "1.0.0", &tarball(other, "1.0.0", "x"))),
        None,
    )
    .await;
    expect_error(resp, StatusCode::FORBIDDEN, "outside_ci_scope").await;
    let again = publish_body(PKG, "1.0.0", &tarball(PKG, "1.0.0", "again"));
    expect_error(stage_raw(&w, &ci, &again).await, StatusCode::FORBIDDEN, "version_exists").await;
    // A revoked credential stages nothing.
    let resp = crate::gate_support::send(
        &w.app,
        Method::DELETE,
        "/api/v1/ci/credentials/ci_00000000000000000013",
        &w.alice.token,
        None,
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    expect_error(stage_raw(&w, &ci, &body).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    nothing_staged(&w).await;
    assert_eq!(w.versions().await, ["1.0.0"]);
}

async fn a_ticket_for_another_stage_publishes_nothing(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000014").await;
    let good = stage(&w, &ci, "1.1.0", &tarball(PKG, "1.1.0", "reviewed")).await;
    let evil = stage(&w, &ci, "1.1.0", &tarball(PKG, "1.1.0", "malicious")).await;
    // alice taps to approve the stage she reviewed; the ticket is replayed on the other.
    let info = tap_required(approve_raw(&w, &w.alice.token, &good.id, None).await).await;
    let ticket = approve(&w.app, &info, &w.alice.key).await;
    let resp = approve_raw(&w, &w.alice.token, &evil.id, Some(&ticket.ticket)).await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    assert_eq!(w.versions().await, ["1.0.0"]);
    assert_eq!(stage_item(&w, &w.alice.token, &evil.id).await.state, StageState::Pending);
    // Nor does an approval ticket reject (another intent).
    let resp = reject_raw(&w, &w.alice.token, &evil.id, Some(&ticket.ticket)).await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    assert_eq!(stage_item(&w, &w.alice.token, &evil.id).await.state, StageState::Pending);
    // Refused tickets are failed attempts: they count towards the package's lock.
    let failures = w.app.store().failures_since(PKG, 0, 100).await.unwrap();
    let refused: Vec<_> = failures.iter().filter(|f| f.kind == "ticket_refused" && f.counted).collect();
    assert_eq!(refused.len(), 2, "{failures:?}");
}

async fn expired_stages_and_locked_packages_publish_nothing(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = long_credential(&w, "ci_00000000000000000015").await;
    let old = stage(&w, &ci, "1.1.0", &tarball(PKG, "1.1.0", "old")).await;
    // Approved in time, but the stage expires before the ticket is used.
    let info = tap_required(approve_raw(&w, &w.alice.token, &old.id, None).await).await;
    let ticket = approve(&w.app, &info, &w.alice.key).await;
    w.app.clock.advance(7 * 86_400);
    let message = expect_error(
        approve_raw(&w, &w.alice.token, &old.id, Some(&ticket.ticket)).await,
        StatusCode::GONE,
        "stage_closed",
    )
    .await;
    assert!(message.contains("expired"), "{message}");
    assert_eq!(stage_item(&w, &w.alice.token, &old.id).await.state, StageState::Expired);
    assert_eq!(w.versions().await, ["1.0.0"]);
    // The purge drops its bytes.
    w.app.store().purge_expired(w.app.clock_now()).await.unwrap();
    assert!(w.app.store().stage_tarball(&old.id).await.unwrap().is_none());

    // Locked after failed attempts: neither staging nor approving goes through.
    let fresh = stage(&w, &ci, "1.2.0", &tarball(PKG, "1.2.0", "fresh")).await;
    for _ in 0..5 {
        crate::lockout::wrong_code(&w.app, &w.alice.token, PKG, "9.9.9").await;
    }
    let body = publish_body(PKG, "1.3.0", &tarball(PKG, "1.3.0", "x"));
    expect_error(stage_raw(&w, &ci, &body).await, StatusCode::LOCKED, "package_locked").await;
    expect_error(
        approve_raw(&w, &w.alice.token, &fresh.id, None).await,
        StatusCode::LOCKED,
        "package_locked",
    )
    .await;
    assert_eq!(list(&w, &w.alice.token).await.total, 2, "nothing staged while locked");
    assert_eq!(w.versions().await, ["1.0.0"]);
}

async fn a_tampered_staged_tarball_is_refused(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000016").await;
    let staged = stage(&w, &ci, "1.1.0", &tarball(PKG, "1.1.0", "clean")).await;
    // Someone with database access swaps the stored bytes after the review.
    let evil = tarball(PKG, "1.1.0", "swapped");
    let bytes = match w.app.database().backend {
        Backend::Sqlite => format!("X'{}'", hex::encode(&evil)),
        Backend::Postgres => format!("decode('{}', 'hex')", hex::encode(&evil)),
    };
    let statement = format!("UPDATE stage_tarballs SET bytes = {bytes} WHERE stage_id = '{}'", staged.id);
    crate::audit::sql(&w.app, &statement).await;
    let message = expect_error(
        approve_raw(&w, &w.alice.token, &staged.id, None).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert!(message.contains("no longer matches"), "{message}");
    assert_ne!(sri_sha512(&evil), staged.integrity);
    assert_eq!(w.versions().await, ["1.0.0"]);
}

async fn stages_per_package_are_bounded(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = long_credential(&w, "ci_00000000000000000017").await;
    let max = tapgate_server::changes::stage::MAX_PENDING_STAGES;
    for i in 0..max {
        let version = format!("1.1.{i}");
        stage(&w, &ci, &version, &tarball(PKG, &version, "x")).await;
    }
    let body = publish_body(PKG, "1.2.0", &tarball(PKG, "1.2.0", "x"));
    expect_error(stage_raw(&w, &ci, &body).await, StatusCode::TOO_MANY_REQUESTS, "too_many_stages").await;
    assert_eq!(list(&w, &w.alice.token).await.total, max);
    // Expired ones stop counting.
    w.app.clock.advance(7 * 86_400);
    stage(&w, &ci, "1.2.0", &tarball(PKG, "1.2.0", "x")).await;
}

async fn revoking_a_credential_rejects_what_it_staged(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let leaked = w.any_credential("ci_00000000000000000018").await;
    let other = w.any_credential("ci_00000000000000000019").await;
    let evil = stage(&w, &leaked, "1.1.0", &tarball(PKG, "1.1.0", "evil")).await;
    let good = stage(&w, &other, "1.2.0", &tarball(PKG, "1.2.0", "good")).await;
    let resp = crate::gate_support::send(
        &w.app,
        Method::DELETE,
        "/api/v1/ci/credentials/ci_00000000000000000018",
        &w.alice.token,
        None,
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    let after = stage_item(&w, &w.alice.token, &evil.id).await;
    assert_eq!((after.state, after.decided_by.as_deref()), (StageState::Rejected, Some("alice")));
    expect_error(approve_raw(&w, &w.alice.token, &evil.id, None).await, StatusCode::GONE, "stage_closed")
        .await;
    assert!(w.app.store().stage_tarball(&evil.id).await.unwrap().is_none(), "its bytes are deleted");
    // Another credential's stage is untouched.
    assert_eq!(stage_item(&w, &w.alice.token, &good.id).await.state, StageState::Pending);
    assert_eq!(w.versions().await, ["1.0.0"]);
}

async fn a_rejection_voids_every_approval_of_those_bytes(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000020").await;
    let evil = tarball(PKG, "1.1.0", "evil");
    let staged = stage(&w, &ci, "1.1.0", &evil).await;
    // A tap given to approve it (maybe by mistake), its ticket not used yet.
    let info = tap_required(approve_raw(&w, &w.alice.token, &staged.id, None).await).await;
    let ticket = approve(&w.app, &info, &w.alice.key).await;
    // Another look, and a maintainer rejects it.
    let (_, resp) = crate::stage_support::decide_with_tap(&w, &w.alice, &staged.id, true).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    // The earlier ticket publishes nothing, through the stage or a plain PUT of the same bytes.
    let resp = approve_raw(&w, &w.alice.token, &staged.id, Some(&ticket.ticket)).await;
    expect_error(resp, StatusCode::GONE, "stage_closed").await;
    let resp = crate::publish_support::put(
        &w.app,
        &w.alice.token,
        PKG,
        &publish_body(PKG, "1.1.0", &evil),
        Some(&ticket.ticket),
    )
    .await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    // Staging the very same bytes again is refused; a fixed build is welcome.
    let resp = stage_raw(&w, &ci, &publish_body(PKG, "1.1.0", &evil)).await;
    let message = expect_error(resp, StatusCode::GONE, "stage_closed").await;
    assert!(message.contains("rejected exactly this tarball"), "{message}");
    stage(&w, &ci, "1.1.0", &tarball(PKG, "1.1.0", "fixed")).await;
    assert_eq!(w.versions().await, ["1.0.0"]);
}

async fn withdrawn_trust_and_foreign_credentials_are_refused(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000021").await;
    let other = w.any_credential("ci_00000000000000000022").await;
    let staged = stage(&w, &ci, "1.1.0", &tarball(PKG, "1.1.0", "x")).await;
    // Another CI credential of the same package neither sees nor fetches it.
    expect_error(view(&w, &other, &staged.id).await, StatusCode::NOT_FOUND, "stage_not_found").await;
    assert_eq!(list(&w, &other).await.total, 0);
    assert_eq!(list(&w, &ci).await.total, 1);
    // A deploy key is no stand-in for the maintainer's tap.
    let resp = approve_raw(&w, &w.alice.token, &staged.id, Some("tg_dk_x.y")).await;
    expect_error(resp, StatusCode::FORBIDDEN, "invalid_ticket").await;
    // The policy stops letting CI stage: what CI staged before cannot be approved.
    w.set_policy(PKG, &["deploy-key"]).await;
    let resp = approve_raw(&w, &w.alice.token, &staged.id, None).await;
    expect_error(resp, StatusCode::FORBIDDEN, "policy_violation").await;
    assert_eq!(stage_item(&w, &w.alice.token, &staged.id).await.state, StageState::Pending);
    assert_eq!(w.versions().await, ["1.0.0"]);
}

//! Staged releases: CI stages a release nobody is served; a maintainer approves it with a tap
//! (the gated publish of exactly the staged bytes) or rejects it with a tap. Both backends.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tapgate_shared::api::ApprovalRecord;
use tapgate_shared::gate_intent::Change;
use tapgate_shared::intent::sri_sha512;
use tapgate_shared::stage::{StageActor, StageState};

use crate::deploy_keys_support::{PKG, World};
use crate::gate_support::{send, tap_required};
use crate::publish_support::{approve, publish_body, put, tarball};
use crate::stage_support::{approve_raw, decide_with_tap, list, reject_raw, stage, stage_item, view};
use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(
    ci_stages_and_a_maintainer_approves_it_with_a_tap,
    a_maintainer_rejects_a_stage_with_a_tap,
    a_maintainer_stages_and_approves_later,
    publishing_the_version_otherwise_supersedes_its_stages,
    two_approvals_of_one_stage_publish_once,
);

async fn world(backend: Backend, ci: &[&str]) -> Option<World> {
    Some(World::new(TestApp::new(backend).await?, ci).await)
}

async fn tarball_status(w: &World, version: &str) -> StatusCode {
    let path = format!("/{PKG}/-/{PKG}-{version}.tgz");
    w.app.http.get(w.app.url(&path)).send().await.unwrap().status()
}

async fn ci_stages_and_a_maintainer_approves_it_with_a_tap(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000001").await;
    let tgz = tarball(PKG, "1.1.0", "staged");
    let staged = stage(&w, &ci, "1.1.0", &tgz).await;
    assert_eq!(
        (staged.actor.as_str(), staged.actor_type, staged.credential.as_deref()),
        ("alice", StageActor::CiCredential, Some("ci_00000000000000000001"))
    );
    assert_eq!((staged.state, staged.integrity.as_str()), (StageState::Pending, sri_sha512(&tgz).as_str()));
    assert_eq!(staged.tags, ["latest"]);

    // Nothing is served.
    assert_eq!(w.versions().await, ["1.0.0"]);
    assert_eq!(tarball_status(&w, "1.1.0").await, StatusCode::NOT_FOUND);
    let tags: Value = w.app.get_json(&format!("/-/package/{PKG}/dist-tags")).await;
    assert_eq!(tags["latest"], "1.0.0");

    // The maintainer sees it, what it changes, and its exact bytes; so does its CI credential.
    let listed = list(&w, &w.alice.token).await;
    assert_eq!((listed.total, listed.items.len()), (1, 1));
    assert_eq!(listed.items[0].id, staged.id);
    assert_eq!(list(&w, &ci).await.items[0].id, staged.id);
    let detail: Value = view(&w, &w.alice.token, &staged.id).await.json().await.unwrap();
    assert_eq!(detail["changes"]["previous_version"], "1.0.0", "{detail}");
    let resp =
        send(&w.app, Method::GET, &format!("/-/stage/{}/tarball", staged.id), &w.alice.token, None, None)
            .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), tgz.as_slice());

    // The audit log says it was staged.
    let audit: Value = w.app.get_json(&format!("/api/v1/packages/{PKG}/audit")).await;
    let entries = audit["entries"].as_array().unwrap_or_else(|| panic!("{audit}"));
    let staged_entries =
        entries.iter().filter(|e| e["entry"].as_str().unwrap_or("").contains("\"stage.created\"")).count();
    assert_eq!(staged_entries, 1, "{audit}");

    // Approving is the publish of exactly these bytes, by alice, with her tap.
    let first = approve_raw(&w, &w.alice.token, &staged.id, None).await;
    let info = tap_required(first).await;
    let intent = info.intent.clone().unwrap();
    assert_eq!(intent.requested_by, "alice");
    assert_eq!(
        intent.change,
        Change::Publish { version: "1.1.0".into(), integrity: sri_sha512(&tgz), tags: vec!["latest".into()] }
    );
    assert_eq!(w.versions().await, ["1.0.0"], "nothing before the tap");
    let ticket = approve(&w.app, &info, &w.alice.key).await;
    let resp = approve_raw(&w, &w.alice.token, &staged.id, Some(&ticket.ticket)).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stage"]["state"], "published");
    assert_eq!(body["stage"]["decidedBy"], "alice");
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);
    assert_eq!(tarball_status(&w, "1.1.0").await, StatusCode::OK);
    let tags: Value = w.app.get_json(&format!("/-/package/{PKG}/dist-tags")).await;
    assert_eq!(tags["latest"], "1.1.0");
    // The version's record is the tap, verifiable like any publish.
    let record: ApprovalRecord =
        w.app.get_json(&format!("/api/v1/packages/{PKG}/versions/1.1.0/approval")).await;
    assert_eq!(record.gate_intent.unwrap().change, intent.change);

    // Decided once: approving or rejecting again is refused, and the bytes are gone.
    expect_error(approve_raw(&w, &w.alice.token, &staged.id, None).await, StatusCode::GONE, "stage_closed")
        .await;
    expect_error(reject_raw(&w, &w.alice.token, &staged.id, None).await, StatusCode::GONE, "stage_closed")
        .await;
    let resp =
        send(&w.app, Method::GET, &format!("/-/stage/{}/tarball", staged.id), &w.alice.token, None, None)
            .await;
    expect_error(resp, StatusCode::GONE, "stage_closed").await;
    assert_eq!(stage_item(&w, &w.alice.token, &staged.id).await.state, StageState::Published);
}

async fn a_maintainer_rejects_a_stage_with_a_tap(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000002").await;
    let tgz = tarball(PKG, "1.2.0", "bad build");
    let staged = stage(&w, &ci, "1.2.0", &tgz).await;
    // A token alone does not reject: it takes a tap bound to this stage.
    let (action, resp) = decide_with_tap(&w, &w.alice, &staged.id, true).await;
    assert_eq!(action, "stage-reject");
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stage"]["state"], "rejected");
    // Never published, whatever comes after.
    let message = expect_error(
        approve_raw(&w, &w.alice.token, &staged.id, None).await,
        StatusCode::GONE,
        "stage_closed",
    )
    .await;
    assert!(message.contains("rejected"), "{message}");
    assert_eq!(w.versions().await, ["1.0.0"]);
    assert_eq!(tarball_status(&w, "1.2.0").await, StatusCode::NOT_FOUND);
    let resp =
        send(&w.app, Method::GET, &format!("/-/stage/{}/tarball", staged.id), &w.alice.token, None, None)
            .await;
    expect_error(resp, StatusCode::GONE, "stage_closed").await;
}

async fn a_maintainer_stages_and_approves_later(backend: Backend) {
    // A maintainer's own token may stage whatever the CI policy: staging serves nothing.
    let Some(w) = world(backend, &["deploy-key"]).await else { return };
    let tgz = tarball(PKG, "1.3.0", "mine");
    let staged = stage(&w, &w.alice.token, "1.3.0", &tgz).await;
    assert_eq!((staged.actor_type, staged.credential), (StageActor::User, None));
    assert_eq!(w.versions().await, ["1.0.0"]);
    let (action, resp) = decide_with_tap(&w, &w.alice, &staged.id, false).await;
    assert_eq!(action, "publish");
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    assert_eq!(w.versions().await, ["1.0.0", "1.3.0"]);
}

async fn publishing_the_version_otherwise_supersedes_its_stages(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000003").await;
    let a = stage(&w, &ci, "1.4.0", &tarball(PKG, "1.4.0", "first try")).await;
    let b = stage(&w, &ci, "1.4.0", &tarball(PKG, "1.4.0", "second try")).await;
    let other = stage(&w, &ci, "1.5.0", &tarball(PKG, "1.5.0", "next")).await;
    let (_, resp) = decide_with_tap(&w, &w.alice, &b.id, false).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    // The other upload of 1.4.0 can never be published; 1.5.0's is untouched.
    assert_eq!(stage_item(&w, &w.alice.token, &a.id).await.state, StageState::Superseded);
    expect_error(approve_raw(&w, &w.alice.token, &a.id, None).await, StatusCode::GONE, "stage_closed").await;
    assert_eq!(stage_item(&w, &w.alice.token, &other.id).await.state, StageState::Pending);
    // A direct publish of 1.5.0 supersedes its stage too.
    let tgz = tarball(PKG, "1.5.0", "direct");
    let resp = crate::publish_support::publish_with_key(&w.app, &w.alice, PKG, "1.5.0", &tgz).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(stage_item(&w, &w.alice.token, &other.id).await.state, StageState::Superseded);
    // What 1.4.0 serves is b's bytes.
    let path = format!("/{PKG}/-/{PKG}-1.4.0.tgz");
    let served = w.app.http.get(w.app.url(&path)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(sri_sha512(&served), b.integrity);
    assert_eq!(w.versions().await, ["1.0.0", "1.4.0", "1.5.0"]);
}

async fn two_approvals_of_one_stage_publish_once(backend: Backend) {
    let Some(w) = world(backend, &["stage"]).await else { return };
    let ci = w.any_credential("ci_00000000000000000004").await;
    let tgz = tarball(PKG, "1.6.0", "race");
    let staged = stage(&w, &ci, "1.6.0", &tgz).await;
    let info = tap_required(approve_raw(&w, &w.alice.token, &staged.id, None).await).await;
    let ticket = approve(&w.app, &info, &w.alice.key).await;
    for round in 0..2 {
        let url = w.app.url(&format!("/-/stage/{}/approve", staged.id));
        let sends = (0..4).map(|_| {
            w.app.http.post(&url).bearer_auth(&w.alice.token).header("npm-otp", &ticket.ticket).send()
        });
        let results = released_together(sends).await;
        let mut ok = 0;
        for resp in results {
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            match status {
                StatusCode::OK => ok += 1,
                // The loser finds the ticket spent, or (having looked before the winner
                // committed) the version published.
                StatusCode::FORBIDDEN => {
                    let code = body["error"]["code"].as_str().unwrap_or("");
                    assert!(code == "invalid_ticket" || code == "version_exists", "{body}");
                }
                StatusCode::GONE => assert_eq!(body["error"]["code"], "stage_closed", "{body}"),
                other => panic!("round {round}: {other}: {body}"),
            }
        }
        assert_eq!(ok, if round == 0 { 1 } else { 0 }, "round {round}: exactly one approval publishes");
    }
    assert_eq!(w.versions().await, ["1.0.0", "1.6.0"]);
    // And a put with the same ticket cannot publish the version again either.
    let resp =
        put(&w.app, &w.alice.token, PKG, &publish_body(PKG, "1.6.0", &tgz), Some(&ticket.ticket)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

/// Runs the requests concurrently, each on its own task.
pub async fn released_together<F>(futures: impl Iterator<Item = F>) -> Vec<reqwest::Response>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}

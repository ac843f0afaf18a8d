//! Staging with trusted publishing: CI exchanges its ID token under a trust that may stage, and
//! stages once with the registry token; a maintainer approves with a tap. The token stages once,
//! reads nothing, stages only what its trust allows; removing the trust closes what it staged.
//! Both backends.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_shared::stage::{StageActor, StageState, Staged};

use crate::gate_support::{send, tap_required};
use crate::oidc_world::{OidcWorld, PKG, WORKFLOW};
use crate::publish_support::{approve, publish_body, tarball};
use crate::support::{Backend, backend_tests, expect_error};

backend_tests!(an_oidc_token_stages_once_and_a_maintainer_approves);

async fn stage_with(w: &OidcWorld, bearer: &str, version: &str) -> reqwest::Response {
    let body = publish_body(PKG, version, &tarball(PKG, version, "oidc"));
    send(&w.app, Method::POST, &format!("/-/stage/package/{PKG}"), bearer, Some(&body), None).await
}

async fn token_for(w: &OidcWorld, repository: &str) -> String {
    let claims = w.issuer.claims(w.app.clock_now(), &w.audience(), repository, WORKFLOW);
    w.registry_token(&w.issuer.token(&claims, &json!({}))).await
}

async fn an_oidc_token_stages_once_and_a_maintainer_approves(backend: Backend) {
    let Some(w) = OidcWorld::new(backend, &["oidc", "stage"]).await else { return };
    let stager = json!([{ "type": "github", "claims": { "repository": "acme/stager", "workflow_ref": { "file": WORKFLOW } },
                          "permissions": ["createStagedPackage"] }]);
    let trust = w.trust_as(&w.alice, PKG, &stager).await;
    let trust_id = trust["id"].as_str().unwrap().to_string();
    w.trust().await;

    // A publish-only trust's token does not stage.
    let publisher = token_for(&w, "acme/left-pad").await;
    expect_error(stage_with(&w, &publisher, "1.1.0").await, StatusCode::FORBIDDEN, "outside_ci_scope").await;

    let token = token_for(&w, "acme/stager").await;
    let resp = stage_with(&w, &token, "1.1.0").await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let staged: Staged = serde_json::from_str(&text).unwrap();
    assert_eq!(staged.item.actor_type, StageActor::Oidc);
    assert_eq!(staged.item.credential.as_deref(), Some(trust_id.as_str()));
    assert_eq!(staged.item.actor, "alice", "it acts for the trust's creator");
    // Once: the token is spent by the stage.
    expect_error(stage_with(&w, &token, "1.2.0").await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // It reads no staged release, and publishes nothing.
    let fresh = token_for(&w, "acme/stager").await;
    let listed = send(&w.app, Method::GET, "/-/stage", &fresh, None, None).await;
    expect_error(listed, StatusCode::FORBIDDEN, "forbidden").await;
    let viewed =
        send(&w.app, Method::GET, &format!("/-/stage/{}", staged.stage_id), &fresh, None, None).await;
    expect_error(viewed, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(w.versions().await, ["1.0.0"]);

    // The maintainer approves with a tap: published.
    let path = format!("/-/stage/{}/approve", staged.stage_id);
    let info = tap_required(send(&w.app, Method::POST, &path, &w.alice.token, None, None).await).await;
    let ticket = approve(&w.app, &info, &w.alice.key).await;
    let resp = send(&w.app, Method::POST, &path, &w.alice.token, None, Some(&ticket.ticket)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);

    // What a removed trust staged cannot be approved.
    let resp = stage_with(&w, &fresh, "1.2.0").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let second: Staged = resp.json().await.unwrap();
    let remove = format!("/-/package/{PKG}/trust/{trust_id}");
    // (Removing a trust takes power away: a maintainer's token does it at once.)
    let resp = send(&w.app, Method::DELETE, &remove, &w.alice.token, None, None).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    let path = format!("/-/stage/{}/approve", second.stage_id);
    let resp = send(&w.app, Method::POST, &path, &w.alice.token, None, None).await;
    let message = expect_error(resp, StatusCode::GONE, "stage_closed").await;
    assert!(message.contains("trust"), "{message}");
    let item: Value =
        send(&w.app, Method::GET, &format!("/-/stage/{}", second.stage_id), &w.alice.token, None, None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(item["state"], StageState::Pending.as_str());
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);
}

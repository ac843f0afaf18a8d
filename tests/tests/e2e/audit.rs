//! The audit log: every gate decision is chained; `tapgate audit verify` detects an edited,
//! deleted or reordered entry in the database, and a history rewritten (and re-signed) after it
//! last verified the log.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use tapgate_server::signing::Ed25519Signer;
use tapgate_shared::audit::entry_hash;
use tapgate_tests::process::tapgate_cli;

use crate::gate_support::with_tap;
use crate::lockout::wrong_code;
use crate::publish_support::{maintainer, publish_with_key, tarball};
use crate::support::{Backend, TestApp, backend_tests};

backend_tests!(the_audit_log_records_every_decision_and_detects_tampering);

/// Runs raw SQL on the app's database.
pub async fn sql(app: &TestApp, statement: &str) {
    let db = app.database();
    let statement = sqlx::AssertSqlSafe(statement.to_string());
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `tapgate audit …` against the app with the config directory `cfg`.
fn cli(app: &TestApp, cfg: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["--server", app.base.as_str()];
    all.extend_from_slice(args);
    let (status, out, err) = tapgate_cli(cfg, &all, &[]);
    (status.success(), out, err)
}

async fn sign(app: &TestApp) {
    let signer = Ed25519Signer::load(app.store(), app.state.now()).await.unwrap();
    tapgate_server::audit::sign_heads(&app.state, &signer).await.unwrap();
}

async fn the_audit_log_records_every_decision_and_detects_tampering(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    for v in ["1.0.0", "1.0.1"] {
        let resp = publish_with_key(&app, &alice, "left-pad", v, &tarball("left-pad", v, v)).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    for _ in 0..5 {
        wrong_code(&app, &alice.token, "left-pad", "9.9.9").await;
    }
    let refused = app
        .http
        .put(app.url("/-/package/left-pad/dist-tags/beta"))
        .bearer_auth(&alice.token)
        .json(&"1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::LOCKED);
    let (_, resp) =
        with_tap(&app, Method::POST, "/api/v1/packages/left-pad/unlock", &alice.token, None, &alice.key)
            .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let page: Value = app.get_json("/api/v1/packages/left-pad/audit").await;
    let kinds: Vec<String> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str::<Value>(e["entry"].as_str().unwrap()).unwrap())
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["body"]["action"].as_str().or(e["body"]["failure"].as_str()).unwrap_or("")
            )
        })
        .collect();
    let mut expected = vec!["change.accepted publish".to_string(), "change.accepted publish".into()];
    expected.extend(std::iter::repeat_n("attempt.failed ticket_refused".to_string(), 5));
    expected.push("package.locked ".into());
    expected.push("change.refused dist-tag-set".into());
    expected.push("change.accepted unlock".into());
    assert_eq!(kinds, expected);
    assert!(page["signed_head"].is_null(), "not signed yet");
    // Alice's first key came with her invite; the registry chain records later key changes
    // (none here), and is served for anyone to check.
    let registry: Value = app.get_json("/api/v1/audit/registry").await;
    assert_eq!(registry["chain"], "registry");
    let entries = page["entries"].as_array().unwrap().len();

    sign(&app).await;
    let cfg = tempfile::tempdir().unwrap();
    let (ok, out, err) = cli(&app, cfg.path(), &["audit", "verify", "left-pad"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("ok: {entries} entries of package:left-pad verified")), "{out}");
    assert!(out.contains(&format!("the registry signed entry {entries}")), "{out}");
    let (ok, out, err) = cli(&app, cfg.path(), &["audit", "left-pad"]);
    assert!(ok, "{err}");
    assert!(out.contains("Publish left-pad@1.0.0") && out.contains("LOCKED after 5"), "{out}");

    // The registry rotates its signing key: heads signed with the new one verify too, and the
    // old key stays pinned under its id.
    tapgate_server::signing::rotate(app.store(), app.clock_now()).await.unwrap();
    wrong_code(&app, &alice.token, "left-pad", "9.9.9").await;
    sign(&app).await;
    let (ok, out, err) = cli(&app, cfg.path(), &["audit", "verify", "left-pad"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("the registry signed entry {}", entries + 1)), "{out}");

    let chain = "chain = 'package:left-pad'";
    let first = app.store().audit_entries("package:left-pad", 0, 100).await.unwrap();
    let original = first[0].entry.clone();

    // An edited entry.
    let edited = original.replace("1.0.0", "6.6.6");
    assert_ne!(edited, original);
    sql(&app, &format!("UPDATE audit_log SET entry = {} WHERE {chain} AND seq = 1", quote(&edited))).await;
    let (ok, _, err) = cli(&app, cfg.path(), &["audit", "verify", "left-pad"]);
    assert!(!ok && err.contains("entry 1 was edited"), "{err}");
    sql(&app, &format!("UPDATE audit_log SET entry = {} WHERE {chain} AND seq = 1", quote(&original))).await;
    assert!(cli(&app, cfg.path(), &["audit", "verify", "left-pad"]).0, "restored");

    // A deleted entry.
    let second = &first[1];
    sql(&app, &format!("DELETE FROM audit_log WHERE {chain} AND seq = 2")).await;
    let (ok, _, err) = cli(&app, cfg.path(), &["audit", "verify", "left-pad"]);
    assert!(!ok && err.contains("entry 2 is missing"), "{err}");
    sql(
        &app,
        &format!(
            "INSERT INTO audit_log (chain, seq, at, kind, entry, prev_hash, hash) VALUES ('package:left-pad', 2, {}, {}, {}, {}, {})",
            second.at,
            quote(&second.kind),
            quote(&second.entry),
            quote(&second.prev_hash),
            quote(&second.hash)
        ),
    )
    .await;
    assert!(cli(&app, cfg.path(), &["audit", "verify", "left-pad"]).0, "restored");

    // Two entries swapped.
    let swap = |a: i64, b: i64| {
        format!(
            "UPDATE audit_log SET seq = -1 WHERE {chain} AND seq = {a}; UPDATE audit_log SET seq = {a} WHERE {chain} AND seq = {b}; \
             UPDATE audit_log SET seq = {b} WHERE {chain} AND seq = -1;"
        )
    };
    sql(&app, &swap(3, 4)).await;
    let (ok, _, err) = cli(&app, cfg.path(), &["audit", "verify", "left-pad"]);
    assert!(!ok && err.contains("reordered"), "{err}");
    sql(&app, &swap(3, 4)).await;
    assert!(cli(&app, cfg.path(), &["audit", "verify", "left-pad"]).0, "restored");

    // A rewritten history: entry 1 changed and every hash after it recomputed, the head moved and
    // re-signed with the server's own key, as someone holding the database could.
    let mut prev = tapgate_shared::audit::GENESIS.to_string();
    let mut statements = Vec::new();
    for (i, row) in first.iter().enumerate() {
        let entry = if i == 0 { edited.clone() } else { row.entry.clone() };
        let hash = entry_hash(&prev, &entry);
        statements.push(format!(
            "UPDATE audit_log SET entry = {}, prev_hash = {}, hash = {} WHERE {chain} AND seq = {}",
            quote(&entry),
            quote(&prev),
            quote(&hash),
            row.seq
        ));
        prev = hash;
    }
    statements.push(format!("UPDATE audit_heads SET hash = {} WHERE {chain}", quote(&prev)));
    statements.push(format!("DELETE FROM audit_signed_heads WHERE {chain}"));
    sql(&app, &statements.join(";")).await;
    sign(&app).await;
    let fresh = tempfile::tempdir().unwrap();
    assert!(cli(&app, fresh.path(), &["audit", "verify", "left-pad"]).0, "consistent on its own");
    let (ok, _, err) = cli(&app, cfg.path(), &["audit", "verify", "left-pad"]);
    assert!(!ok && err.contains("was rewritten"), "the client that kept the signed head sees it: {err}");
}

//! The real `tapgate-server` binary.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;
use tapgate_tests::db::TestDb;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli};

/// A start-up failure: non-zero exit, one clear sentence, no panic or backtrace.
fn assert_clean_failure(args: &[&str], data_dir: &std::path::Path, expect: &str) {
    let (status, _stdout, stderr) = server_cli(data_dir, None, args);
    assert!(!status.success(), "should fail: {args:?}");
    let lines: Vec<_> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "one error sentence expected, got:\n{stderr}");
    assert!(lines[0].contains(expect), "expected {expect:?} in {stderr:?}");
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "{bad} in {stderr}");
    }
}

#[test]
fn startup_failures_are_one_clear_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_clean_failure(
        &["--database-url", "postgres://postgres@127.0.0.1:1/nope", "serve", "--listen", "127.0.0.1:0"],
        &data,
        "cannot connect to the database at postgres://postgres@127.0.0.1:1/nope",
    );
    assert_clean_failure(&["--database-url", "mysql://x/y", "serve"], &data, "unsupported database URL");
    assert_clean_failure(
        &["--database-url", "postgres://[oops", "serve"],
        &data,
        "invalid PostgreSQL database URL",
    );
    // A data directory below a regular file cannot be created (root can write anywhere else).
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let (status, _, stderr) = server_cli(&file.join("data"), None, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!status.success());
    assert!(stderr.contains("cannot create data directory"), "{stderr}");
    assert!(!stderr.contains("panicked"));

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_clean_failure(&["serve", "--listen", &addr], &data, &format!("cannot listen on {addr}"));

    let config = dir.path().join("tapgate.toml");
    std::fs::write(&config, "listen = 5\n").unwrap();
    assert_clean_failure(&["--config", config.to_str().unwrap(), "serve"], &data, "invalid config file");
}

#[tokio::test]
async fn serves_on_embedded_default_and_admin_cli_works_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    assert!(data.join("tapgate.db").exists(), "SQLite file in the data directory");
    assert!(server.origin.starts_with("http://localhost:"), "{}", server.origin);

    let (status, stdout, stderr) = server_cli(&data, None, &["user", "add", "alice", "--admin", "--json"]);
    assert!(status.success(), "{stderr}");
    let added: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(added["user"], "alice");
    let invite = added["invite_token"].as_str().unwrap();
    assert!(invite.starts_with("tg_inv_"));
    assert!(added["invite_url"].as_str().unwrap().ends_with(&format!("/enroll?invite={invite}")));
    assert!(!server.log().contains(invite), "secrets never logged");

    let (status, _, stderr) = server_cli(&data, None, &["user", "add", "alice"]);
    assert!(!status.success());
    assert!(stderr.contains("already exists"), "{stderr}");
    let (status, _, stderr) = server_cli(&data, None, &["user", "add", "Not Valid"]);
    assert!(!status.success() && stderr.contains("invalid username"), "{stderr}");

    let (status, token, stderr) =
        server_cli(&data, None, &["token", "issue", "alice", "--scope", "read,admin"]);
    assert!(status.success(), "{stderr}");
    let token = token.trim();
    let http = reqwest::Client::new();
    let who: Value =
        http.get(server.url("/api/v1/whoami")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(who["username"], "alice");
    assert_eq!(who["admin"], true);

    let (status, list, _) = server_cli(&data, None, &["user", "list", "--json"]);
    assert!(status.success());
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["user"], "alice");

    let (status, _, _) = server_cli(&data, None, &["user", "disable", "alice"]);
    assert!(status.success());
    let resp = http.get(server.url("/api/v1/whoami")).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 401, "disabling revokes tokens, seen by the running server");
    assert!(!server.log().contains(token), "tokens never logged");

    let status = tokio::task::spawn_blocking(move || server.terminate()).await.unwrap();
    assert!(status.success(), "graceful shutdown on SIGTERM exits 0: {status:?}");
}

/// Two server processes on one PostgreSQL database work as one registry.
#[tokio::test]
async fn two_instances_share_one_postgres_database() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let opts = ServeOptions { database_url: Some(db.url.clone()), ..Default::default() };
    let a = ServerProcess::start(&db.dir.path().join("a"), &opts);
    let b = ServerProcess::start(&db.dir.path().join("b"), &opts);
    let (status, _, stderr) =
        server_cli(&db.dir.path().join("cli"), Some(&db.url), &["user", "add", "alice"]);
    assert!(status.success(), "{stderr}");
    let (_, token, _) = server_cli(&db.dir.path().join("cli"), Some(&db.url), &["token", "issue", "alice"]);
    let token = token.trim().to_string();
    let http = reqwest::Client::new();
    for server in [&a, &b] {
        let who: Value = http
            .get(server.url("/api/v1/whoami"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(who["username"], "alice");
        assert_eq!(http.get(server.url("/readyz")).send().await.unwrap().status(), 200);
    }
    // A token created on A is listed and revocable on B; the revocation is seen by A.
    let created: Value = http
        .post(a.url("/api/v1/tokens"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "from-a", "scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let list: Value =
        http.get(b.url("/api/v1/tokens")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert!(list["tokens"].as_array().unwrap().iter().any(|t| t["id"] == id));
    assert_eq!(
        http.delete(b.url(&format!("/api/v1/tokens/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let new_secret = created["token"].as_str().unwrap();
    assert_eq!(http.get(a.url("/api/v1/whoami")).bearer_auth(new_secret).send().await.unwrap().status(), 401);
    drop(a);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(http.get(b.url("/readyz")).send().await.unwrap().status(), 200, "B survives A");
}

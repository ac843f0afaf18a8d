//! The real `tapgate-server` admin commands: they work on the server's own database or refuse
//! (never create one), print links for the origin the server serves, and manage users, tokens,
//! keys and invites.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tapgate::authenticator::{self, AuthenticatorChoice};
use tapgate_tests::bins::bin;
use tapgate_tests::db::TestDb;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};

use crate::notify_support::SmtpReceiver;

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// `tapgate-server ARGS` run in `cwd` with no `TAPGATE_*` variable but `env`.
fn server_in(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(bin("tapgate-server"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TAPGATE_")) {
        cmd.env_remove(k);
    }
    cmd.current_dir(cwd).args(args).env("NO_COLOR", "1").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tapgate-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// Run from another directory, or pointed at a directory or database no server made, an admin
/// command refuses with what to do, and creates nothing.
#[tokio::test]
async fn admin_commands_refuse_without_the_servers_database_and_create_none() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    for args in
        [&["user", "add", "alice"][..], &["user", "list"], &["token", "list"], &["key", "list", "alice"]]
    {
        let (ok, stdout, stderr) = server_in(&elsewhere, args, &[]);
        assert!(!ok, "{args:?} must fail: {stdout}");
        assert!(stderr.contains("there is no data directory"), "{stderr}");
        assert!(
            stderr.contains(&elsewhere.join("tapgate-data").display().to_string()),
            "names the path: {stderr}"
        );
        assert!(stderr.contains("TAPGATE_DATA_DIR") && stderr.contains("never create one"), "{stderr}");
        assert!(!stdout.contains("tg_inv_"), "no invite printed");
    }
    assert!(!elsewhere.join("tapgate-data").exists(), "no data directory was created");

    // An existing but empty data directory: no database file appears.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, _, stderr) =
        server_in(dir.path(), &["--data-dir", empty.to_str().unwrap(), "user", "add", "alice"], &[]);
    assert!(!ok);
    assert!(stderr.contains("there is no database file") && stderr.contains("tapgate.db"), "{stderr}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "nothing created in {}", empty.display());

    // The environment names the data directory just as it does for `serve`.
    let data = dir.path().join("served");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let (ok, stdout, stderr) = server_in(
        &elsewhere,
        &["user", "add", "alice", "--json"],
        &[("TAPGATE_DATA_DIR", data.to_str().unwrap())],
    );
    assert!(ok, "{stderr}");
    let invite = json_of(&stdout);
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/keys/registrations"))
        .bearer_auth(invite["invite_token"].as_str().unwrap())
        .json(&json!({ "name": "key" }))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "the running server accepts the invite: {}",
        resp.text().await.unwrap()
    );
    drop(server);

    // A PostgreSQL database no server ran on: refused, and left without tables.
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (status, _, stderr) = server_cli(&dir.path().join("cli"), Some(&db.url), &["user", "add", "alice"]);
    assert!(!status.success());
    assert!(stderr.contains("has no tapgate tables"), "{stderr}");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (tables,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(tables, 0, "the admin command created no tables");
}

/// Invite links carry the origin and port the server serves, whatever this command's own
/// settings say (and it says when they differ); `TAPGATE_LISTEN` is read by admin commands.
#[test]
fn invite_links_use_the_origin_the_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let (ok, stdout, stderr) =
        server_in(dir.path(), &["--data-dir", data.to_str().unwrap(), "user", "add", "alice", "--json"], &[]);
    assert!(ok, "{stderr}");
    let url = json_of(&stdout)["invite_url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/enroll?invite=tg_inv_", server.origin)),
        "{url} vs {}",
        server.origin
    );
    assert_ne!(server.port, 8080, "the test server's port is not the default");
    assert!(!stderr.contains("note:"), "this command's settings name no origin or address: {stderr}");

    let (ok, stdout, stderr) = server_in(
        dir.path(),
        &["--data-dir", data.to_str().unwrap(), "user", "invite", "alice", "--json"],
        &[("TAPGATE_LISTEN", "127.0.0.1:1")],
    );
    assert!(ok, "{stderr}");
    assert!(json_of(&stdout)["invite_url"].as_str().unwrap().starts_with(&server.origin));
    assert!(
        stderr.contains(&format!("with origin {}", server.origin))
            && stderr.contains("not http://localhost:1 "),
        "TAPGATE_LISTEN was read and overridden by what the server serves: {stderr}"
    );
}

/// An IP address as origin is warned about at start-up (and by admin commands); the embedded
/// database, its WAL files and the data directory are private to their owner.
#[test]
fn ip_origins_are_warned_about_and_the_database_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let origin = format!("http://127.0.0.1:{port}");
    let opts = ServeOptions {
        listen: Some(format!("127.0.0.1:{port}")),
        extra_args: vec!["--origin".into(), origin.clone()],
        ..Default::default()
    };
    let server = ServerProcess::start(&data, &opts);
    assert!(
        server.log().contains("is an IP address, which browsers refuse as a WebAuthn relying-party id"),
        "{}",
        server.log()
    );
    let (status, _, stderr) = server_cli(&data, None, &["user", "add", "alice"]);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("warning: the origin") && stderr.contains("IP address"), "{stderr}");

    assert_eq!(mode(&data), 0o700, "data directory");
    for file in ["tapgate.db", "tapgate.db-wal", "tapgate.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    server.terminate();

    // A database left readable by others by an older version is made private at start-up.
    std::fs::set_permissions(data.join("tapgate.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = ServerProcess::start(&data, &ServeOptions::default());
    assert_eq!(mode(&data.join("tapgate.db")), 0o600);
    drop(server);

    // A server that is not on an IP address gives no such warning.
    let other = dir.path().join("other");
    let server = ServerProcess::start(&other, &ServeOptions::default());
    assert!(!server.log().contains("IP address"), "{}", server.log());
}

async fn whoami(server: &ServerProcess, token: &str) -> reqwest::StatusCode {
    reqwest::Client::new().get(server.url("/api/v1/whoami")).bearer_auth(token).send().await.unwrap().status()
}

/// `user disable|enable`, `token list|revoke`, and a new invite voiding the older ones.
#[tokio::test]
async fn users_tokens_and_invites_from_the_admin_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let cli = |args: &[&str]| {
        let (status, out, err) = server_cli(&data, None, args);
        (status.success(), out, err)
    };
    let (_, first, _) = cli(&["user", "add", "alice", "--json"]);
    cli(&["user", "add", "bob"]);
    let issue = |user: &str| cli(&["token", "issue", user, "--json"]).1;
    let a1 = json_of(&issue("alice"));
    let a2 = json_of(&issue("alice"));
    let b1 = json_of(&issue("bob"));

    let (ok, out, err) = cli(&["token", "list", "--json"]);
    assert!(ok, "{err}");
    let all = json_of(&out);
    let ids: Vec<&str> = all.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    for t in [&a1, &a2, &b1] {
        assert!(ids.contains(&t["id"].as_str().unwrap()), "{ids:?}");
    }
    assert!(!out.contains("tg_api_"), "secrets are never listed");
    let (_, out, _) = cli(&["token", "list", "--user", "alice", "--json"]);
    let alices = json_of(&out);
    assert_eq!(alices.as_array().unwrap().len(), 2);
    assert!(alices.as_array().unwrap().iter().all(|t| t["user"] == "alice"));
    let (ok, _, err) = cli(&["token", "list", "--user", "nobody"]);
    assert!(!ok && err.contains("no user named \"nobody\""), "{err}");

    // Revoke by public id: that token stops working at once, the others do not.
    assert_eq!(whoami(&server, a1["token"].as_str().unwrap()).await, 200);
    let (ok, out, err) = cli(&["token", "revoke", a1["id"].as_str().unwrap()]);
    assert!(ok && out.contains("revoked token"), "{err}");
    assert_eq!(whoami(&server, a1["token"].as_str().unwrap()).await, 401);
    assert_eq!(whoami(&server, a2["token"].as_str().unwrap()).await, 200);
    let (ok, _, err) = cli(&["token", "revoke", a1["id"].as_str().unwrap()]);
    assert!(!ok && err.contains("no live token"), "revoking twice is refused: {err}");
    let (ok, _, err) = cli(&["token", "revoke", "tok_doesnotexist"]);
    assert!(!ok && err.contains("no live token"), "{err}");

    // Disable then enable: the tokens revoked on disabling stay revoked.
    let (ok, _, err) = cli(&["user", "disable", "alice"]);
    assert!(ok, "{err}");
    assert_eq!(whoami(&server, a2["token"].as_str().unwrap()).await, 401);
    let (ok, _, err) = cli(&["user", "invite", "alice"]);
    assert!(!ok && err.contains("user enable alice"), "{err}");
    let (ok, out, err) = cli(&["user", "enable", "alice"]);
    assert!(ok && out.contains("enabled alice"), "{err}");
    assert_eq!(whoami(&server, a2["token"].as_str().unwrap()).await, 401, "old tokens stay revoked");
    let (_, out, _) = cli(&["user", "list", "--json"]);
    let users = json_of(&out);
    let alice = users.as_array().unwrap().iter().find(|u| u["user"] == "alice").unwrap();
    assert_eq!(alice["disabled"], false);
    let fresh = json_of(&issue("alice"));
    assert_eq!(whoami(&server, fresh["token"].as_str().unwrap()).await, 200);
    let (ok, _, err) = cli(&["user", "enable", "nobody"]);
    assert!(!ok && err.contains("no user named"), "{err}");

    // A new invite voids the older unused one: it is refused with invalid_invite.
    let first = json_of(&first)["invite_token"].as_str().unwrap().to_string();
    let (_, second, _) = cli(&["user", "invite", "alice", "--json"]);
    let second = json_of(&second)["invite_token"].as_str().unwrap().to_string();
    let begin = |invite: String| {
        let url = server.url("/api/v1/keys/registrations");
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .bearer_auth(invite)
                .json(&json!({ "name": "key" }))
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = begin(first).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_invite", "{body}");
    let (status, body) = begin(second).await;
    assert!(status.is_success(), "the newest invite works: {body}");
}

/// `key revoke`: the key can no longer sign in, the registry's audit chain records it, and the
/// user is alerted by email, delivered by the running server from the outbox the CLI wrote.
#[tokio::test]
async fn an_operator_revokes_a_lost_key_audited_and_notified() {
    let smtp = SmtpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("cfg");
    let key_path = dir.path().join("main.key");
    authenticator::open(&AuthenticatorChoice::Soft(key_path.clone())).unwrap();
    let key = format!("soft:{}", key_path.display());
    let opts = ServeOptions { extra_args: vec!["--smtp-url".into(), smtp.url()], ..Default::default() };
    let server = ServerProcess::start(&data, &opts);
    let registry = server.origin.clone();
    let (_, added, _) = server_cli(&data, None, &["user", "add", "alice", "--json"]);
    let invite_url = json_of(&added)["invite_url"].as_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["--server", registry.as_str(), "--authenticator", key.as_str()];
        all.extend_from_slice(args);
        tapgate_cli(&cfg, &all, &[])
    };
    let (status, _, err) = run(&["key", "add", "--invite", &invite_url, "--name", "lost key"]);
    assert!(status.success(), "{err}");

    // alice's verified alert address.
    let (_, token, _) = server_cli(&data, None, &["token", "issue", "alice"]);
    let http = reqwest::Client::new();
    let resp = http
        .put(server.url("/api/v1/user/email"))
        .bearer_auth(token.trim())
        .json(&json!({ "email": "alice@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let link = wait_for_mail(&smtp, "alice@example.com", 1)
        .await
        .pop()
        .unwrap()
        .body()
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/-/email/verify/"))
        .unwrap()
        .to_string();
    assert_eq!(http.get(link.replace(&server.origin, &server.base)).send().await.unwrap().status(), 200);

    let (_, out, _) = server_cli(&data, None, &["key", "list", "alice", "--json"]);
    let keys = json_of(&out);
    let key_id = keys[0]["id"].as_str().unwrap().to_string();
    assert_eq!(keys[0]["suspended_at"], Value::Null);
    let (status, _, err) = server_cli(&data, None, &["key", "revoke", "bob", &key_id]);
    assert!(!status.success() && err.contains("no user named"), "{err}");
    let (status, out, err) =
        server_cli(&data, None, &["key", "revoke", "alice", &key_id, "--reason", "left on a train"]);
    assert!(status.success(), "{err}");
    assert!(out.contains("no usable key left") && out.contains("user invite alice"), "{out}");
    let (status, _, err) = server_cli(&data, None, &["key", "revoke", "alice", &key_id]);
    assert!(!status.success() && err.contains("already suspended"), "{err}");

    let (status, _, err) = run(&["login", "--username", "alice"]);
    assert!(!status.success(), "a revoked key signs in no more: {err}");

    let chain: Value =
        http.get(server.url("/api/v1/audit/registry")).send().await.unwrap().json().await.unwrap();
    let revoked: Vec<Value> = chain["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json_of(e["entry"].as_str().unwrap()))
        .filter(|e| e["kind"] == "key.revoked")
        .collect();
    assert_eq!(revoked.len(), 1, "{chain}");
    let text = revoked[0].to_string();
    assert!(
        text.contains(&key_id) && text.contains("left on a train") && text.contains("operator"),
        "{text}"
    );

    let mails = wait_for_mail(&smtp, "alice@example.com", 2).await;
    let alert = mails.last().unwrap();
    assert!(alert.subject().contains("was revoked by an operator"), "{}", alert.subject());
    assert!(alert.body().contains("left on a train") && alert.body().contains(&key_id), "{}", alert.body());
}

async fn wait_for_mail(smtp: &SmtpReceiver, to: &str, count: usize) -> Vec<crate::notify_support::Mail> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mails = smtp.to(to);
        if mails.len() >= count {
            return mails;
        }
        assert!(Instant::now() < deadline, "{count} mail(s) to {to} expected, got {}", mails.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A change a key approved before an operator revoked it does not commit: the ticket from that
/// tap is refused, and nothing is published.
#[test]
fn a_revoked_keys_approval_no_longer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    let key = crate::cli_publish::cli_user(&data, &registry, dir.path(), "carol");
    let cfg = dir.path().join("carol");
    let token = std::fs::read_to_string(cfg.join("credentials.json")).unwrap();
    let token = json_of(&token)["registries"][&registry]["token"].as_str().unwrap().to_string();
    let tgz = crate::publish_details::package_tgz(
        &json!({ "name": "gadget", "version": "1.0.0" }),
        &[("index.js".into(), "1\n".into())],
    );
    let body = crate::publish_support::publish_body("gadget", "1.0.0", &tgz);
    let http = reqwest::blocking::Client::new();
    let resp = http.put(server.url("/gadget")).bearer_auth(&token).json(&body).send().unwrap();
    assert_eq!(resp.status(), 401);
    let challenge: Value = resp.json().unwrap();
    let auth_url = challenge["authUrl"].as_str().unwrap();
    let args =
        ["--server", registry.as_str(), "--authenticator", key.as_str(), "approve", auth_url, "--json"];
    let (status, out, err) = tapgate_cli(&cfg, &args, &[]);
    assert!(status.success(), "{err}");
    let code = json_of(&out)["code"].as_str().unwrap().to_string();

    let (_, out, _) = server_cli(&data, None, &["key", "list", "carol", "--json"]);
    let key_id = json_of(&out)[0]["id"].as_str().unwrap().to_string();
    let (status, _, err) = server_cli(&data, None, &["key", "revoke", "carol", &key_id]);
    assert!(status.success(), "{err}");

    let resp = http
        .put(server.url("/gadget"))
        .bearer_auth(&token)
        .header("npm-otp", &code)
        .json(&body)
        .send()
        .unwrap();
    let status = resp.status();
    let refusal: Value = resp.json().unwrap();
    assert!(status.is_client_error(), "{status} {refusal}");
    assert_eq!(refusal["error"]["code"], "invalid_ticket", "{refusal}");
    assert!(refusal["error"]["message"].as_str().unwrap().contains("suspended"), "{refusal}");
    assert_eq!(http.get(server.url("/gadget")).send().unwrap().status(), 404, "nothing was published");
}

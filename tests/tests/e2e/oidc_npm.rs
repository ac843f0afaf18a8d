//! Trusted publishing with the real npm 11: `npm trust github` creates the trust behind a tap
//! (npm's web flow under a terminal, approved with `tapgate approve`), `npm trust list` shows
//! it, then npm's own OIDC path in "GitHub Actions" (`GITHUB_ACTIONS`, `NPM_ID_TOKEN`, as npm's
//! lib/utils/oidc.js reads them) exchanges the ID token and publishes without any token of
//! alice's. `tapgate verify` checks the publish offline and refuses an edited record. Both
//! backends.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection;
use tapgate_tests::npm::Npm;
use tapgate_tests::process::tapgate_cli;
use tapgate_tests::tools::npm_available;

use crate::cli_publish::package_dir;
use crate::oidc_world::{OidcWorld, PKG, REPO, WORKFLOW};
use crate::support::{Backend, TestApp, backend_tests};

backend_tests!(
    npm_trust_github_then_npm_publish_through_oidc_and_tapgate_verify,
    tapgate_trust_add_list_remove_for_a_self_hosted_issuer,
);

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Runs raw SQL on the app's database.
async fn sql(app: &TestApp, statement: String) {
    let db = app.database();
    let statement = sqlx::AssertSqlSafe(statement);
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

/// `npm ARGS` in `dir` as CI runs it: no terminal, npm's own user config, and `env`.
fn npm_ci(npm: &Npm, dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("npm");
    cmd.args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .env("npm_config_userconfig", &npm.userconfig)
        .env("npm_config_cache", &npm.cache)
        .env("npm_config_registry", format!("{}/", npm.registry))
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false")
        .env("NO_COLOR", "1")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .env_remove("GITLAB_CI")
        .env_remove("CIRCLECI");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run npm")
}

async fn npm_trust_github_then_npm_publish_through_oidc_and_tapgate_verify(backend: Backend) {
    if !npm_available() {
        return;
    }
    let Some(w) = OidcWorld::new(backend, &["oidc"]).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let server = w.app.origin.clone();
    let cfg = root.join("alice-cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let saved = json!({ "registries": { &server: { "token": w.alice.token, "username": "alice" } } });
    std::fs::write(cfg.join("credentials.json"), saved.to_string()).unwrap();
    let key = format!("soft:{}", w.alice.key.path.display());
    let alice = {
        let (cfg, server, key) = (cfg.clone(), server.clone(), key.clone());
        move |args: &[&str]| {
            let mut all = vec!["--server", server.as_str(), "--authenticator", key.as_str()];
            all.extend_from_slice(args);
            tapgate_cli(&cfg, &all, &[])
        }
    };

    // alice: `npm trust github` on a terminal; the registry asks for a tap, she approves it.
    let npm = Npm::new(&root, &server);
    npm.set_token(&w.alice.token);
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (npm, screen) = blocking({
        let (work, server, alice) = (work.clone(), server.clone(), alice.clone());
        move || {
            let args = [
                "trust",
                "github",
                PKG,
                "--file",
                WORKFLOW,
                "--repository",
                REPO,
                "--allow-publish",
                "--yes",
            ];
            let tty = npm.spawn_tty(&work, &args);
            let url = tty.wait_for_url(&format!("{server}/approve/apr_"), Duration::from_secs(60));
            let (status, out, err) = alice(&["approve", &url]);
            assert!(status.success(), "tapgate approve: {err}");
            assert!(err.contains("Trust CI ID tokens from"), "the trust is shown before the tap: {err}");
            assert!(out.contains("Approved"), "{out}");
            let (ok, screen) = tty.wait(Duration::from_secs(60));
            assert!(ok, "npm trust github failed:\n{screen}");
            (npm, screen)
        }
    })
    .await;
    assert!(screen.contains("Trust configuration created successfully"), "{screen}");
    let trusts = w.trusts(&w.alice, PKG).await;
    assert_eq!(trusts.len(), 1);
    assert_eq!(trusts[0]["claims"], json!({ "repository": REPO, "workflow_ref": { "file": WORKFLOW } }));
    let list = blocking({
        let work = work.clone();
        move || {
            let out = npm.run(&work, &["trust", "list", PKG]);
            assert!(out.status.success(), "npm trust list: {}", String::from_utf8_lossy(&out.stderr));
            (npm, String::from_utf8_lossy(&out.stdout).to_string())
        }
    })
    .await;
    let (npm, listed) = list;
    assert!(listed.contains(REPO) && listed.contains(WORKFLOW), "{listed}");

    // CI: no token of alice's; npm's OIDC path exchanges the ID token GitHub would give it.
    std::fs::write(&npm.userconfig, format!("registry={server}/\n")).unwrap();
    let id_token = w.token(&json!({}));
    let pkg = package_dir(&root, PKG, "1.1.0", "module.exports = 'oidc';\n");
    let out = blocking({
        let pkg = pkg.clone();
        let id_token = id_token.clone();
        move || {
            npm_ci(
                &npm,
                &pkg,
                &["publish"],
                &[("GITHUB_ACTIONS", "true"), ("CI", "true"), ("NPM_ID_TOKEN", &id_token)],
            )
        }
    })
    .await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "npm publish through OIDC: {err}");
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);
    assert!(
        !std::fs::read_to_string(root.join("npmrc")).unwrap().contains("tg_oidc_"),
        "npm keeps it in memory"
    );

    // Offline verification with the maintainers' keys and the registry's pinned keys.
    let keys_file = root.join("tapgate-keys.json");
    let pinned: Value = w.app.get_json("/.well-known/tapgate-keys").await;
    std::fs::write(&keys_file, pinned.to_string()).unwrap();
    let keyring = root.join("keyring");
    let verify = {
        let (keyring, keys_file, alice) = (keyring.clone(), keys_file.clone(), alice.clone());
        move || {
            let (k, s) = (keyring.to_str().unwrap().to_string(), keys_file.to_str().unwrap().to_string());
            alice(&["verify", "left-pad@1.1.0", "--keyring", &k, "--server-key", &s])
        }
    };
    let (status, out, err) = blocking({
        let (alice, keyring, verify) = (alice.clone(), keyring.clone(), verify.clone());
        move || {
            let (s, _, e) =
                alice(&["keyring", "export", PKG, "--package", "--output", keyring.to_str().unwrap()]);
            assert!(s.success(), "{e}");
            verify()
        }
    })
    .await;
    assert!(status.success(), "tapgate verify: {out}{err}");
    assert!(out.contains("published by CI with an OIDC ID token"), "{out}");
    assert!(out.contains("not pinned"), "the issuer key is reported as what it is: {out}");

    // The registry (or whoever holds its database) edits the record: verification fails.
    let record: Value = w.app.get_json(&format!("/api/v1/packages/{PKG}/versions/1.1.0/approval")).await;
    let statement = record["oidc_publish"].as_str().unwrap();
    let (payload, sig) = statement.split_once('.').unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut p: Value = serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
    let other_claims = w.issuer.claims(w.app.clock_now(), "npm:localhost", "evil/left-pad", WORKFLOW);
    p["id_token"] = json!(w.issuer.token(&other_claims, &json!({})));
    let edited = format!("{}.{sig}", b64.encode(serde_json::to_vec(&p).unwrap()));
    sql(&w.app, format!("UPDATE oidc_tokens SET statement = '{edited}' WHERE version = '1.1.0'")).await;
    let (status, out, err) = blocking(verify).await;
    assert!(!status.success(), "an edited record must fail: {out}");
    assert!(out.contains("FAIL") && err.contains("failed"), "{out}{err}");
}

/// `tapgate trust add|list|remove` for an issuer npm has no shortcut for (a self-hosted Forgejo,
/// configured by the operator with the claims it requires).
async fn tapgate_trust_add_list_remove_for_a_self_hosted_issuer(backend: Backend) {
    let forgejo = crate::oidc_support::TestIssuer::start().await;
    let configured = tapgate_server::oidc::Issuer::new(
        "forgejo".into(),
        forgejo.url.clone(),
        tapgate_server::oidc::IssuerKind::Generic,
        vec!["repository".into(), "ref".into()],
        Some(forgejo.ca_pem.as_bytes()),
    )
    .unwrap();
    let Some(w) = OidcWorld::with(backend, &["oidc"], move |c| c.oidc.issuers.push(configured)).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("alice-cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let server = w.app.origin.clone();
    let saved = json!({ "registries": { &server: { "token": w.alice.token, "username": "alice" } } });
    std::fs::write(cfg.join("credentials.json"), saved.to_string()).unwrap();
    let key = format!("soft:{}", w.alice.key.path.display());
    let alice = move |args: Vec<String>| {
        let mut all = vec!["--server".to_string(), server.clone(), "--authenticator".into(), key.clone()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        tapgate_cli(&cfg, &refs, &[])
    };
    let run = |args: &[&str]| {
        let alice = alice.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        blocking(move || alice(args))
    };
    let (status, out, err) = run(&["trust", "issuers"]).await;
    assert!(
        status.success() && out.contains("forgejo (generic)") && out.contains("repository, ref"),
        "{out}{err}"
    );
    // Missing a claim the operator requires: refused before any tap.
    let (status, _, err) =
        run(&["trust", "add", PKG, "--issuer", "forgejo", "--claim", "repository=acme/left-pad"]).await;
    assert!(!status.success() && err.contains("ref"), "{err}");
    let (status, out, err) = run(&[
        "--json",
        "trust",
        "add",
        PKG,
        "--issuer",
        "forgejo",
        "--claim",
        "repository=acme/left-pad",
        "--claim",
        "ref=refs/tags/v1.1.0",
    ])
    .await;
    assert!(status.success(), "tapgate trust add: {err}");
    assert!(err.contains("Trust CI ID tokens from"), "shown before the tap: {err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let id = created[0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("trust_"), "{out}");
    let (status, out, _) = run(&["trust", "list", PKG]).await;
    assert!(status.success() && out.contains(&id) && out.contains("forgejo"), "{out}");

    // Forgejo's token with those claims publishes; one for another ref does not.
    let now = w.app.clock_now();
    let claims = json!({
        "iss": forgejo.url, "aud": "npm:localhost", "sub": "repo:acme/left-pad:ref:refs/tags/v1.1.0",
        "repository": "acme/left-pad", "ref": "refs/tags/v1.1.0", "jti": "forgejo-1", "iat": now, "exp": now + 300,
    });
    let wrong_ref = forgejo.token(&claims, &json!({"ref": "refs/heads/main", "jti": "forgejo-2"}));
    crate::support::expect_error(
        w.exchange(&wrong_ref).await,
        reqwest::StatusCode::UNAUTHORIZED,
        "oidc_no_matching_trust",
    )
    .await;
    let token = w.registry_token(&forgejo.token(&claims, &json!({}))).await;
    let tgz = crate::publish_support::tarball(PKG, "1.1.0", "forgejo");
    let resp = w.publish(&token, "1.1.0", &tgz).await;
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED, "{}", resp.text().await.unwrap());

    let (status, out, err) = run(&["trust", "remove", PKG, &id]).await;
    assert!(status.success() && out.contains("Removed"), "{out}{err}");
    let again = forgejo.token(&claims, &json!({"jti": "forgejo-3"}));
    crate::support::expect_error(
        w.exchange(&again).await,
        reqwest::StatusCode::UNAUTHORIZED,
        "oidc_no_matching_trust",
    )
    .await;
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);
}

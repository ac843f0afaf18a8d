//! npm's whole write surface against the real server binary, with the real npm 11 under a
//! pseudo-terminal: every write on a protected package asks for a tap (approved here with
//! `tapgate approve`, checked against what the key signs), npm waits on the done URL and repeats
//! its request with the ticket. Without a terminal npm cannot wait: it must fail and change
//! nothing. Runs on SQLite and PostgreSQL.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tapgate::authenticator::{self, AuthenticatorChoice};
use tapgate_tests::db::{Backend, TestDb};
use tapgate_tests::npm::Npm;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};
use tapgate_tests::tools::npm_available;

use crate::cli_publish::package_dir;

#[test]
fn npm_write_commands_through_the_gate_on_sqlite() {
    npm_write_commands_through_the_gate(Backend::Sqlite);
}

#[test]
fn npm_write_commands_through_the_gate_on_postgres() {
    npm_write_commands_through_the_gate(Backend::Postgres);
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

struct World {
    server: ServerProcess,
    registry: String,
    cfg: std::path::PathBuf,
    key: String,
    npm: Npm,
    root: std::path::PathBuf,
}

impl World {
    fn tapgate(&self, args: &[&str]) -> (std::process::ExitStatus, String, String) {
        let mut all = vec!["--server", self.registry.as_str(), "--authenticator", self.key.as_str()];
        all.extend_from_slice(args);
        tapgate_cli(&self.cfg, &all, &[])
    }

    /// Runs `npm ARGS` on a terminal; approves the change it asks for with `tapgate approve`
    /// (checking the change shown contains `shown`); returns npm's screen.
    fn npm_with_tap(&self, dir: &Path, args: &[&str], shown: &str) -> String {
        let npm = self.npm.spawn_tty(dir, args);
        let url = npm.wait_for_url(&format!("{}/approve/apr_", self.registry), Duration::from_secs(60));
        let (status, out, err) = self.tapgate(&["approve", &url]);
        assert!(status.success(), "tapgate approve for npm {args:?}: {err}");
        assert!(err.contains(shown), "the change shown before the tap: {err}");
        assert!(out.contains("Approved"), "{out}");
        let (ok, screen) = npm.wait(Duration::from_secs(60));
        assert!(ok, "npm {args:?} failed:\n{screen}");
        assert!(!screen.contains("[object Object]"), "{screen}");
        screen
    }

    /// `npm ARGS` without a terminal: npm cannot wait for the tap, so it must fail.
    fn npm_refused(&self, args: &[&str]) -> String {
        let out = self.npm.run(&self.root, args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "npm {args:?} must fail without the tap:\n{err}");
        assert!(!err.contains("[object Object]"), "{err}");
        err
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::blocking::get(self.server.url(path)).unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    fn tags(&self) -> Value {
        self.get("/-/package/gated-pkg/dist-tags").1
    }
}

fn npm_write_commands_through_the_gate(backend: Backend) {
    if !npm_available() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(TestDb::new(backend)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database_url = (backend == Backend::Postgres).then(|| db.url.clone());
    let opts = ServeOptions { database_url: database_url.clone(), ..ServeOptions::default() };
    let server = ServerProcess::start(&data, &opts);
    let registry = server.origin.clone();
    let db_url = database_url.as_deref();
    let cfg = dir.path().join("cfg");
    let key_path = dir.path().join("alice.key");
    authenticator::open(&AuthenticatorChoice::Soft(key_path.clone())).unwrap();
    let w = World {
        key: format!("soft:{}", key_path.display()),
        npm: Npm::new(dir.path(), &registry),
        root: dir.path().to_path_buf(),
        server,
        registry: registry.clone(),
        cfg,
    };
    let (_, out, _) = server_cli(&data, db_url, &["--origin", &registry, "user", "add", "alice", "--json"]);
    let invite = json(&out)["invite_url"].as_str().unwrap().to_string();
    assert!(w.tapgate(&["key", "add", "--invite", &invite, "--name", "k"]).0.success());
    assert!(w.tapgate(&["login", "-u", "alice"]).0.success());
    let (status, _, err) = server_cli(&data, db_url, &["user", "add", "bob"]);
    assert!(status.success(), "{err}");
    // npm holds a token of alice's. It identifies her; it is never evidence for a change.
    let creds: Value = json(&std::fs::read_to_string(w.cfg.join("credentials.json")).unwrap());
    let token = creds["registries"][&registry]["token"].as_str().unwrap().to_string();
    w.npm.set_token(&token);

    // Two versions, published with `tapgate publish` (1.1.0 is latest).
    for (version, body) in [("1.0.0", "one"), ("1.1.0", "two")] {
        let pkg = package_dir(dir.path(), "gated-pkg", version, body);
        let (status, _, err) = w.tapgate(&["publish", pkg.to_str().unwrap()]);
        assert!(status.success(), "{err}");
    }
    assert_eq!(w.tags()["latest"], "1.1.0");

    // npm dist-tag: without the tap nothing moves; npm prints where to approve, in words.
    let err = w.npm_refused(&["dist-tag", "add", "gated-pkg@1.0.0", "latest"]);
    assert!(err.contains("EOTP") && err.contains("/approve/apr_"), "{err}");
    assert_eq!(w.tags()["latest"], "1.1.0", "nothing moved");
    let screen = w.npm_with_tap(
        &w.root,
        &["dist-tag", "add", "gated-pkg@1.0.0", "latest"],
        "Move `latest` of gated-pkg from 1.1.0 to 1.0.0",
    );
    assert!(screen.contains("+latest: gated-pkg@1.0.0"), "{screen}");
    assert_eq!(w.tags()["latest"], "1.0.0");
    w.npm_with_tap(
        &w.root,
        &["dist-tag", "add", "gated-pkg@1.1.0", "beta"],
        "Point the new tag `beta` of gated-pkg at 1.1.0",
    );
    assert_eq!(w.tags()["beta"], "1.1.0");
    let screen = w.npm_with_tap(
        &w.root,
        &["dist-tag", "rm", "gated-pkg", "beta"],
        "Remove the tag `beta` of gated-pkg",
    );
    assert!(screen.contains("-beta: gated-pkg@1.1.0"), "{screen}");
    let out = w.npm.run(&w.root, &["dist-tag", "ls", "gated-pkg"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "latest: 1.0.0");

    // npm deprecate, and lifting it with "".
    w.npm_refused(&["deprecate", "gated-pkg@1.0.0", "use 1.1"]);
    assert!(w.get("/gated-pkg/1.0.0").1.get("deprecated").is_none(), "nothing deprecated");
    w.npm_with_tap(
        &w.root,
        &["deprecate", "gated-pkg@1.0.0", "use 1.1"],
        "Deprecate gated-pkg@1.0.0 with the message \"use 1.1\"",
    );
    assert_eq!(w.get("/gated-pkg/1.0.0").1["deprecated"], "use 1.1");
    let out = w.npm.run(&w.root, &["view", "gated-pkg@1.0.0", "deprecated"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "use 1.1");
    w.npm_with_tap(&w.root, &["deprecate", "gated-pkg@1.0.0", ""], "Lift the deprecation of gated-pkg@1.0.0");
    assert!(w.get("/gated-pkg/1.0.0").1.get("deprecated").is_none());

    // npm owner add|rm.
    let out = w.npm.run(&w.root, &["owner", "add", "bob", "gated-pkg"]);
    assert!(!out.status.success(), "no terminal, no tap: refused");
    w.npm_with_tap(&w.root, &["owner", "add", "bob", "gated-pkg"], "Make bob a maintainer of gated-pkg");
    let out = w.npm.run(&w.root, &["owner", "ls", "gated-pkg"]);
    let owners = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(owners.contains("alice") && owners.contains("bob"), "{owners}");
    w.npm_with_tap(
        &w.root,
        &["owner", "rm", "bob", "gated-pkg"],
        "Remove bob from the maintainers of gated-pkg",
    );
    let out = w.npm.run(&w.root, &["owner", "ls", "gated-pkg"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("bob"));

    // npm unpublish one version: gone for installers, the number never comes back.
    w.npm_refused(&["unpublish", "gated-pkg@1.1.0"]);
    assert_eq!(w.get("/gated-pkg/1.1.0").0, 200, "still served");
    let screen = w.npm_with_tap(&w.root, &["unpublish", "gated-pkg@1.1.0"], "Unpublish gated-pkg@1.1.0");
    assert!(screen.contains("- gated-pkg@1.1.0"), "{screen}");
    assert_eq!(w.get("/gated-pkg/1.1.0").0, 404);
    assert_eq!(w.get("/gated-pkg/-/gated-pkg-1.1.0.tgz").0, 404);
    let out = w.npm.run(&w.root, &["view", "gated-pkg", "versions", "--json"]);
    assert_eq!(json(String::from_utf8_lossy(&out.stdout).trim()), serde_json::json!(["1.0.0"]));
    let again = package_dir(&dir.path().join("again"), "gated-pkg", "1.1.0", "three");
    let (status, _, err) = w.tapgate(&["publish", again.to_str().unwrap()]);
    assert!(!status.success() && err.contains("never reused"), "{err}");

    // npm token list|revoke: a second token is listed and revoked; it stops working.
    let http = reqwest::blocking::Client::new();
    let spare: Value = http
        .post(w.server.url("/api/v1/tokens"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "spare", "scopes": ["read"]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let out = w.npm.run(&w.root, &["token", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && listed.contains("spare"),
        "{listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = w.npm.run(&w.root, &["token", "revoke", spare["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removed 1 token"));
    let who =
        http.get(w.server.url("/-/whoami")).bearer_auth(spare["token"].as_str().unwrap()).send().unwrap();
    assert_eq!(who.status(), 401);

    // npm unpublish --force: every version; the name stays alice's.
    w.npm_refused(&["unpublish", "gated-pkg", "--force"]);
    assert_eq!(w.get("/gated-pkg").0, 200);
    let screen =
        w.npm_with_tap(&w.root, &["unpublish", "gated-pkg", "--force"], "Unpublish all of gated-pkg");
    assert!(screen.contains("- gated-pkg"), "{screen}");
    assert_eq!(w.get("/gated-pkg").0, 404);
    assert_eq!(
        w.get("/api/v1/packages/gated-pkg/maintainers").1["maintainers"],
        serde_json::json!(["alice"])
    );

    // A first publish prints no notice of the 404 npm probes with, nor of npm's update check.
    let fresh = package_dir(dir.path(), "fresh-pkg", "1.0.0", "fresh");
    let out = w.npm.run(&fresh, &["publish"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("EOTP"), "needs the tap: {err}");
    assert!(!err.contains("is not in this registry"), "no 404 notice: {err}");

    // npm logout revokes the token on the registry.
    let out = w.npm.run(&w.root, &["logout"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let who = http.get(w.server.url("/-/whoami")).bearer_auth(&token).send().unwrap();
    assert_eq!(who.status(), 401, "the logged-out token is revoked");
    for secret in [token.as_str(), spare["token"].as_str().unwrap()] {
        assert!(!w.server.log().contains(secret), "a token reached the server log");
    }
    drop(db);
}

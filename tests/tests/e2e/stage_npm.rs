//! Staging with the real tools: CI runs npm 11's `npm stage publish` with its CI credential
//! (no terminal, no second factor); the maintainer lists, views and downloads it with npm, and
//! approves it with `npm stage approve` (npm's web flow, the tap given with `tapgate approve`);
//! `tapgate ci stage` stages, `npm stage reject` rejects while `tapgate stage wait` reports
//! it; `tapgate stage approve` publishes after checking the bytes itself. Both backends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tapgate_shared::intent::sri_sha512;
use tapgate_tests::npm::Npm;
use tapgate_tests::process::tapgate_cli;
use tapgate_tests::tools::npm_available;

use crate::cli_publish::package_dir;
use crate::deploy_keys_support::{PKG, World};
use crate::support::{Backend, TestApp, backend_tests};

backend_tests!(npm_stages_and_maintainers_decide_with_npm_and_tapgate);

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// The tools, as alice and as CI.
#[derive(Clone)]
struct Tools {
    server: String,
    root: PathBuf,
    alice_cfg: PathBuf,
    alice_key: String,
    credential: String,
}

impl Tools {
    fn alice(&self, args: &[&str]) -> (std::process::ExitStatus, String, String) {
        let mut all = vec!["--server", self.server.as_str(), "--authenticator", self.alice_key.as_str()];
        all.extend_from_slice(args);
        tapgate_cli(&self.alice_cfg, &all, &[])
    }

    fn ci(&self, args: &[&str]) -> (std::process::ExitStatus, String, String) {
        let mut all = vec!["--server", self.server.as_str()];
        all.extend_from_slice(args);
        tapgate_cli(&self.root.join("ci-cfg"), &all, &[("TAPGATE_CI_TOKEN", self.credential.as_str())])
    }

    fn npm(&self, who: &str, token: &str) -> Npm {
        let dir = self.root.join(format!("npm-{who}"));
        std::fs::create_dir_all(&dir).unwrap();
        let npm = Npm::new(&dir, &self.server);
        npm.set_token(token);
        npm
    }

    /// `npm ARGS` on a terminal as `npm`'s user; alice approves the tap npm asks for with
    /// `tapgate approve`, which must show `shown`; returns npm's screen.
    fn npm_with_tap(&self, npm: &Npm, dir: &Path, args: &[&str], shown: &str) -> String {
        let tty = npm.spawn_tty(dir, args);
        let url = tty.wait_for_url(&format!("{}/approve/apr_", self.server), Duration::from_secs(60));
        let (status, out, err) = self.alice(&["approve", &url]);
        assert!(status.success(), "tapgate approve for npm {args:?}: {err}");
        assert!(err.contains(shown), "the change shown before the tap: {err}");
        assert!(out.contains("Approved"), "{out}");
        let (ok, screen) = tty.wait(Duration::from_secs(60));
        assert!(ok, "npm {args:?} failed:\n{screen}");
        screen
    }
}

/// The stage id npm printed: `+ name@version (staged with id ID)`.
fn staged_id(out: &str) -> String {
    let start = out.find("(staged with id ").unwrap_or_else(|| panic!("no stage id in {out:?}")) + 16;
    out[start..].chars().take_while(|c| *c != ')').collect()
}

async fn npm_stages_and_maintainers_decide_with_npm_and_tapgate(backend: Backend) {
    if !npm_available() {
        return;
    }
    let Some(app) = TestApp::new(backend).await else { return };
    let w = World::new(app, &["stage"]).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let alice_cfg = root.join("alice-cfg");
    std::fs::create_dir_all(&alice_cfg).unwrap();
    let saved = serde_json::json!({ "registries": { &w.app.origin: { "token": w.alice.token, "username": "alice" } } });
    std::fs::write(alice_cfg.join("credentials.json"), saved.to_string()).unwrap();
    let tools = Tools {
        server: w.app.origin.clone(),
        root: root.clone(),
        alice_cfg,
        alice_key: format!("soft:{}", w.alice.key.path.display()),
        credential: w.any_credential("ci_00000000000000000031").await,
    };
    let alice_token = w.alice.token.clone();

    // CI: `npm stage publish` with the CI credential as npm's token, no terminal.
    let (id, tgz) = blocking({
        let tools = tools.clone();
        move || {
            let pkg = package_dir(&tools.root, PKG, "1.1.0", "module.exports = 'staged';\n");
            let npm = tools.npm("ci", &tools.credential);
            let out = npm.run(&pkg, &["stage", "publish"]);
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(out.status.success(), "npm stage publish: {}", String::from_utf8_lossy(&out.stderr));
            let packed = npm.run(&pkg, &["pack", "--json"]);
            let listing = json(&String::from_utf8_lossy(&packed.stdout));
            let tgz = std::fs::read(pkg.join(listing[0]["filename"].as_str().unwrap())).unwrap();
            (staged_id(&stdout), tgz)
        }
    })
    .await;
    assert_eq!(w.versions().await, ["1.0.0"], "staging serves nothing");

    // alice: npm stage list, view, download.
    blocking({
        let (tools, id, token, tgz) = (tools.clone(), id.clone(), alice_token.clone(), tgz.clone());
        move || {
            let npm = tools.npm("alice", &token);
            let listed = npm.run(&tools.root, &["stage", "list", "--json"]);
            assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
            let listed = json(&String::from_utf8_lossy(&listed.stdout));
            assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
            assert_eq!(
                (listed[0]["packageName"].as_str(), listed[0]["actorType"].as_str()),
                (Some(PKG), Some("ci-credential"))
            );
            let viewed = npm.run(&tools.root, &["stage", "view", &id, "--json"]);
            let viewed = json(&String::from_utf8_lossy(&viewed.stdout));
            assert_eq!(
                (viewed["version"].as_str(), viewed["state"].as_str()),
                (Some("1.1.0"), Some("pending"))
            );
            let downloads = tools.root.join("downloads");
            std::fs::create_dir_all(&downloads).unwrap();
            let out = npm.run(&downloads, &["stage", "download", &id]);
            assert!(out.status.success(), "npm stage download: {}", String::from_utf8_lossy(&out.stderr));
            let file = downloads.join(format!("{PKG}-1.1.0-{id}.tgz"));
            assert_eq!(sri_sha512(&std::fs::read(&file).unwrap()), sri_sha512(&tgz));

            // Without a terminal npm cannot wait for the tap: it fails and nothing is published.
            let out = npm.run(&tools.root, &["stage", "approve", &id]);
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(!out.status.success() && err.contains("/approve/apr_"), "{err}");
        }
    })
    .await;
    assert_eq!(w.versions().await, ["1.0.0"]);

    // npm stage approve on a terminal: npm's web flow, alice's tap.
    let screen = blocking({
        let (tools, id, token) = (tools.clone(), id.clone(), alice_token.clone());
        move || {
            let npm = tools.npm("alice", &token);
            tools.npm_with_tap(&npm, &tools.root, &["stage", "approve", &id], &format!("Publish {PKG}@1.1.0"))
        }
    })
    .await;
    assert!(screen.contains("approved and published successfully"), "{screen}");
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);
    let path = format!("/{PKG}/-/{PKG}-1.1.0.tgz");
    let served = w.app.http.get(w.app.url(&path)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(sri_sha512(&served), sri_sha512(&tgz), "exactly the staged bytes");

    // tapgate ci stage; tapgate stage wait sees npm stage reject: exit status 3.
    let (waited, rejected) = blocking({
        let (tools, token) = (tools.clone(), alice_token.clone());
        move || {
            let pkg = package_dir(&tools.root, PKG, "1.2.0", "module.exports = 'bad';\n");
            let (status, out, err) = tools.ci(&["ci", "stage", pkg.to_str().unwrap()]);
            assert!(status.success(), "tapgate ci stage: {err}");
            let id = out.trim().to_string();
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "only the stage id on stdout: {out:?}");
            let waiter = {
                let (tools, id) = (tools.clone(), id.clone());
                std::thread::spawn(move || {
                    tools.alice(&["stage", "wait", &id, "--interval", "1", "--timeout", "120"])
                })
            };
            let npm = tools.npm("alice", &token);
            tools.npm_with_tap(&npm, &tools.root, &["stage", "reject", &id], "Reject the staged release");
            (waiter.join().unwrap(), id)
        }
    })
    .await;
    assert_eq!(waited.0.code(), Some(3), "tapgate stage wait: rejected: {} {}", waited.1, waited.2);
    assert!(waited.2.contains("rejected"), "{}", waited.2);
    let (status, _, _) = tools.alice(&["stage", "wait", &rejected, "--timeout", "1"]);
    assert_eq!(status.code(), Some(3));
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);

    // tapgate stage approve: checks the bytes here, shows the change, taps, publishes.
    let (status, out, err) = blocking({
        let tools = tools.clone();
        move || {
            let pkg = package_dir(&tools.root, PKG, "1.3.0", "module.exports = 'good';\n");
            let (status, out, err) = tools.ci(&["ci", "stage", pkg.to_str().unwrap()]);
            assert!(status.success(), "tapgate ci stage: {err}");
            tools.alice(&["stage", "approve", out.trim()])
        }
    })
    .await;
    assert!(status.success(), "tapgate stage approve: {err}");
    assert!(err.contains(&format!("Publish {PKG}@1.3.0")), "the change is shown before the tap: {err}");
    assert!(out.contains(&format!("Published {PKG}@1.3.0")), "{out}");
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0", "1.3.0"]);
}

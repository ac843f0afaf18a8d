//! CI with the real tools: a maintainer creates the CI credential with `tapgate ci create` (a
//! tap), CI runs the real npm 11 without a terminal as `npm publish --otp "$(tapgate ci
//! deploy-key …)"` with the credential as its token, or `tapgate ci publish`; `tapgate verify`
//! checks the chain offline against pinned keys. Both backends.

use serde_json::Value;
use tapgate_tests::npm::Npm;
use tapgate_tests::process::tapgate_cli;
use tapgate_tests::tools::npm_available;

use crate::cli_publish::package_dir;
use crate::deploy_keys_support::{PKG, World};
use crate::support::{Backend, TestApp, backend_tests};

backend_tests!(npm_publishes_with_a_deploy_key_and_tapgate_verifies_the_chain);

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// Runs blocking work (child processes) off the runtime that serves the app.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn npm_publishes_with_a_deploy_key_and_tapgate_verifies_the_chain(backend: Backend) {
    if !npm_available() {
        return;
    }
    let Some(app) = TestApp::new(backend).await else { return };
    let w = World::new(app, &["deploy-key"]).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let server = w.app.origin.clone();

    // alice, signed in with her key, creates the credential with a tap.
    let cfg = root.join("alice-cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let saved =
        serde_json::json!({ "registries": { &server: { "token": w.alice.token, "username": "alice" } } });
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
    let (status, out, err) = blocking({
        let alice = alice.clone();
        move || {
            alice(&[
                "--json",
                "ci",
                "create",
                "--package",
                PKG,
                "--versions",
                "^1.0.0",
                "--cidr",
                "127.0.0.1",
            ])
        }
    })
    .await;
    assert!(status.success(), "tapgate ci create: {err}");
    assert!(err.contains("Let the CI credential"), "the scope is shown before the tap: {err}");
    let created = json(&out);
    let credential = created["credential"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["cidrs"], serde_json::json!(["127.0.0.1/32"]));

    // CI: npm pack, a deploy key for that tarball, npm publish with it as the one-time password
    // and the credential as npm's token. No terminal: npm never needs one.
    let pkg = package_dir(&root, PKG, "1.1.0", "module.exports = 'ci';\n");
    let npm = Npm::new(&root, &server);
    npm.set_token(&credential);
    let ci_env = {
        let server = server.clone();
        move |cfg: &std::path::Path, args: &[&str], token: &str| {
            let mut all = vec!["--server", server.as_str()];
            all.extend_from_slice(args);
            tapgate_cli(cfg, &all, &[("TAPGATE_CI_TOKEN", token)])
        }
    };
    let ci_cfg = root.join("ci-cfg");
    let (npm, published_dk) = blocking({
        let (pkg, credential, ci_cfg) = (pkg.clone(), credential.clone(), ci_cfg.clone());
        let ci_env = ci_env.clone();
        move || {
            let packed = npm.run(&pkg, &["pack", "--json"]);
            assert!(packed.status.success(), "{}", String::from_utf8_lossy(&packed.stderr));
            let listing = json(&String::from_utf8_lossy(&packed.stdout));
            let integrity = listing[0]["integrity"].as_str().unwrap().to_string();
            let tgz = pkg.join(listing[0]["filename"].as_str().unwrap());
            let args =
                ["ci", "deploy-key", "--package", PKG, "--version", "1.1.0", "--integrity", &integrity];
            let (status, dk, err) = ci_env(&ci_cfg, &args, &credential);
            assert!(status.success(), "tapgate ci deploy-key: {err}");
            let dk = dk.trim().to_string();
            assert!(dk.starts_with("tg_dk_") && !dk.contains('\n'), "only the deploy key: {dk:?}");
            let tgz = tgz.to_str().unwrap();
            let out = npm.run(&pkg, &["publish", tgz, "--otp", &dk]);
            assert!(out.status.success(), "npm publish --otp: {}", String::from_utf8_lossy(&out.stderr));
            // The same deploy key for the next version: refused, nothing changes. (For the same
            // version npm itself stops before asking.)
            let next = package_dir(pkg.parent().unwrap(), PKG, "1.1.1", "module.exports = 'evil';\n");
            let again = npm.run(&next, &["publish", "--otp", &dk]);
            let err = String::from_utf8_lossy(&again.stderr).to_string();
            assert!(!again.status.success(), "a reused deploy key must fail");
            assert!(err.contains("this deploy key is for left-pad@1.1.0, not 1.1.1"), "{err}");
            (npm, dk)
        }
    })
    .await;
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0"]);
    let record: Value = w.app.get_json(&format!("/api/v1/packages/{PKG}/versions/1.1.0/approval")).await;
    assert_eq!(record["deploy_key"], published_dk.as_str());

    // `tapgate ci publish` does it all in one command.
    let next = package_dir(&root, PKG, "1.2.0", "module.exports = 'ci2';\n");
    let (status, out, err) = blocking({
        let (credential, ci_cfg, next) = (credential.clone(), ci_cfg.clone(), next.clone());
        let ci_env = ci_env.clone();
        move || ci_env(&ci_cfg, &["ci", "publish", next.to_str().unwrap()], &credential)
    })
    .await;
    assert!(status.success(), "tapgate ci publish: {err}");
    assert!(out.contains("Published left-pad@1.2.0"), "{out}");
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0", "1.2.0"]);
    drop(npm);

    // Offline verification against the maintainers' keys and the registry's pinned keys.
    let keys_file = root.join("tapgate-keys.json");
    let pinned: Value = w.app.get_json("/.well-known/tapgate-keys").await;
    std::fs::write(&keys_file, pinned.to_string()).unwrap();
    let keyring = root.join("keyring");
    let verify = {
        let (keyring, keys_file) = (keyring.clone(), keys_file.clone());
        let alice = alice.clone();
        move |server_key: bool| {
            let (k, s) = (keyring.to_str().unwrap().to_string(), keys_file.to_str().unwrap().to_string());
            let mut args = vec!["verify", "left-pad@1.1.0", "--keyring", k.as_str()];
            if server_key {
                args.extend(["--server-key", s.as_str()]);
            }
            alice(&args)
        }
    };
    let (status, out, err) = blocking({
        let (alice, keyring, verify) = (alice.clone(), keyring.clone(), verify.clone());
        move || {
            let (s, _, e) =
                alice(&["keyring", "export", PKG, "--package", "--output", keyring.to_str().unwrap()]);
            assert!(s.success(), "{e}");
            let (status, _, err) = verify(false);
            assert!(!status.success(), "a deploy key needs the registry's pinned keys");
            assert!(err.contains("failed"), "{err}");
            verify(true)
        }
    })
    .await;
    assert!(status.success(), "tapgate verify: {out}{err}");
    assert!(out.contains("published by CI with a deploy key"), "{out}");
    assert!(out.contains("alice"), "{out}");

    // List and revoke from the CLI; CI is locked out at once.
    let (status, out, err) = blocking({
        let (alice, id) = (alice.clone(), id.clone());
        move || {
            let (s, list, e) = alice(&["ci", "list", PKG]);
            assert!(s.success() && list.contains(&id), "{list}{e}");
            alice(&["ci", "revoke", &id])
        }
    })
    .await;
    assert!(status.success(), "{err}");
    assert!(out.contains("Revoked"), "{out}");
    let last = package_dir(&root, PKG, "1.3.0", "module.exports = 'ci3';\n");
    let (status, _, err) =
        blocking(move || ci_env(&ci_cfg, &["ci", "publish", last.to_str().unwrap()], &credential)).await;
    assert!(!status.success());
    assert!(err.contains("revoked"), "{err}");
    assert_eq!(w.versions().await, ["1.0.0", "1.1.0", "1.2.0"]);
}

/// `tapgate-server signing-key rotate|list`: a new key signs; the old one stays listed with the
/// end of its period.
#[test]
fn the_operator_rotates_the_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Admin commands work on a database the server made.
    let server = tapgate_tests::process::ServerProcess::start(&data, &Default::default());
    let (status, out, err) =
        tapgate_tests::process::server_cli(&data, None, &["signing-key", "list", "--json"]);
    assert!(status.success(), "{err}");
    let first = json(&out);
    assert_eq!(first["keys"].as_array().unwrap().len(), 1, "made on first use: {first}");
    let (status, out, err) =
        tapgate_tests::process::server_cli(&data, None, &["signing-key", "rotate", "--json"]);
    assert!(status.success(), "{err}");
    let rotated = json(&out);
    assert_eq!(rotated["retired"], first["keys"][0]["kid"]);
    let (_, out, _) = tapgate_tests::process::server_cli(&data, None, &["signing-key", "list", "--json"]);
    let keys = json(&out)["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2);
    let old = keys.iter().find(|k| k["kid"] == first["keys"][0]["kid"]).unwrap();
    assert!(old["not_after"].is_i64(), "{old}");
    let new = keys.iter().find(|k| k["kid"] == rotated["kid"]).unwrap();
    assert!(new["not_after"].is_null(), "{new}");
    drop(server);
}

//! The machine's real npm against the real server binary: web login and publish finished from
//! another terminal with `tapgate approve`, `npm publish --otp <ticket>`, view and install with
//! integrity checked.

use std::time::Duration;

use serde_json::Value;
use tapgate::authenticator::{self, AuthenticatorChoice};
use tapgate_tests::npm::Npm;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};
use tapgate_tests::tools::npm_available;

use crate::cli_publish::package_dir;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// Checks that `npm install name@version` in a fresh directory installs the registry's tarball
/// and records its integrity in the lockfile.
pub fn assert_installs(npm: &Npm, root: &std::path::Path, name: &str, version: &str, integrity: &str) {
    let app = root.join(format!("consumer-{}", name.replace('/', "-")));
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("package.json"), r#"{"name":"consumer","version":"1.0.0","private":true}"#)
        .unwrap();
    let out = npm.run(&app, &["install", &format!("{name}@{version}")]);
    assert!(out.status.success(), "npm install failed: {}", String::from_utf8_lossy(&out.stderr));
    let installed: Value =
        json(&std::fs::read_to_string(app.join("node_modules").join(name).join("package.json")).unwrap());
    assert_eq!(installed["version"], version);
    let lock: Value = json(&std::fs::read_to_string(app.join("package-lock.json")).unwrap());
    let entry = &lock["packages"][format!("node_modules/{name}")];
    assert_eq!(entry["integrity"], integrity, "{lock}");
}

#[test]
fn npm_login_publish_view_install_with_approvals_from_the_cli() {
    if !npm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    let cfg = dir.path().join("cfg");
    let key_path = dir.path().join("alice.key");
    authenticator::open(&AuthenticatorChoice::Soft(key_path.clone())).unwrap();
    let key = format!("soft:{}", key_path.display());
    let tapgate = |args: &[&str]| {
        let mut all = vec!["--server", registry.as_str(), "--authenticator", key.as_str()];
        all.extend_from_slice(args);
        tapgate_cli(&cfg, &all, &[])
    };
    let (_, out, _) = server_cli(&data, None, &["--origin", &registry, "user", "add", "alice", "--json"]);
    let invite = json(&out)["invite_url"].as_str().unwrap().to_string();
    assert!(tapgate(&["key", "add", "--invite", &invite, "--name", "k"]).0.success());
    assert!(tapgate(&["login", "-u", "alice"]).0.success());

    // npm login (web): npm prints the login URL and polls; the tap happens in another terminal.
    let npm = Npm::new(dir.path(), &registry);
    let login = npm.spawn_tty(dir.path(), &["login", "--registry", &format!("{registry}/")]);
    let url = login.wait_for_url(&format!("{registry}/login/npl_"), Duration::from_secs(30));
    let (status, out, err) = tapgate(&["approve", &url]);
    assert!(status.success(), "{err}");
    assert!(out.contains("return to the terminal running `npm login`"), "{out}");
    let (ok, screen) = login.wait(Duration::from_secs(30));
    assert!(ok, "npm login failed:\n{screen}");
    assert!(npm.saved_token().is_some_and(|t| t.starts_with("tg_api_")), "npm saved the token");
    let who = npm.run(dir.path(), &["whoami"]);
    assert_eq!(String::from_utf8_lossy(&who.stdout).trim(), "alice");

    // npm publish: the registry asks for a second factor; approved from the CLI.
    let pkg = package_dir(dir.path(), "npm-gated", "1.0.0", "module.exports = 'gated';\n");
    let publish = npm.spawn_tty(&pkg, &["publish"]);
    let url = publish.wait_for_url(&format!("{registry}/approve/apr_"), Duration::from_secs(60));
    let (status, _, err) = tapgate(&["approve", &url]);
    assert!(status.success(), "{err}");
    let (ok, screen) = publish.wait(Duration::from_secs(60));
    assert!(ok, "npm publish failed:\n{screen}");
    assert!(screen.contains("+ npm-gated@1.0.0"), "{screen}");
    let view = npm.run(dir.path(), &["view", "npm-gated@1.0.0", "dist.integrity"]);
    let integrity = String::from_utf8_lossy(&view.stdout).trim().to_string();
    assert!(integrity.starts_with("sha512-"), "{integrity}");
    assert_installs(&npm, dir.path(), "npm-gated", "1.0.0", &integrity);
    // alice's key was pinned in her keyring when she enrolled it.
    let (status, out, _) = tapgate(&["verify", "npm-gated@1.0.0"]);
    assert!(status.success(), "{out}");
    assert!(out.contains("approved by alice with keys your keyring trusts"), "{out}");

    // npm publish --otp <ticket>: the ticket from an approval made through the API.
    let pkg = package_dir(dir.path(), "npm-gated", "1.1.0", "module.exports = 'next';\n");
    let packed = tapgate::pack::pack(&pkg).unwrap();
    let token = npm.saved_token().unwrap();
    let http = reqwest::blocking::Client::new();
    let info: Value = http
        .post(server.url("/api/v1/approvals"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "package": "npm-gated", "version": "1.1.0",
            "integrity": tapgate_shared::intent::sri_sha512(&packed.bytes),
        }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let (status, out, err) = tapgate(&["approve", info["url"].as_str().unwrap(), "--json"]);
    assert!(status.success(), "{err}");
    let ticket = json(&out)["ticket"].as_str().unwrap().to_string();
    let out = npm.run(&pkg, &["publish", "--otp", &ticket]);
    assert!(out.status.success(), "npm publish --otp failed: {}", String::from_utf8_lossy(&out.stderr));
    // The same ticket again, for a different tarball: refused, and npm says why.
    let pkg = package_dir(dir.path(), "npm-gated", "1.2.0", "module.exports = 'evil';\n");
    let out = npm.run(&pkg, &["publish", "--otp", &ticket]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E403") || err.contains("403"), "{err}");
    for secret in ["tg_ses_", "tg_tkt_", "tg_api_", "tg_inv_"] {
        assert!(!server.log().contains(secret), "a {secret} secret reached the server log");
    }
    let view = npm.run(dir.path(), &["view", "npm-gated", "versions", "--json"]);
    assert_eq!(json(&String::from_utf8_lossy(&view.stdout)), serde_json::json!(["1.0.0", "1.1.0"]));
}

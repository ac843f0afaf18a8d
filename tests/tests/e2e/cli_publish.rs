//! `tapgate publish`, `approve`, `verify` and `owner` against the real server binary, with a
//! software key.

use serde_json::Value;
use tapgate::authenticator::{self, AuthenticatorChoice};
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};

fn soft(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    authenticator::open(&AuthenticatorChoice::Soft(path.clone())).unwrap();
    format!("soft:{}", path.display())
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// A package directory npm can pack.
pub fn package_dir(root: &std::path::Path, name: &str, version: &str, body: &str) -> std::path::PathBuf {
    let dir = root.join(format!("{}-{version}", name.replace('/', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest =
        serde_json::json!({ "name": name, "version": version, "main": "index.js", "license": "MIT" });
    std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
    std::fs::write(dir.join("index.js"), body).unwrap();
    dir
}

#[test]
fn publish_approve_verify_and_owners_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    let setup = |user: &str, key: &str, cfg: &std::path::Path| {
        let (_, out, _) = server_cli(&data, None, &["--origin", &registry, "user", "add", user, "--json"]);
        let invite = json(&out)["invite_url"].as_str().unwrap().to_string();
        let args = [
            "--server",
            registry.as_str(),
            "--authenticator",
            key,
            "key",
            "add",
            "--invite",
            invite.as_str(),
            "--name",
            "k",
        ];
        let (status, _, err) = tapgate_cli(cfg, &args, &[]);
        assert!(status.success(), "{err}");
        let (status, _, err) =
            tapgate_cli(cfg, &["--server", &registry, "--authenticator", key, "login", "-u", user], &[]);
        assert!(status.success(), "{err}");
    };
    let alice_cfg = dir.path().join("alice");
    let bob_cfg = dir.path().join("bob");
    let alice_key = soft(dir.path(), "alice.key");
    let bob_key = soft(dir.path(), "bob.key");
    setup("alice", &alice_key, &alice_cfg);
    setup("bob", &bob_key, &bob_cfg);
    // New packages under @acme are alice's to create: the operator gave her the scope.
    let (status, _, err) = server_cli(&data, None, &["scope", "add", "@acme", "--owner", "alice"]);
    assert!(status.success(), "{err}");
    let alice = |args: &[&str]| {
        let mut all = vec!["--server", registry.as_str(), "--authenticator", alice_key.as_str()];
        all.extend_from_slice(args);
        tapgate_cli(&alice_cfg, &all, &[])
    };
    let bob = |args: &[&str]| {
        let mut all = vec!["--server", registry.as_str(), "--authenticator", bob_key.as_str()];
        all.extend_from_slice(args);
        tapgate_cli(&bob_cfg, &all, &[])
    };

    let pkg = package_dir(dir.path(), "@acme/widget", "1.0.0", "module.exports = 1;\n");
    let (status, out, err) = alice(&["publish", pkg.to_str().unwrap(), "--json"]);
    assert!(status.success(), "{err}");
    let published = json(&out);
    assert_eq!(published["name"], "@acme/widget");
    assert!(published["integrity"].as_str().unwrap().starts_with("sha512-"));
    assert!(err.contains("Publish @acme/widget@1.0.0 (tarball sha512-"), "{err}");

    let (status, out, err) = alice(&["verify", "@acme/widget@1.0.0"]);
    assert!(status.success(), "{err}");
    // alice's own keyring pinned her key when she enrolled it.
    assert!(
        out.contains("approved by alice with keys your keyring trusts, for exactly this tarball"),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");

    // bob is not a maintainer.
    let pkg2 = package_dir(dir.path(), "@acme/widget", "1.1.0", "module.exports = 2;\n");
    let (status, _, err) = bob(&["publish", pkg2.to_str().unwrap()]);
    assert!(!status.success());
    assert!(err.contains("not a maintainer of @acme/widget"), "{err}");

    // alice adds bob (approved with her tap); bob publishes; bob's approval verifies.
    let (status, out, err) = alice(&["owner", "add", "bob", "@acme/widget"]);
    assert!(status.success(), "{err}");
    assert_eq!(out.trim(), "alice\nbob");
    let (status, out, err) = bob(&["publish", pkg2.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    assert!(out.contains("Published @acme/widget@1.1.0"), "{out}");
    let (status, out, _) = bob(&["verify", "@acme/widget@1.1.0", "--json"]);
    assert!(status.success());
    assert_eq!(json(&out)["record"]["approved_by"], "bob");
    assert_eq!(json(&out)["approved_by"], serde_json::json!(["bob"]));
    // bob verifying alice's version needs her key: from the registry's export, trusted once.
    let (status, out, _) = bob(&["verify", "@acme/widget@1.0.0"]);
    assert!(!status.success());
    assert!(out.contains("signed by a key you do not trust"), "{out}");
    let keyring = dir.path().join("acme.keyring");
    let (status, _, err) = bob(&["keyring", "export", "alice", "--output", keyring.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    let (status, out, err) = bob(&["verify", "@acme/widget@1.0.0", "--keyring", keyring.to_str().unwrap()]);
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("approved by alice with keys your keyring trusts"), "{out}");
    let (status, _, err) = alice(&["publish", pkg2.to_str().unwrap()]);
    assert!(!status.success());
    assert!(err.contains("already published"), "{err}");

    let (status, out, _) = alice(&["owner", "rm", "bob", "@acme/widget"]);
    assert!(status.success());
    assert_eq!(out.trim(), "alice");
    let (status, _, err) = alice(&["owner", "rm", "alice", "@acme/widget"]);
    assert!(!status.success() && err.contains("at least one maintainer"), "{err}");
    let (status, out, _) = bob(&["owner", "ls", "@acme/widget"]);
    assert!(status.success());
    assert_eq!(out.trim(), "alice");

    // `tapgate approve` finishes a publish started elsewhere (here: the raw HTTP gate).
    let tgz_dir = package_dir(dir.path(), "plain", "0.1.0", "x\n");
    let out =
        std::process::Command::new("npm").args(["pack", "--json"]).current_dir(&tgz_dir).output().unwrap();
    let file = json(&String::from_utf8_lossy(&out.stdout))[0]["filename"].as_str().unwrap().to_string();
    let tgz = std::fs::read(tgz_dir.join(&file)).unwrap();
    let token = std::fs::read_to_string(alice_cfg.join("credentials.json")).unwrap();
    let token = json(&token)["registries"][&registry]["token"].as_str().unwrap().to_string();
    let body = crate::publish_support::publish_body("plain", "0.1.0", &tgz);
    let http = reqwest::blocking::Client::new();
    let resp = http.put(server.url("/plain")).bearer_auth(&token).json(&body).send().unwrap();
    assert_eq!(resp.status(), 401);
    let challenge: Value = resp.json().unwrap();
    let auth_url = challenge["authUrl"].as_str().unwrap();
    let (status, out, err) = alice(&["approve", auth_url, "--json"]);
    assert!(status.success(), "{err}");
    let approved = json(&out);
    assert_eq!(approved["approved"], true);
    let code = approved["code"].as_str().unwrap();
    let resp = http
        .put(server.url("/plain"))
        .bearer_auth(&token)
        .header("npm-otp", code)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    let (status, _, err) = alice(&["approve", auth_url]);
    assert!(!status.success() && err.contains("is used"), "{err}");

    // Releases: each change approved with alice's tap after the CLI showed it in words.
    let get = |path: &str| http.get(server.url(path)).send().unwrap();
    let (status, out, err) = alice(&["dist-tag", "add", "@acme/widget@1.0.0", "beta"]);
    assert!(status.success(), "{err}");
    assert!(err.contains("Point the new tag `beta` of @acme/widget at 1.0.0"), "{err}");
    assert!(out.contains("beta: 1.0.0") && out.contains("latest: 1.1.0"), "{out}");
    let (status, out, _) = bob(&["dist-tag", "ls", "@acme/widget"]);
    assert!(status.success() && out.contains("beta: 1.0.0"), "{out}");
    let (status, _, err) = bob(&["dist-tag", "rm", "@acme/widget", "beta"]);
    assert!(!status.success() && err.contains("not a maintainer"), "bob was removed: {err}");
    let (status, out, err) = alice(&["dist-tag", "rm", "@acme/widget", "beta"]);
    assert!(status.success() && !out.contains("beta"), "{out}{err}");
    let (status, _, err) = alice(&["deprecate", "@acme/widget@1.0.0", "use 1.1"]);
    assert!(status.success(), "{err}");
    let manifest: Value = get("/@acme%2fwidget/1.0.0").json().unwrap();
    assert_eq!(manifest["deprecated"], "use 1.1");
    let (status, _, err) = alice(&["deprecate", "@acme/widget@1.0.0", "use 1.1"]);
    assert!(!status.success() && err.contains("nothing to change"), "{err}");
    let (status, _, err) = alice(&["undeprecate", "@acme/widget@1.0.0"]);
    assert!(status.success(), "{err}");
    let manifest: Value = get("/@acme%2fwidget/1.0.0").json().unwrap();
    assert!(manifest.get("deprecated").is_none(), "{manifest}");
    let (status, out, err) = alice(&["unpublish", "@acme/widget@1.1.0"]);
    assert!(status.success(), "{err}");
    assert!(out.contains("never be published again"), "{out}");
    assert_eq!(get("/@acme%2fwidget/1.1.0").status(), 404);
    let tags: Value = get("/-/package/@acme%2fwidget/dist-tags").json().unwrap();
    assert_eq!(tags["latest"], "1.0.0", "latest moves to the highest version left");
    let (status, _, err) = alice(&["publish", pkg2.to_str().unwrap()]);
    assert!(!status.success() && err.contains("never reused"), "{err}");
    let (status, _, err) = alice(&["unpublish", "@acme/widget", "--all"]);
    assert!(status.success(), "{err}");
    assert_eq!(get("/@acme%2fwidget").status(), 404);
}

/// A package directory with this `package.json` and these files.
pub fn package_dir_with(
    root: &std::path::Path,
    manifest: &Value,
    files: &[(&str, &str)],
) -> std::path::PathBuf {
    let name = manifest["name"].as_str().unwrap().replace('/', "-");
    let dir = root.join(format!("{name}-{}", manifest["version"].as_str().unwrap()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
    for (path, data) in files {
        std::fs::write(dir.join(path), data).unwrap();
    }
    dir
}

/// A user with a soft key enrolled and signed in with the CLI; returns the key's `--authenticator`.
pub fn cli_user(data: &std::path::Path, registry: &str, dir: &std::path::Path, user: &str) -> String {
    let key = soft(dir, &format!("{user}.key"));
    let cfg = dir.join(user);
    let (_, out, _) = server_cli(data, None, &["--origin", registry, "user", "add", user, "--json"]);
    let invite = json(&out)["invite_url"].as_str().unwrap().to_string();
    let args =
        ["--server", registry, "--authenticator", &key, "key", "add", "--invite", &invite, "--name", "k"];
    let (status, _, err) = tapgate_cli(&cfg, &args, &[]);
    assert!(status.success(), "{err}");
    let (status, _, err) =
        tapgate_cli(&cfg, &["--server", registry, "--authenticator", &key, "login", "-u", user], &[]);
    assert!(status.success(), "{err}");
    key
}

#[test]
fn publish_shows_the_install_script_change_before_the_tap() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    let key = cli_user(&data, &registry, dir.path(), "alice");
    let cfg = dir.path().join("alice");
    let publish = |key: &str, pkg: &std::path::Path| {
        tapgate_cli(
            &cfg,
            &["--server", &registry, "--authenticator", key, "publish", pkg.to_str().unwrap()],
            &[],
        )
    };
    let v1 = package_dir_with(
        dir.path(),
        &serde_json::json!({ "name": "gadget", "version": "1.0.0", "dependencies": { "kept": "^1.0.0" } }),
        &[("index.js", "module.exports = 1;\n"), ("old.js", "bye\n")],
    );
    let (status, _, err) = publish(&key, &v1);
    assert!(status.success(), "{err}");
    assert!(err.contains("(first version; computed here from the tarball you packed)"), "{err}");

    let v2 = package_dir_with(
        dir.path(),
        &serde_json::json!({
            "name": "gadget", "version": "1.1.0",
            "dependencies": { "kept": "^1.0.0", "left-pad": "^1.3.0" },
            "scripts": { "postinstall": "node collect.js" },
        }),
        &[("index.js", "module.exports = 2;\n"), ("collect.js", "steal();\n")],
    );
    // A key that cannot approve: the change is shown, then the tap fails and nothing is published.
    let stranger = soft(dir.path(), "stranger.key");
    let (status, _, err) = publish(&stranger, &v2);
    assert!(!status.success(), "{err}");
    let shown =
        err.find("!! install script postinstall added: node collect.js").unwrap_or_else(|| panic!("{err}"));
    assert!(err.find("Approve on ").unwrap() < shown, "{err}");
    assert!(err.contains("changes since 1.0.0 (computed here from the tarball you packed)"), "{err}");
    assert!(err.contains("+ dependency left-pad ^1.3.0"), "{err}");
    assert!(err.contains("- file old.js (4 B)"), "{err}");
    assert!(err.contains("+ file collect.js (9 B)"), "{err}");
    assert!(err.contains("sets tags: latest"), "{err}");
    assert!(err.contains("[...]"), "the integrity as npm prints it: {err}");
    let packument: Value = reqwest::blocking::get(server.url("/gadget")).unwrap().json().unwrap();
    assert!(packument["versions"].get("1.1.0").is_none(), "nothing published without the tap");
    // The right key: shown again, then tapped and published.
    let (status, out, err) = publish(&key, &v2);
    assert!(status.success(), "{err}");
    assert!(err.contains("!! install script postinstall added: node collect.js"), "{err}");
    assert!(
        err.contains("asked from 127.0.0.1 with tapgate/"),
        "the registry's record of the request: {err}"
    );
    assert!(out.contains("Published gadget@1.1.0"), "{out}");
}

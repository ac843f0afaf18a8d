//! `tapgate verify`, `key add` pinning and `tapgate keyring` against the real server binary.

use tapgate::authenticator::{self, AuthenticatorChoice};
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};

use crate::cli_publish::package_dir;

#[test]
fn verify_trusts_the_keyring_and_export_builds_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    let run = |cfg: &std::path::Path, key: &str, args: &[&str]| {
        let mut all = vec!["--server", registry.as_str(), "--authenticator", key];
        all.extend_from_slice(args);
        tapgate_cli(cfg, &all, &[])
    };
    let enroll = |user: &str| {
        let path = dir.path().join(format!("{user}.key"));
        authenticator::open(&AuthenticatorChoice::Soft(path.clone())).unwrap();
        let key = format!("soft:{}", path.display());
        let cfg = dir.path().join(user);
        let (_, out, _) = server_cli(&data, None, &["--origin", &registry, "user", "add", user, "--json"]);
        let invite: serde_json::Value = serde_json::from_str(&out).unwrap();
        let invite = invite["invite_url"].as_str().unwrap().to_string();
        let (status, _, err) = run(&cfg, &key, &["key", "add", "--invite", &invite, "--name", "k"]);
        assert!(status.success(), "{err}");
        assert!(err.contains("Pinned this key in your keyring"), "{err}");
        assert!(run(&cfg, &key, &["login", "-u", user]).0.success());
        (cfg, key)
    };
    let (alice_cfg, alice_key) = enroll("alice");
    let (bob_cfg, bob_key) = enroll("bob");
    let alice = |args: &[&str]| run(&alice_cfg, &alice_key, args);
    let bob = |args: &[&str]| run(&bob_cfg, &bob_key, args);

    // alice's own keyring pins her key: she can verify her own release.
    let (status, out, _) = alice(&["keyring", "list"]);
    assert!(status.success());
    let alice_line = out.lines().find(|l| l.starts_with("alice ")).unwrap().to_string();
    let pkg = package_dir(dir.path(), "gadget", "1.0.0", "module.exports = 1;\n");
    let (status, _, err) = alice(&["publish", pkg.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    let (status, out, err) = alice(&["verify", "gadget@1.0.0"]);
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("ok   signature by the approving key: approved by alice"), "{out}");

    // bob has never met alice's key: refused, and told what to do.
    let (status, out, err) = bob(&["verify", "gadget@1.0.0"]);
    assert!(!status.success());
    assert!(
        out.contains("FAIL the signing key is one you trust: signed by a key you do not trust (credential "),
        "{out}"
    );
    assert!(out.contains("add it with `tapgate keyring add` only if you got it from alice"), "{out}");
    assert!(err.contains("verification of gadget@1.0.0 failed"), "{err}");

    // bob exports the package's keys once, and verifies with them.
    let file = dir.path().join("gadget.keyring");
    let (status, _, err) = bob(&["keyring", "export", "gadget", "--output", file.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(exported.lines().any(|l| l == alice_line), "{exported}");
    let (status, _, err) = bob(&["keyring", "export", "gadget", "--output", file.to_str().unwrap()]);
    assert!(!status.success() && err.contains("--force"), "{err}");
    let (status, out, _) = bob(&["keyring", "export", "alice", "--user"]);
    assert!(status.success());
    assert!(out.lines().any(|l| l == alice_line), "{out}");
    let (status, out, err) = bob(&["verify", "gadget@1.0.0", "--keyring", file.to_str().unwrap()]);
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("approved by alice with keys your keyring trusts"), "{out}");

    // A keyring that does not parse is an error naming its line.
    let bad = dir.path().join("bad.keyring");
    std::fs::write(&bad, format!("# ok\n{alice_line} trailing\n")).unwrap();
    let (status, _, err) = bob(&["verify", "gadget@1.0.0", "--keyring", bad.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        err.contains(&format!("{}:2: expected `USER CREDENTIAL_ID spki:KEY`, found 4 fields", bad.display())),
        "{err}"
    );

    // `keyring add` puts alice's key in bob's own keyring; `remove` takes it out again.
    let fields: Vec<&str> = alice_line.split(' ').collect();
    let (status, out, err) = bob(&["keyring", "add", fields[0], fields[1], fields[2]]);
    assert!(status.success(), "{err}");
    assert!(out.contains("Trusting"), "{out}");
    assert!(bob(&["verify", "gadget@1.0.0"]).0.success());
    let (status, _, err) = bob(&["keyring", "add", "mallory", fields[1], fields[2]]);
    assert!(!status.success() && err.contains("already trusts"), "{err}");
    assert!(bob(&["keyring", "remove", fields[1]]).0.success());
    assert!(!bob(&["verify", "gadget@1.0.0"]).0.success());
    let (status, _, err) = bob(&["keyring", "remove", fields[1]]);
    assert!(!status.success() && err.contains("does not list"), "{err}");
}

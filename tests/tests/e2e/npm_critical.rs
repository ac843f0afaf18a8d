//! A two-of-three package with the real npm 11 and the real CLI against the server binary: npm
//! (on a pseudo-terminal) waits on the done URL while two maintainers approve from their own
//! configurations with `tapgate approve`; `tapgate publish` waits the same way; `tapgate
//! pending` finds what waits; `tapgate reject` voids a change; `tapgate verify` counts distinct
//! trusted approvers against the policy. Runs on SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tapgate::authenticator::{self, AuthenticatorChoice};
use tapgate_tests::db::{Backend, TestDb};
use tapgate_tests::npm::Npm;
use tapgate_tests::process::{ServeOptions, server_cli, tapgate_cli};
use tapgate_tests::tools::npm_available;

use crate::cli_publish::package_dir;

#[test]
fn npm_waits_for_two_of_three_maintainers_on_sqlite() {
    npm_waits_for_two_of_three_maintainers(Backend::Sqlite);
}

#[test]
fn npm_waits_for_two_of_three_maintainers_on_postgres() {
    npm_waits_for_two_of_three_maintainers(Backend::Postgres);
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// A user's own CLI configuration and key.
struct Person {
    cfg: PathBuf,
    key: String,
    registry: String,
}

impl Person {
    fn tapgate(&self, args: &[&str]) -> (std::process::ExitStatus, String, String) {
        let mut all = vec!["--server", self.registry.as_str(), "--authenticator", self.key.as_str()];
        all.extend_from_slice(args);
        tapgate_cli(&self.cfg, &all, &[])
    }

    fn ok(&self, args: &[&str]) -> String {
        let (status, out, err) = self.tapgate(args);
        assert!(status.success(), "tapgate {args:?}: {err}");
        out
    }

    /// The approval URL of the first change waiting on this person's packages, once one waits
    /// with at least `approvals` approvals.
    fn wait_pending(&self, approvals: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let listed = json(&self.ok(&["--json", "pending"]));
            let first = &listed["approvals"][0];
            if let Some(url) = first["url"].as_str()
                && first["approvals"].as_u64() >= Some(approvals)
            {
                return url.to_string();
            }
            assert!(Instant::now() < deadline, "nothing became pending");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn npm_waits_for_two_of_three_maintainers(backend: Backend) {
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
    let opts = ServeOptions {
        database_url: database_url.clone(),
        extra_args: vec!["--approval-ttl-minutes".into(), "60".into()],
        ..ServeOptions::default()
    };
    let server = tapgate_tests::process::ServerProcess::start(&data, &opts);
    let registry = server.origin.clone();
    let db_url = database_url.as_deref();
    let person = |name: &str, admin: bool| {
        let key_path = dir.path().join(format!("{name}.key"));
        authenticator::open(&AuthenticatorChoice::Soft(key_path.clone())).unwrap();
        let p = Person {
            cfg: dir.path().join(format!("cfg-{name}")),
            key: format!("soft:{}", key_path.display()),
            registry: registry.clone(),
        };
        let mut args = vec!["--origin", registry.as_str(), "user", "add", name, "--json"];
        if admin {
            args.push("--admin");
        }
        let (_, out, _) = server_cli(&data, db_url, &args);
        let invite = json(&out)["invite_url"].as_str().unwrap().to_string();
        p.ok(&["key", "add", "--invite", &invite, "--name", "k"]);
        p.ok(&["login", "-u", name]);
        p
    };
    let (root, alice, bob, carol) =
        (person("root", true), person("alice", false), person("bob", false), person("carol", false));

    let pkg = |version: &str, body: &str| package_dir(&dir.path().join(version), "duo-pkg", version, body);
    alice.ok(&["publish", pkg("1.0.0", "one").to_str().unwrap()]);
    alice.ok(&["owner", "add", "bob", "duo-pkg"]);
    alice.ok(&["owner", "add", "carol", "duo-pkg"]);
    let out = root.ok(&["--json", "admin", "policy", "set", "duo-pkg", "--approvals", "2"]);
    assert_eq!(json(&out)["policy"], serde_json::json!({"second_factor": "security-key", "approvals": 2}));
    let shown = json(&root.ok(&["--json", "admin", "policy", "show", "duo-pkg"]));
    assert_eq!(shown["policy"]["approvals"], 2);

    // npm publish: alice's tap is recorded, npm keeps waiting; bob's completes it.
    let creds: Value = json(&std::fs::read_to_string(alice.cfg.join("credentials.json")).unwrap());
    let npm = Npm::new(dir.path(), &registry);
    npm.set_token(creds["registries"][&registry]["token"].as_str().unwrap());
    let tty = npm.spawn_tty(&pkg("1.1.0", "two"), &["publish"]);
    let url = tty.wait_for_url(&format!("{registry}/approve/apr_"), Duration::from_secs(60));
    let out = alice.ok(&["approve", &url]);
    assert!(out.contains("1 more maintainer(s) must approve"), "{out}");
    let listed = json(&bob.ok(&["--json", "pending"]));
    assert_eq!(listed["approvals"][0]["approved_by"], serde_json::json!(["alice"]), "{listed}");
    assert_eq!(listed["approvals"][0]["url"], url.as_str());
    let (status, out, err) = bob.tapgate(&["approve", &url]);
    assert!(status.success() && out.contains("Approved"), "{out}{err}");
    assert!(err.contains("approved so far by 1 of the 2 needed (alice)"), "{err}");
    let (ok, screen) = tty.wait(Duration::from_secs(60));
    assert!(ok && screen.contains("+ duo-pkg@1.1.0"), "npm publish:\n{screen}");

    // `tapgate publish` waits on the done URL the same way while carol approves.
    let dir_120 = pkg("1.2.0", "three");
    let publishing = std::thread::scope(|s| {
        let publish = s.spawn(|| alice.tapgate(&["publish", dir_120.to_str().unwrap()]));
        // Once alice's own tap is in (her client then waits on the done URL).
        let url = carol.wait_pending(1);
        let out = carol.ok(&["approve", &url]);
        assert!(out.contains("Approved"), "{out}");
        publish.join().unwrap()
    });
    let (status, _, err) = publishing;
    assert!(status.success(), "{err}");
    assert!(err.contains("waiting for 1 more maintainer(s)"), "{err}");
    let out = npm.run(dir.path(), &["view", "duo-pkg", "versions", "--json"]);
    assert_eq!(
        json(String::from_utf8_lossy(&out.stdout).trim()),
        serde_json::json!(["1.0.0", "1.1.0", "1.2.0"])
    );

    // A maintainer rejects a change npm waits for: npm fails, nothing is published.
    let tty = npm.spawn_tty(&pkg("1.3.0", "four"), &["publish"]);
    let url = tty.wait_for_url(&format!("{registry}/approve/apr_"), Duration::from_secs(60));
    let (status, out, err) = carol.tapgate(&["reject", &url]);
    assert!(status.success() && out.contains("Rejected"), "{out}{err}");
    let (ok, screen) = tty.wait(Duration::from_secs(60));
    assert!(!ok, "npm must fail once the change is rejected:\n{screen}");
    let (status, _, err) = bob.tapgate(&["approve", &url]);
    assert!(!status.success() && err.contains("rejected"), "{err}");
    let out = npm.run(dir.path(), &["view", "duo-pkg", "versions", "--json"]);
    assert_eq!(
        json(String::from_utf8_lossy(&out.stdout).trim()),
        serde_json::json!(["1.0.0", "1.1.0", "1.2.0"])
    );

    // Someone else verifies (their own keyring is empty): both signatures verify with both
    // trusted keys; with one of them, too few approvers signed.
    let verifier =
        Person { cfg: dir.path().join("cfg-verifier"), key: "usb".into(), registry: registry.clone() };
    let all = dir.path().join("all.keys");
    verifier.ok(&["keyring", "export", "duo-pkg", "--package", "--output", all.to_str().unwrap()]);
    let out = verifier.ok(&["verify", "duo-pkg@1.1.0", "--keyring", all.to_str().unwrap()]);
    assert!(
        out.contains("was approved by alice, bob") || out.contains("was approved by bob, alice"),
        "{out}"
    );
    let one = only(&all, "bob", dir.path());
    let (status, out, _) = verifier.tapgate(&["verify", "duo-pkg@1.1.0", "--keyring", one.to_str().unwrap()]);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains(
            "FAIL enough distinct people approved with keys you trust: the policy in force requires 2 approvals \
             by distinct maintainers, but only 1 signed with keys you trust (bob)"
        ),
        "{out}"
    );
    drop(server);
    drop(db);
}

/// A keyring with only `user`'s lines of `all`.
fn only(all: &Path, user: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(all).unwrap();
    let lines: String =
        text.lines().filter(|l| l.starts_with(&format!("{user} "))).map(|l| format!("{l}\n")).collect();
    assert!(!lines.is_empty(), "{text}");
    let path = dir.join(format!("{user}.keys"));
    std::fs::write(&path, lines).unwrap();
    path
}

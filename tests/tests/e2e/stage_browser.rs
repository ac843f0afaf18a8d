//! The staged-release page in Chromium, its WebAuthn virtual authenticator as the maintainer's
//! key: CI stages with `tapgate ci stage`; the maintainer, signed in on the page, sees who staged
//! it and what it changes, on a phone-sized screen, and approves it with a tap; a second stage is
//! rejected on the page. The real server binary.

use serde_json::{Value, json};
use tapgate::authenticator::{self, AuthenticatorChoice};
use tapgate_tests::browser::Browser;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};
use tapgate_tests::tools::browser_driver;

use crate::cli_publish::package_dir;

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

#[test]
fn ci_stages_and_a_maintainer_approves_on_the_page_with_a_tap() {
    let Some(driver) = browser_driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    // carol's keys: the browser's virtual authenticator (enrolled on the invite page) and a
    // software key for the CLI (a second invite); root is an administrator with a software key.
    let cli = |who: &str, args: &[&str], env: &[(&str, &str)]| {
        let key = format!("soft:{}", dir.path().join(format!("{who}.key")).display());
        let mut all = vec!["--server", registry.as_str(), "--authenticator", key.as_str()];
        all.extend_from_slice(args);
        let (status, out, err) = tapgate_cli(&dir.path().join(format!("cfg-{who}")), &all, env);
        assert!(status.success(), "tapgate {args:?}: {err}");
        out
    };
    for who in ["carol", "root", "dave"] {
        authenticator::open(&AuthenticatorChoice::Soft(dir.path().join(format!("{who}.key")))).unwrap();
    }
    let (_, out, _) =
        server_cli(&data, None, &["--origin", &registry, "user", "add", "root", "--admin", "--json"]);
    cli(
        "root",
        &["key", "add", "--invite", json_of(&out)["invite_url"].as_str().unwrap(), "--name", "k"],
        &[],
    );
    cli("root", &["login", "-u", "root"], &[]);
    let (_, out, _) = server_cli(&data, None, &["--origin", &registry, "user", "add", "carol", "--json"]);
    let invite_url = json_of(&out)["invite_url"].as_str().unwrap().to_string();
    let mut browser = Browser::start(&driver);
    browser.goto(&invite_url);
    browser.fill("#key-name", "virtual key");
    browser.click("#enroll");
    browser.wait_for("#status[data-state=ok]");
    let (_, out, _) = server_cli(&data, None, &["--origin", &registry, "user", "invite", "carol", "--json"]);
    cli(
        "carol",
        &["key", "add", "--invite", json_of(&out)["invite_url"].as_str().unwrap(), "--name", "cli"],
        &[],
    );
    cli("carol", &["login", "-u", "carol"], &[]);

    // carol publishes 1.0.0 and creates a CI credential; root lets CI stage.
    let v1 = package_dir(dir.path(), "gizmo", "1.0.0", "module.exports = 1;\n");
    cli("carol", &["publish", v1.to_str().unwrap()], &[]);
    cli("root", &["admin", "policy", "set", "gizmo", "--ci", "stage"], &[]);
    let created = json_of(&cli(
        "carol",
        &["--json", "ci", "create", "--package", "gizmo", "--versions", "^1.0.0"],
        &[],
    ));
    let credential = created["credential"].as_str().unwrap().to_string();
    let ci_env = [("TAPGATE_CI_TOKEN", credential.as_str())];

    // CI stages 1.1.0, which adds a postinstall script.
    let v2 = package_dir(&dir.path().join("v2"), "gizmo", "1.1.0", "module.exports = 2;\n");
    let manifest = v2.join("package.json");
    let mut pkg = json_of(&std::fs::read_to_string(&manifest).unwrap());
    pkg["scripts"] = json!({ "postinstall": "node setup.js" });
    std::fs::write(&manifest, pkg.to_string()).unwrap();
    let id = cli("ci", &["ci", "stage", v2.to_str().unwrap()], &ci_env).trim().to_string();

    // carol signs in on the page with the browser's key, and opens the stage on a phone.
    browser.goto(&format!("{registry}/login"));
    browser.fill("#username", "carol");
    browser.click("#login");
    browser.wait_for("#keys tbody tr");
    browser.viewport(390, 844);
    browser.goto(&format!("{registry}/pending"));
    browser.wait_for(&format!("#stages tbody tr[data-id='{id}']"));
    browser.goto(&format!("{registry}/stage/{id}"));
    browser.wait_for("#approve:not([disabled])");
    assert_eq!(browser.text("#package"), "gizmo");
    assert_eq!(browser.text("#version"), "1.1.0");
    assert!(
        browser
            .text("#staged-by")
            .contains(&format!("carol (ci-credential {})", created["id"].as_str().unwrap()))
    );
    assert!(
        browser.text("#scripts").contains("Install script postinstall added"),
        "{}",
        browser.text("#scripts")
    );
    assert!(
        browser
            .cmd(json!({"eval": "!document.getElementById('install-warning').classList.contains('hidden')"}))
            .as_bool()
            .unwrap()
    );
    let wide = browser.cmd(json!({"eval": "document.documentElement.scrollWidth <= window.innerWidth"}));
    assert_eq!(wide, json!(true), "nothing wider than the phone's screen");
    let dir_shots = tapgate_tests::bins::target_dir().join("screenshots");
    std::fs::create_dir_all(&dir_shots).unwrap();
    browser.cmd(json!({ "screenshot": dir_shots.join("stage.png").display().to_string() }));
    let unserved = reqwest::blocking::get(server.url("/gizmo/-/gizmo-1.1.0.tgz")).unwrap().status();
    assert_eq!(unserved, 404, "nothing is served before the approval");
    browser.click("#approve");
    browser.wait_for("#status[data-state=ok]");
    assert!(browser.text("#status").contains("Published gizmo@1.1.0"), "{}", browser.text("#status"));
    assert!(browser.text("#state").contains("published by carol"));
    let served: Value = reqwest::blocking::get(server.url("/gizmo")).unwrap().json().unwrap();
    assert_eq!(served["dist-tags"]["latest"], "1.1.0");

    // A second stage, rejected on the page: never published.
    let v3 = package_dir(&dir.path().join("v3"), "gizmo", "1.2.0", "module.exports = 3;\n");
    let id = cli("ci", &["ci", "stage", v3.to_str().unwrap()], &ci_env).trim().to_string();
    browser.goto(&format!("{registry}/stage/{id}"));
    browser.wait_for("#reject:not([disabled])");
    browser.click("#reject");
    browser.wait_for("#status[data-state=ok]");
    assert!(browser.text("#status").contains("never be published"), "{}", browser.text("#status"));
    assert!(browser.text("#state").contains("rejected by carol"));
    let served: Value = reqwest::blocking::get(server.url("/gizmo")).unwrap().json().unwrap();
    assert!(served["versions"].get("1.2.0").is_none(), "{served}");

    // Two maintainers must approve: carol taps on the page, which waits; dave approves with
    // `tapgate approve`; the page then publishes.
    let (_, out, _) = server_cli(&data, None, &["--origin", &registry, "user", "add", "dave", "--json"]);
    cli(
        "dave",
        &["key", "add", "--invite", json_of(&out)["invite_url"].as_str().unwrap(), "--name", "k"],
        &[],
    );
    cli("dave", &["login", "-u", "dave"], &[]);
    cli("carol", &["owner", "add", "dave", "gizmo"], &[]);
    cli("root", &["admin", "policy", "set", "gizmo", "--ci", "stage", "--approvals", "2"], &[]);
    let v4 = package_dir(&dir.path().join("v4"), "gizmo", "1.3.0", "module.exports = 4;\n");
    let id = cli("ci", &["ci", "stage", v4.to_str().unwrap()], &ci_env).trim().to_string();
    browser.goto(&format!("{registry}/stage/{id}"));
    browser.wait_for("#approve:not([disabled])");
    browser.click("#approve");
    browser.wait_for("#status[data-state=working]:has-text('Keep this page open')");
    let pending = json_of(&cli("dave", &["--json", "pending"], &[]));
    let url = pending["approvals"][0]["url"].as_str().unwrap_or_else(|| panic!("{pending}")).to_string();
    assert_eq!(pending["approvals"][0]["requested_by"], "carol", "{pending}");
    cli("dave", &["approve", &url], &[]);
    browser.wait_for("#status[data-state=ok]");
    assert!(browser.text("#status").contains("Published gizmo@1.3.0"), "{}", browser.text("#status"));
    let served: Value = reqwest::blocking::get(server.url("/gizmo")).unwrap().json().unwrap();
    assert_eq!(served["dist-tags"]["latest"], "1.3.0");
}

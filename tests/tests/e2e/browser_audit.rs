//! The audit log page in Chromium on a phone-sized screen: a package's entries newest first, the
//! chain recomputed in the browser, the registry's signed head, what the page can and cannot
//! prove; an entry edited in the database is shown as a broken chain. Linked from the approval
//! page.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tapgate_tests::browser::Browser;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};
use tapgate_tests::tools::browser_driver;

use crate::publish_details::package_tgz;

fn verdict(browser: &mut Browser) -> (String, String) {
    browser.wait_for("#verification:not([data-state=working])");
    let state = browser.cmd(json!({ "eval": "document.getElementById('verification').dataset.state" }));
    (state.as_str().unwrap_or_default().to_string(), browser.text("#verification"))
}

fn page_width(browser: &mut Browser) -> u64 {
    browser.cmd(json!({ "eval": "document.documentElement.scrollWidth" })).as_u64().unwrap()
}

#[test]
fn the_audit_page_checks_the_chain_in_the_browser_and_says_what_it_cannot_prove() {
    let Some(driver) = browser_driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    let registry = server.origin.clone();
    let key = crate::cli_publish::cli_user(&data, &registry, dir.path(), "carol");
    let cfg = dir.path().join("carol");
    let publish = |version: &str| {
        let tgz = package_tgz(
            &json!({ "name": "gadget", "version": version }),
            &[("index.js".into(), "module.exports = 1;\n".into())],
        );
        let file = dir.path().join(format!("gadget-{version}.tgz"));
        std::fs::write(&file, &tgz).unwrap();
        let args = ["--server", &registry, "--authenticator", &key, "publish", file.to_str().unwrap()];
        let (status, _, err) = tapgate_cli(&cfg, &args, &[]);
        assert!(status.success(), "{err}");
        tgz
    };
    publish("1.0.0");
    let v2 = publish("1.1.0");
    // bob, who does not maintain gadget, tries to publish it: a failed attempt on its log.
    server_cli(&data, None, &["user", "add", "bob"]);
    let (_, bob, _) = server_cli(&data, None, &["token", "issue", "bob"]);
    let resp = reqwest::blocking::Client::new()
        .put(server.url("/gadget"))
        .bearer_auth(bob.trim())
        .json(&crate::publish_support::publish_body("gadget", "1.2.0", &v2))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403, "{}", resp.text().unwrap());
    let chain: Value =
        reqwest::blocking::get(server.url("/api/v1/packages/gadget/audit")).unwrap().json().unwrap();
    let count = chain["head_seq"].as_u64().unwrap();
    assert!(count >= 3, "two publishes and a failed attempt: {chain}");

    let mut browser = Browser::start(&driver);
    browser.viewport(390, 844);
    browser.goto(&format!("{registry}/audit/gadget"));
    let (state, text) = verdict(&mut browser);
    assert_eq!(state, "ok", "{text}");
    assert!(text.contains("The chain holds together"), "{text}");
    assert!(text.contains(&format!("all {count} entries")), "{text}");
    assert!(text.contains("has not signed a head of this chain yet"), "{text}");
    let trust = browser.text(".trust");
    assert!(trust.contains("served by the registry itself"), "{trust}");
    assert!(trust.contains("tapgate audit verify gadget"), "{trust}");
    let entries = browser.cmd(json!({ "eval": r#"[...document.querySelectorAll('#entries li')].map((li) => ({
        seq: Number(li.dataset.seq), kind: li.dataset.kind, text: li.querySelector('.entry-what').textContent }))"# }));
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len() as u64, count, "{entries:?}");
    assert_eq!(entries[0]["seq"].as_u64(), Some(count), "newest first: {entries:?}");
    assert_eq!(entries.last().unwrap()["seq"], 1);
    let accepted: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "change.accepted")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(accepted.iter().any(|t| t.contains("1.0.0") && t.contains("carol")), "{accepted:?}");
    assert!(accepted.iter().any(|t| t.contains("1.1.0")), "{accepted:?}");
    let failed: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "attempt.failed").collect();
    assert!(failed.iter().any(|e| e["text"].as_str().unwrap().contains("bob")), "{entries:?}");
    assert!(page_width(&mut browser) <= 390, "{}", page_width(&mut browser));
    browser.click("#entries li:first-child details summary");
    browser.wait_for("#entries li:first-child pre");
    assert!(page_width(&mut browser) <= 390, "the entry as hashed fits too: {}", page_width(&mut browser));
    let console = browser.cmd(json!({ "console": true }));
    assert!(!console.to_string().contains("Content Security Policy"), "{console}");

    // Once the server signed the head (every minute), the page says so and that it matches.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let chain: Value =
            reqwest::blocking::get(server.url("/api/v1/packages/gadget/audit")).unwrap().json().unwrap();
        if chain["signed_head"]["seq"].as_u64() == Some(count) {
            break;
        }
        assert!(Instant::now() < deadline, "no signed head: {chain}");
        std::thread::sleep(Duration::from_millis(500));
    }
    browser.goto(&format!("{registry}/audit/gadget"));
    let (state, text) = verdict(&mut browser);
    assert_eq!(state, "ok", "{text}");
    assert!(text.contains(&format!("The registry signed entry {count}")), "{text}");
    assert!(text.contains("that head is the entry shown here"), "{text}");
    assert!(text.contains("does not check the signature itself"), "{text}");
    std::thread::sleep(Duration::from_millis(200));
    crate::browser::screenshot(&mut browser, "audit-phone");

    // Edit the first entry in the database: the page shows the chain broken, naming the entry.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", data.join("tapgate.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let edited = sqlx::query(
            "UPDATE audit_log SET entry = replace(entry, '1.0.0', '6.6.6') WHERE chain = 'package:gadget' AND seq = 1",
        )
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(edited, 1);
        pool.close().await;
    });
    browser.goto(&format!("{registry}/audit/gadget"));
    let (state, text) = verdict(&mut browser);
    assert_eq!(state, "error", "{text}");
    assert!(text.contains("The chain is broken") && text.contains("entry 1 was edited"), "{text}");

    // An unknown package: the page says so.
    browser.goto(&format!("{registry}/audit/no-such-package"));
    let (state, text) = verdict(&mut browser);
    assert_eq!(state, "error", "{text}");
    assert!(text.contains("Cannot read the log"), "{text}");

    // The approval page of a change to gadget links to its log.
    let credentials = std::fs::read_to_string(cfg.join("credentials.json")).unwrap();
    let token = serde_json::from_str::<Value>(&credentials).unwrap()["registries"][&registry]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let v3 =
        package_tgz(&json!({ "name": "gadget", "version": "1.3.0" }), &[("index.js".into(), "3\n".into())]);
    let resp = reqwest::blocking::Client::new()
        .put(server.url("/gadget"))
        .bearer_auth(&token)
        .json(&crate::publish_support::publish_body("gadget", "1.3.0", &v3))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge: Value = resp.json().unwrap();
    browser.goto(challenge["authUrl"].as_str().unwrap());
    browser.wait_for("#audit-link:not(.hidden)");
    let href = browser.cmd(json!({ "eval": "document.getElementById('audit-link').getAttribute('href')" }));
    assert_eq!(href, "/audit/gadget");
}

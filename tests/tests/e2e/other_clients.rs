//! pnpm and yarn 4 install from this registry. Both are fetched with `npx` from the public npm
//! registry into a scratch directory; packument requests go through a recording proxy that notes
//! the `Accept` each client sent: pnpm asks for the abbreviated packument, yarn 4 (like every
//! yarn since 2) for the full one, and each installs from what it gets.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::publish_support::*;
use crate::support::TestApp;
use tapgate_tests::db::Backend;

type Seen = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// A proxy in front of `app` for packuments (tarball URLs point at the app itself).
async fn recording_proxy(app: &TestApp) -> (String, Seen, tokio::sync::oneshot::Sender<()>) {
    let seen: Seen = Arc::default();
    let (target, record) = (app.base.clone(), seen.clone());
    let http = reqwest::Client::new();
    let router = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (target, record, http) = (target.clone(), record.clone(), http.clone());
        async move {
            let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            record.lock().unwrap().entry(uri.path().to_string()).or_default().push(accept.clone());
            let resp = http.get(format!("{target}{uri}")).header("accept", accept).send().await.unwrap();
            let status = resp.status().as_u16();
            let ctype =
                resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let body = resp.bytes().await.unwrap();
            (axum::http::StatusCode::from_u16(status).unwrap(), [("content-type", ctype)], body)
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    (base, seen, tx)
}

/// Runs `npx -y -p PACKAGE BIN ARGS` in `dir`, npx itself reading the public registry.
fn npx(dir: &Path, package: &str, bin: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("npx");
    cmd.args(["-y", "--registry", "https://registry.npmjs.org/", "-p", package, bin])
        .args(args)
        .current_dir(dir)
        .env("npm_config_cache", dir.join("npx-cache"))
        .env("npm_config_update_notifier", "false")
        .env_remove("CI")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run npx")
}

/// Whether `npx` can fetch `package` (a skip is loud, and a failure under
/// TAPGATE_TEST_REQUIRE_TOOLS=1).
fn fetchable(dir: &Path, package: &str, bin: &str) -> bool {
    let out = npx(dir, package, bin, &["--version"], &[]);
    if out.status.success() {
        return true;
    }
    let why = String::from_utf8_lossy(&out.stderr).to_string();
    if std::env::var("TAPGATE_TEST_REQUIRE_TOOLS").is_ok_and(|v| v == "1" || v == "true") {
        panic!("npx cannot fetch {package} and TAPGATE_TEST_REQUIRE_TOOLS=1 forbids skipping: {why}");
    }
    eprintln!("\n!!!!! SKIPPED: {package} install test: npx cannot fetch it: {why}\n");
    false
}

async fn published_app() -> Option<TestApp> {
    let app = TestApp::new(Backend::Sqlite).await?;
    let alice = maintainer(&app, "alice").await;
    for v in ["1.0.0", "1.1.0"] {
        let resp = publish_with_key(&app, &alice, "lib", v, &tarball("lib", v, v)).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    Some(app)
}

fn project(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("project");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("package.json"),
        json!({"name": "consumer", "version": "1.0.0", "private": true, "dependencies": {"lib": "^1.0.0"}})
            .to_string(),
    )
    .unwrap();
    p
}

fn installed(project: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(project.join("node_modules/lib/package.json")).unwrap())
        .unwrap()
}

/// Asserts that every read of lib's packument asked for the abbreviated form, or none did.
fn assert_form(seen: &Seen, abbreviated: bool) {
    let seen = seen.lock().unwrap();
    let accepts = seen.get("/lib").unwrap_or_else(|| panic!("the packument was never read: {seen:?}"));
    assert!(
        accepts.iter().all(|a| a.starts_with("application/vnd.npm.install-v1+json") == abbreviated),
        "abbreviated: {abbreviated}, asked: {accepts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pnpm_installs_from_the_abbreviated_packument() {
    let dir = tempfile::tempdir().unwrap();
    if !crate::support::npm_tools() || !fetchable(dir.path(), "pnpm@9", "pnpm") {
        return;
    }
    let Some(app) = published_app().await else { return };
    let (proxy, seen, _stop) = recording_proxy(&app).await;
    let project = project(dir.path());
    let store = dir.path().join("pnpm-store");
    let registry = format!("{proxy}/");
    let out = tokio::task::spawn_blocking(move || {
        npx(
            &project,
            "pnpm@9",
            "pnpm",
            &["install", "--registry", &registry, "--store-dir", store.to_str().unwrap()],
            &[],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "pnpm install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(installed(&dir.path().join("project"))["version"], "1.1.0");
    assert_form(&seen, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yarn_4_installs_from_the_full_packument() {
    let dir = tempfile::tempdir().unwrap();
    if !crate::support::npm_tools() || !fetchable(dir.path(), "@yarnpkg/cli-dist@4", "yarn") {
        return;
    }
    let Some(app) = published_app().await else { return };
    let (proxy, seen, _stop) = recording_proxy(&app).await;
    let project = project(dir.path());
    std::fs::write(
        project.join(".yarnrc.yml"),
        format!(
            "npmRegistryServer: \"{proxy}\"\nunsafeHttpWhitelist:\n  - \"127.0.0.1\"\n  - \"localhost\"\n\
             nodeLinker: node-modules\nenableTelemetry: false\nenableGlobalCache: false\n\
             npmMinimalAgeGate: 0\n"
        ),
    )
    .unwrap();
    std::fs::write(project.join("yarn.lock"), "").unwrap();
    // Yarn 4's age gate quarantines versions younger than a day; these were published just now.
    let out = tokio::task::spawn_blocking(move || {
        npx(
            &project,
            "@yarnpkg/cli-dist@4",
            "yarn",
            &["install"],
            &[("YARN_ENABLE_IMMUTABLE_INSTALLS", "false")],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "yarn install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(installed(&dir.path().join("project"))["version"], "1.1.0");
    assert_form(&seen, false);
}

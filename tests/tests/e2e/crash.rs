//! Killing the server (SIGKILL) in the middle of publishes leaves every version whole or absent:
//! after a restart, each listed version's tarball downloads and matches its integrity, every
//! dist-tag points at a listed version, and every publish that was acknowledged is there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tapgate_shared::intent::sri_sha512;
use tapgate_tests::db::{Backend, TestDb};
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli};

use crate::publish_support::{publish_body, tarball_with_body};

async fn crash_mid_publish(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let data = db.data_dir();
    let url = (backend == Backend::Postgres).then(|| db.url.clone());
    let opts = ServeOptions {
        database_url: url.clone(),
        extra_args: vec!["--default-policy".into(), "none".into()],
        ..Default::default()
    };
    let server = ServerProcess::start(&data, &opts);
    let (_, token, err) = {
        let (s, _, e) = server_cli(&data, url.as_deref(), &["user", "add", "alice"]);
        assert!(s.success(), "{e}");
        server_cli(&data, url.as_deref(), &["token", "issue", "alice"])
    };
    let token = token.trim().to_string();
    assert!(!token.is_empty(), "{err}");
    let base = server.base.clone();
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (http, base, token, acknowledged) =
            (http.clone(), base.clone(), token.clone(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            for v in 0..200 {
                let name = format!("crash-{worker}");
                let version = format!("1.0.{v}");
                // Large enough that writes take a moment: about 256 KiB each.
                let tgz = tarball_with_body(&name, &version, &version, &"x".repeat(256 * 1024 + v));
                let body = publish_body(&name, &version, &tgz);
                match http.put(format!("{base}/{name}")).bearer_auth(&token).json(&body).send().await {
                    Ok(r) if r.status() == 201 => acknowledged.lock().unwrap().push((name, version)),
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    for t in tasks {
        let _ = t.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty(), "some publishes completed before the kill");
    assert!(acknowledged.len() < 800, "the kill must land while publishes are still running");

    let server = ServerProcess::start(&data, &opts);
    let mut seen = 0;
    for worker in 0..4 {
        let name = format!("crash-{worker}");
        let resp = http.get(server.url(&format!("/{name}"))).send().await.unwrap();
        if resp.status() == 404 {
            assert!(!acknowledged.iter().any(|(n, _)| *n == name), "{name} was acknowledged but is gone");
            continue;
        }
        let doc: Value = resp.json().await.unwrap();
        let versions = doc["versions"].as_object().unwrap();
        for (version, manifest) in versions {
            let integrity = manifest["dist"]["integrity"].as_str().unwrap();
            let bytes = http
                .get(server.url(&format!("/{name}/-/{name}-{version}.tgz")))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(sri_sha512(&bytes), integrity, "{name}@{version} is whole");
            seen += 1;
        }
        for (tag, target) in doc["dist-tags"].as_object().unwrap() {
            assert!(versions.contains_key(target.as_str().unwrap()), "dist-tag {tag} of {name} dangles");
        }
        for (n, v) in acknowledged.iter().filter(|(n, _)| *n == name) {
            assert!(versions.contains_key(v), "{n}@{v} was acknowledged but is missing");
        }
    }
    assert!(seen >= acknowledged.len());
}

#[tokio::test]
async fn sqlite_crash_mid_publish_leaves_whole_versions() {
    crash_mid_publish(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_crash_mid_publish_leaves_whole_versions() {
    crash_mid_publish(Backend::Postgres).await;
}

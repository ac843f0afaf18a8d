//! One anonymous packument GET must not let a client make the server allocate many times the
//! document it sends. A package with 150 versions of about 200 KiB of metadata each (near the
//! per-version cap) is read by 4 concurrent clients; the server's peak resident memory during the
//! reads is measured from /proc (VmHWM, reset first through clear_refs) and must stay within a
//! small multiple of what the reads send.

use std::time::Duration;

use serde_json::json;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli};

use crate::publish_support::{publish_body, tarball_with_body};

const VERSIONS: usize = 150;
const READERS: usize = 4;

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn manifest_tarball(name: &str, version: &str) -> Vec<u8> {
    // The metadata is what the packument carries: a large description in package.json.
    let description = format!("{version} ").repeat(200 * 1024 / (version.len() + 1));
    tarball_with_body(name, version, &description, "module.exports = 1;\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_packument_costs_a_small_multiple_of_what_it_sends() {
    if !std::path::Path::new("/proc/self/clear_refs").exists() {
        eprintln!("\n!!!!! SKIPPED: packument memory test: no /proc/PID/clear_refs on this system.\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts =
        ServeOptions { extra_args: vec!["--default-policy".into(), "none".into()], ..Default::default() };
    let server = ServerProcess::start(&data, &opts);
    let (s, _, e) = server_cli(&data, None, &["user", "add", "alice"]);
    assert!(s.success(), "{e}");
    let (_, token, _) = server_cli(&data, None, &["token", "issue", "alice"]);
    let token = token.trim().to_string();
    let http = reqwest::Client::new();
    for v in 0..VERSIONS {
        let version = format!("1.0.{v}");
        let body = publish_body("big", &version, &manifest_tarball("big", &version));
        let resp = http.put(server.url("/big")).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }
    let pid = server.pid();
    // Reset the high-water mark, let the allocator settle, then read concurrently.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_kib = status_kib(pid, "VmRSS:");
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let (http, url) = (http.clone(), server.url("/big"));
        readers.push(tokio::spawn(async move {
            let resp = http.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap().len()
        }));
    }
    let mut sent = 0;
    for r in readers {
        sent += r.await.unwrap();
    }
    let peak_kib = status_kib(pid, "VmHWM:");
    let grown_kib = peak_kib.saturating_sub(before_kib);
    let doc_kib = (sent / READERS / 1024) as u64;
    eprintln!(
        "packument memory: document {doc_kib} KiB, {READERS} concurrent GETs, peak RSS grew {grown_kib} KiB ({:.2}x the bytes sent)",
        grown_kib as f64 / (doc_kib * READERS as u64) as f64
    );
    assert!(doc_kib > 20 * 1024, "the document is large ({doc_kib} KiB)");
    // Each GET holds the rows it read (about one document) while they stream out.
    assert!(
        grown_kib <= 2 * doc_kib * READERS as u64,
        "peak RSS grew {grown_kib} KiB for {READERS} GETs of {doc_kib} KiB"
    );
    // Metadata beyond the per-version cap is refused.
    let huge = publish_body("big", "2.0.0", &{
        let description = "x".repeat(300 * 1024);
        tarball_with_body("big", "2.0.0", &description, "1")
    });
    let resp = http.put(server.url("/big")).bearer_auth(&token).json(&huge).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!("payload_too_large"));
}

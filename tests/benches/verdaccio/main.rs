//! tapgate and Verdaccio 6 side by side, in one run, with the same driver, on loopback.
//!
//! `cargo bench -p tapgate-tests --bench verdaccio [-- --seconds S]` installs Verdaccio 6 from
//! the npm registry into a temporary directory, starts it and the release `tapgate-server`, and
//! measures on both: plain publish at concurrency 1, 8 and 32; tapgate's gated publish (intent,
//! software-key tap, ticket, upload) at 8; the abbreviated packument GET (gzip, as npm asks) of
//! packages with 1, 100 and 1000 versions; tarball GET; `npm install` of 100 packages with a cold
//! cache; bytes on the wire per request (headers and body as sent); peak RSS under the read load.
//! Every loop is bounded (a request count and a time limit); it stops by itself and reports
//! tapgate ÷ Verdaccio ratios.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod setup;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use serde_json::{Value, json};
use sha1::Digest;
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket};
use tapgate_shared::intent::sri_sha512;

const CORGI: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

/// A registry under test: where it is and the bearer token that publishes.
#[derive(Clone)]
struct Target {
    name: &'static str,
    base: String,
    token: String,
}

fn tarball(name: &str, version: &str) -> Vec<u8> {
    let mut payload = vec![0u8; 10 * 1024];
    rand::rng().fill_bytes(&mut payload);
    let manifest = json!({ "name": name, "version": version, "description": "bench package",
        "scripts": {"test": "true"} })
    .to_string();
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in
        [("package/package.json", manifest.as_bytes()), ("package/blob.bin", payload.as_slice())]
    {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, data).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

fn publish_body(name: &str, version: &str, tgz: &[u8]) -> Value {
    let file = format!("{name}-{version}.tgz");
    json!({
        "_id": name, "name": name, "dist-tags": {"latest": version},
        "versions": {version: {"name": name, "version": version, "description": "bench package",
            "_id": format!("{name}@{version}"),
            "dist": {"integrity": sri_sha512(tgz), "shasum": hex::encode(sha1::Sha1::digest(tgz)),
                     "tarball": format!("http://localhost/{name}/-/{file}")}}},
        "_attachments": {file: {"content_type": "application/octet-stream",
            "data": base64::engine::general_purpose::STANDARD.encode(tgz), "length": tgz.len()}},
    })
}

/// Bytes of a response as sent: status line, headers, body (still encoded).
async fn wire_bytes(resp: reqwest::Response) -> (u16, usize) {
    let status = resp.status().as_u16();
    let head: usize = 17 + resp.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>();
    let body = resp.bytes().await.map(|b| b.len()).unwrap_or(0);
    (status, head + body)
}

async fn publish(http: &reqwest::Client, t: &Target, name: &str, version: &str, otp: Option<&str>) -> usize {
    let tgz = tarball(name, version);
    let mut req =
        http.put(format!("{}/{name}", t.base)).bearer_auth(&t.token).json(&publish_body(name, version, &tgz));
    if let Some(otp) = otp {
        req = req.header("npm-otp", otp);
    }
    let (status, bytes) = wire_bytes(req.send().await.unwrap()).await;
    assert!(status == 200 || status == 201, "{} publish of {name}@{version}: {status}", t.name);
    bytes
}

/// `workers` concurrent publishers, each to its own package, `per_worker` versions each (or
/// until `limit`): publishes/s and response bytes per publish.
async fn plain_publish(
    http: &reqwest::Client,
    t: &Target,
    workers: usize,
    per_worker: usize,
    limit: Duration,
) -> (f64, usize) {
    let start = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (http, t, done, bytes) = (http.clone(), t.clone(), done.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            for v in 0..per_worker {
                if start.elapsed() > limit {
                    break;
                }
                let b =
                    publish(&http, &t, &format!("plain-c{workers}-w{w}"), &format!("1.0.{v}"), None).await;
                bytes.fetch_add(b, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed).max(1);
    (n as f64 / start.elapsed().as_secs_f64(), bytes.load(Ordering::Relaxed) / n)
}

/// The whole gate per publish: intent, tap (software key), ticket, upload.
async fn gated_publish(
    http: &reqwest::Client,
    server: &tapgate_tests::process::ServerProcess,
    maintainers: Vec<setup::Maintainer>,
    per_worker: usize,
    limit: Duration,
) -> f64 {
    let start = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for m in maintainers {
        let (http, done) = (http.clone(), done.clone());
        let (base, origin) = (server.base.clone(), server.origin.clone());
        tasks.push(tokio::spawn(async move {
            let t = Target { name: "tapgate", base: base.clone(), token: m.token.clone() };
            for v in 0..per_worker {
                if start.elapsed() > limit {
                    break;
                }
                let version = format!("1.0.{v}");
                let tgz = tarball(&m.package, &version);
                let info: ApprovalInfo = http
                    .post(format!("{base}/api/v1/approvals"))
                    .bearer_auth(&m.token)
                    .json(&json!({"package": m.package, "version": version, "integrity": sri_sha512(&tgz)}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let cred = tapgate::ceremony::assert(&m.key, info.public_key.as_ref().unwrap(), &origin)
                    .await
                    .unwrap();
                let ticket: ApprovalTicket = http
                    .post(format!("{base}/api/v1/approvals/{}", info.id))
                    .json(&json!({"credential": cred}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                // The same bytes the tap approved.
                let body = publish_body(&m.package, &version, &tgz);
                let resp = http
                    .put(format!("{}/{}", t.base, m.package))
                    .bearer_auth(&t.token)
                    .header("npm-otp", &ticket.ticket)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// `concurrency` clients GETting `url` until `max` requests or `limit`: requests/s and bytes
/// per response.
async fn read_load(
    http: &reqwest::Client,
    url: &str,
    accept: &str,
    concurrency: usize,
    max: usize,
    limit: Duration,
) -> (f64, usize) {
    let start = Instant::now();
    let issued = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, accept, issued, bytes) =
            (http.clone(), url.to_string(), accept.to_string(), issued.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = 0;
            while issued.fetch_add(1, Ordering::Relaxed) < max && start.elapsed() < limit {
                let resp = http
                    .get(&url)
                    .header("accept", &accept)
                    .header("accept-encoding", "gzip")
                    .send()
                    .await
                    .unwrap();
                let (status, b) = wire_bytes(resp).await;
                assert_eq!(status, 200, "GET {url}");
                bytes.fetch_add(b, Ordering::Relaxed);
                mine += 1;
            }
            mine
        }));
    }
    let mut n = 0;
    for task in tasks {
        n += task.await.unwrap();
    }
    (n as f64 / start.elapsed().as_secs_f64(), bytes.load(Ordering::Relaxed) / n.max(1))
}

/// `npm install` of a project depending on `deps`, with an empty cache: seconds.
fn npm_install(dir: &std::path::Path, registry: &str, token: &str, deps: &[String]) -> f64 {
    let project = dir.join(format!("project-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&project).unwrap();
    let deps: serde_json::Map<String, Value> = deps.iter().map(|d| (d.clone(), json!("1.0.0"))).collect();
    std::fs::write(
        project.join("package.json"),
        json!({"name": "p", "version": "1.0.0", "private": true, "dependencies": deps}).to_string(),
    )
    .unwrap();
    let host = registry.trim_start_matches("http://");
    std::fs::write(project.join(".npmrc"), format!("registry={registry}/\n//{host}/:_authToken={token}\n"))
        .unwrap();
    let start = Instant::now();
    let out = std::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"])
        .current_dir(&project)
        .env("npm_config_cache", project.join("cache"))
        .env("npm_config_userconfig", project.join(".npmrc"))
        .output()
        .unwrap();
    assert!(out.status.success(), "npm install from {registry}: {}", String::from_utf8_lossy(&out.stderr));
    start.elapsed().as_secs_f64()
}

fn main() {
    let mut seconds = 5u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--seconds" {
            seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds);
        }
    }
    let limit = Duration::from_secs(seconds);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(limit));
}

async fn run(limit: Duration) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let verdaccio = setup::verdaccio(dir.path(), &http).await;
    let (server, token) = setup::tapgate(dir.path());
    let tg = Target { name: "tapgate", base: server.base.clone(), token };
    let vd = Target { name: "verdaccio", base: verdaccio.base.clone(), token: verdaccio.token.clone() };
    let mut rows: Vec<(String, f64, f64, &str)> = Vec::new();

    for c in [1usize, 8, 32] {
        let per = 256 / c;
        let (a, ab) = plain_publish(&http, &tg, c, per, limit).await;
        let (b, bb) = plain_publish(&http, &vd, c, per, limit).await;
        rows.push((format!("plain publish, concurrency {c} (publishes/s)"), a, b, "x"));
        if c == 8 {
            rows.push(("publish response (bytes)".into(), ab as f64, bb as f64, "bytes"));
        }
    }
    let plain8 = rows[1].1;
    let mut maintainers = Vec::new();
    for i in 0..8 {
        maintainers.push(setup::gated_maintainer(&http, &server, dir.path(), i).await);
    }
    let gated = gated_publish(&http, &server, maintainers, 32, limit).await;

    // Packages with 1, 100 and 1000 versions (published one after the other, not measured).
    for (name, n) in [("v1", 1usize), ("v100", 100), ("v1000", 1000)] {
        for t in [&tg, &vd] {
            for v in 0..n {
                publish(&http, t, name, &format!("1.0.{v}"), None).await;
            }
        }
    }
    setup::reset_peak_rss(server.pid());
    setup::reset_peak_rss(verdaccio.pid());
    for (name, n) in [("v1", 1usize), ("v100", 100), ("v1000", 1000)] {
        let url = |t: &Target| format!("{}/{name}", t.base);
        let (a, ab) = read_load(&http, &url(&tg), CORGI, 16, 20_000, limit).await;
        let (b, bb) = read_load(&http, &url(&vd), CORGI, 16, 20_000, limit).await;
        rows.push((format!("abbreviated packument GET, {n} versions, gzip (requests/s)"), a, b, "x"));
        rows.push(("  its response (bytes)".to_string(), ab as f64, bb as f64, "bytes"));
    }
    let tarball = |t: &Target| format!("{}/v1/-/v1-1.0.0.tgz", t.base);
    let (a, ab) = read_load(&http, &tarball(&tg), "*/*", 16, 20_000, limit).await;
    let (b, bb) = read_load(&http, &tarball(&vd), "*/*", 16, 20_000, limit).await;
    rows.push(("tarball GET (requests/s)".into(), a, b, "x"));
    rows.push(("  its response (bytes)".into(), ab as f64, bb as f64, "bytes"));
    let rss = (setup::peak_rss_kib(server.pid()) as f64, setup::peak_rss_kib(verdaccio.pid()) as f64);
    rows.push(("peak RSS under the read load (KiB)".into(), rss.0, rss.1, "KiB"));

    // npm install of 100 packages, cold cache.
    let deps: Vec<String> = (0..100).map(|i| format!("dep-{i}")).collect();
    for t in [&tg, &vd] {
        for d in &deps {
            publish(&http, t, d, "1.0.0", None).await;
        }
    }
    let a = npm_install(dir.path(), &tg.base, &tg.token, &deps);
    let b = npm_install(dir.path(), &vd.base, &vd.token, &deps);
    rows.push(("npm install, 100 packages, cold cache (s)".into(), a, b, "s"));

    println!("\ntapgate vs Verdaccio 6, one run, loopback; load average before the run: {}", load.trim());
    println!("{:<62} {:>12} {:>12} {:>9}", "", "tapgate", "Verdaccio", "ratio");
    for (what, a, b, _) in &rows {
        println!("{what:<62} {a:>12.1} {b:>12.1} {:>8.2}x", a / b.max(f64::MIN_POSITIVE));
    }
    println!(
        "{:<62} {gated:>12.1} {:>12} {:>8.2}x (of tapgate's plain publish at 8)",
        "gated publish, concurrency 8 (publishes/s)",
        "-",
        gated / plain8
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after the run: {}", load.trim());
}

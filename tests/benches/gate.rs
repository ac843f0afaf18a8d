//! Load driver for the whole publish gate: N maintainers, each with a software key, publishing
//! concurrently. Every publish is the full path: create the intent, sign its challenge, verify
//! the approval (ticket), upload a 10 KiB tarball with the ticket.
//!
//! `cargo bench -p tapgate-tests --bench gate -- [--backend sqlite|postgres|both]
//!  [--maintainers N] [--publishes-per-maintainer P]`
//!
//! Reports publishes/s and p50/p99 latency per backend, measured in one run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use serde_json::{Value, json};
use sha1::Digest;
use tapgate::authenticator::AuthenticatorChoice;
use tapgate_server::clock::SystemClock;
use tapgate_server::store::Store;
use tapgate_server::webauthn::{AttestationTrust, RelyingParty};
use tapgate_server::{AppConfig, AppState};
use tapgate_shared::api::{
    ApprovalInfo, ApprovalTicket, AuthenticationChallenge, RegistrationChallenge, SecondFactor,
};
use tapgate_shared::intent::sri_sha512;
use tapgate_tests::db::{Backend, TestDb};

struct Args {
    backends: Vec<Backend>,
    maintainers: usize,
    per_maintainer: usize,
}

fn args() -> Args {
    let mut a =
        Args { backends: vec![Backend::Sqlite, Backend::Postgres], maintainers: 8, per_maintainer: 25 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--backend" => {
                a.backends = match it.next().as_deref() {
                    Some("sqlite") => vec![Backend::Sqlite],
                    Some("postgres") => vec![Backend::Postgres],
                    _ => vec![Backend::Sqlite, Backend::Postgres],
                }
            }
            "--maintainers" => {
                a.maintainers = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.maintainers)
            }
            "--publishes-per-maintainer" => {
                a.per_maintainer = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.per_maintainer)
            }
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// A valid 10 KiB (incompressible) npm tarball.
fn tarball(name: &str, version: &str) -> Vec<u8> {
    let mut payload = vec![0u8; 10 * 1024];
    rand::rng().fill_bytes(&mut payload);
    let manifest = json!({ "name": name, "version": version }).to_string();
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

struct Maintainer {
    key: AuthenticatorChoice,
    token: String,
}

async fn setup_maintainer(
    http: &reqwest::Client,
    base: &str,
    origin: &str,
    store: &Store,
    dir: &std::path::Path,
    i: usize,
) -> Maintainer {
    let name = format!("maint{i}");
    let user = store.create_user(&name, false, now()).await.unwrap();
    let invite = store.create_invite(&user.id, now()).await.unwrap();
    let key = AuthenticatorChoice::Soft(dir.join(format!("{name}.key")));
    let begin: RegistrationChallenge = http
        .post(format!("{base}/api/v1/keys/registrations"))
        .bearer_auth(&invite)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cred = tapgate::ceremony::register(&key, &begin.public_key, origin).await.unwrap();
    let resp = http
        .post(format!("{base}/api/v1/keys/registrations/{}", begin.ceremony))
        .bearer_auth(&invite)
        .json(&json!({"name": "k", "credential": cred}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let begin: AuthenticationChallenge = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({"username": name}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cred = tapgate::ceremony::assert(&key, &begin.public_key, origin).await.unwrap();
    let done: Value = http
        .post(format!("{base}/api/v1/sessions/{}", begin.ceremony))
        .json(&json!({"credential": cred}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Maintainer { key, token: done["token"].as_str().unwrap().to_string() }
}

fn now() -> i64 {
    use tapgate_server::clock::Clock;
    SystemClock.now()
}

#[derive(Default)]
struct Timings {
    total: Vec<Duration>,
    intent: Vec<Duration>,
    approve: Vec<Duration>,
    upload: Vec<Duration>,
}

async fn publish_once(
    http: &reqwest::Client,
    base: &str,
    origin: &str,
    m: &Maintainer,
    name: &str,
    version: &str,
    t: &mut Timings,
) {
    let tgz = tarball(name, version);
    let integrity = sri_sha512(&tgz);
    let start = Instant::now();
    let info: ApprovalInfo = http
        .post(format!("{base}/api/v1/approvals"))
        .bearer_auth(&m.token)
        .json(&json!({"package": name, "version": version, "integrity": integrity}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t1 = Instant::now();
    let cred = tapgate::ceremony::assert(&m.key, info.public_key.as_ref().unwrap(), origin).await.unwrap();
    let ticket: ApprovalTicket = http
        .post(format!("{base}/api/v1/approvals/{}", info.id))
        .json(&json!({"credential": cred}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t2 = Instant::now();
    let file = format!("{name}-{version}.tgz");
    let body = json!({
        "_id": name, "name": name, "dist-tags": {"latest": version},
        "versions": {version: {"name": name, "version": version, "dist": {
            "integrity": integrity, "shasum": hex::encode(sha1::Sha1::digest(&tgz))}}},
        "_attachments": {file: {"content_type": "application/octet-stream",
            "data": base64::engine::general_purpose::STANDARD.encode(&tgz), "length": tgz.len()}},
    });
    let resp = http
        .put(format!("{base}/{name}"))
        .bearer_auth(&m.token)
        .header("npm-otp", &ticket.ticket)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let end = Instant::now();
    t.intent.push(t1 - start);
    t.approve.push(t2 - t1);
    t.upload.push(end - t2);
    t.total.push(end - start);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(backend: Backend, a: &Args) -> Option<(f64, Duration, Duration)> {
    let db = TestDb::new(backend).await?;
    let store = Store::connect(&db.url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = format!("http://localhost:{port}");
    let base = format!("http://127.0.0.1:{port}");
    let config = AppConfig {
        origin: origin.parse().unwrap(),
        max_json_bytes: 1024 * 1024,
        default_policy: SecondFactor::SecurityKey,
        max_tarball_bytes: 10 * 1024 * 1024,
        approval_ttl_seconds: tapgate_server::gate::approvals::DEFAULT_INTENT_TTL_SECONDS,
        connections: Default::default(),
        // Every maintainer taps from 127.0.0.1: the bench measures the gate, not the limits.
        rate_limits: tapgate_server::limits::RateLimits::off(),
        trusted_proxies: Vec::new(),
        notify: Default::default(),
        upstream: None,
        oidc: Default::default(),
        default_ci: Vec::new(),
    };
    let rp = RelyingParty::new(&config.origin, AttestationTrust::none()).unwrap();
    let state = AppState::new(store.clone(), Arc::new(SystemClock), config, rp);
    tokio::spawn(tapgate_server::serve(listener, state, std::future::pending()));
    let http = reqwest::Client::new();
    let keys_dir = tempfile::tempdir().unwrap();
    let mut maintainers = Vec::new();
    for i in 0..a.maintainers {
        maintainers.push(setup_maintainer(&http, &base, &origin, &store, keys_dir.path(), i).await);
    }
    // Warm-up: one publish each, not measured.
    for (i, m) in maintainers.iter().enumerate() {
        publish_once(&http, &base, &origin, m, &format!("bench-{i}"), "0.0.1", &mut Timings::default()).await;
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, m) in maintainers.into_iter().enumerate() {
        let (http, base, origin) = (http.clone(), base.clone(), origin.clone());
        let per = a.per_maintainer;
        tasks.push(tokio::spawn(async move {
            let mut t = Timings::default();
            for v in 0..per {
                publish_once(&http, &base, &origin, &m, &format!("bench-{i}"), &format!("1.0.{v}"), &mut t)
                    .await;
            }
            t
        }));
    }
    let mut all = Timings::default();
    for task in tasks {
        let t = task.await.unwrap();
        all.total.extend(t.total);
        all.intent.extend(t.intent);
        all.approve.extend(t.approve);
        all.upload.extend(t.upload);
    }
    let elapsed = start.elapsed();
    for v in [&mut all.total, &mut all.intent, &mut all.approve, &mut all.upload] {
        v.sort();
    }
    let rate = all.total.len() as f64 / elapsed.as_secs_f64();
    let (p50, p99) = (percentile(&all.total, 0.5), percentile(&all.total, 0.99));
    println!(
        "{:<9} {:>4} maintainers {:>5} publishes in {:>6.2} s: {:>7.1} publishes/s, latency p50 {:>7.1} ms p99 {:>7.1} ms \
         (p50 intent {:.1} ms, tap+verify {:.1} ms, upload {:.1} ms)",
        format!("{backend:?}"),
        a.maintainers,
        all.total.len(),
        elapsed.as_secs_f64(),
        rate,
        ms(p50),
        ms(p99),
        ms(percentile(&all.intent, 0.5)),
        ms(percentile(&all.approve, 0.5)),
        ms(percentile(&all.upload, 0.5)),
    );
    Some((rate, p50, p99))
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut results = Vec::new();
    for backend in &a.backends {
        if let Some(r) = rt.block_on(run(*backend, &a)) {
            results.push((*backend, r));
        }
    }
    if let [(b1, (r1, p50a, p99a)), (b2, (r2, p50b, p99b))] = results.as_slice() {
        println!(
            "ratio {b2:?}/{b1:?}: throughput {:.2}x, p50 {:.2}x, p99 {:.2}x",
            r2 / r1,
            p50b.as_secs_f64() / p50a.as_secs_f64(),
            p99b.as_secs_f64() / p99a.as_secs_f64()
        );
    }
}

//! The two registries the benchmark compares, started on loopback: Verdaccio 6 (installed from
//! the npm registry into the run's temporary directory) and the release `tapgate-server`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tapgate::authenticator::AuthenticatorChoice;
use tapgate_shared::api::{AuthenticationChallenge, RegistrationChallenge};
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli};

/// Verdaccio, running; killed when dropped.
pub struct Verdaccio {
    child: Child,
    pub base: String,
    pub token: String,
}

impl Verdaccio {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Installs `verdaccio@6` into `dir` from the public npm registry, starts it on loopback with
/// no uplinks and logs off, and creates a user.
pub async fn verdaccio(dir: &Path, http: &reqwest::Client) -> Verdaccio {
    let install = dir.join("verdaccio-install");
    std::fs::create_dir_all(&install).unwrap();
    eprintln!("installing verdaccio@6 from https://registry.npmjs.org/ into {}", install.display());
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
        .arg(&install)
        .args(["--registry", "https://registry.npmjs.org/", "verdaccio@6"])
        .env("npm_config_cache", dir.join("npm-cache-verdaccio"))
        .output()
        .unwrap();
    assert!(out.status.success(), "installing verdaccio failed: {}", String::from_utf8_lossy(&out.stderr));
    let port = free_port();
    let config = dir.join("verdaccio.yaml");
    std::fs::write(
        &config,
        format!(
            "storage: {storage}\nauth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: 1000\nuplinks: {{}}\n\
             packages:\n  '**':\n    access: $all\n    publish: $authenticated\n    unpublish: $authenticated\n\
             max_body_size: 100mb\nlog: {{ type: stdout, format: pretty, level: fatal }}\n",
            storage = dir.join("verdaccio-storage").display(),
            htpasswd = dir.join("htpasswd").display(),
        ),
    )
    .unwrap();
    let child = Command::new("node")
        .arg(install.join("node_modules/verdaccio/bin/verdaccio"))
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{base}/-/ping")).send().await.map(|r| r.status().is_success()).ok() != Some(true)
    {
        assert!(Instant::now() < deadline, "verdaccio did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resp: Value = http
        .put(format!("{base}/-/user/org.couchdb.user:bench"))
        .json(&json!({"name": "bench", "password": "bench-password-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = resp["token"].as_str().unwrap_or_else(|| panic!("no verdaccio token: {resp}")).to_string();
    Verdaccio { child, base, token }
}

/// tapgate with its data in `dir`, publishing without taps by default (packages reserved with
/// `security-key` are gated), logs at `warn`, rate limits off (every client is 127.0.0.1).
pub fn tapgate(dir: &Path) -> (ServerProcess, String) {
    let data = dir.join("tapgate-data");
    let mut extra: Vec<String> = vec!["--default-policy".into(), "none".into()];
    for limit in [
        "sign-in",
        "sign-in-account",
        "taps",
        "taps-account",
        "otp-failures",
        "otp-failures-account",
        "invites",
    ] {
        extra.extend([format!("--limit-{limit}"), "off".into()]);
    }
    let opts = ServeOptions {
        extra_args: extra,
        env: vec![("RUST_LOG".into(), "warn".into())],
        ..Default::default()
    };
    // The listening line is logged at info: let it through, then nothing below warn.
    let mut opts_start = opts.clone();
    opts_start.env = vec![("RUST_LOG".into(), "warn,tapgate_server::cli::serve=info".into())];
    let server = ServerProcess::start(&data, &opts_start);
    let (s, _, e) = server_cli(&data, None, &["user", "add", "bench"]);
    assert!(s.success(), "{e}");
    let (_, token, _) = server_cli(&data, None, &["token", "issue", "bench", "--scope", "read,publish"]);
    (server, token.trim().to_string())
}

/// A tapgate maintainer with a software key, and the package reserved for them with the
/// `security-key` policy (every publish needs a tap).
pub struct Maintainer {
    pub key: AuthenticatorChoice,
    pub token: String,
    pub package: String,
}

pub async fn gated_maintainer(
    http: &reqwest::Client,
    server: &ServerProcess,
    dir: &Path,
    i: usize,
) -> Maintainer {
    let data = dir.join("tapgate-data");
    let name = format!("maint{i}");
    let (s, out, e) = server_cli(&data, None, &["--origin", &server.origin, "user", "add", &name, "--json"]);
    assert!(s.success(), "{e}");
    let invite = serde_json::from_str::<Value>(&out).unwrap()["invite_token"].as_str().unwrap().to_string();
    let package = format!("gated-{i}");
    let (s, _, e) = server_cli(
        &data,
        None,
        &["package", "reserve", &package, "--owner", &name, "--policy", "security-key"],
    );
    assert!(s.success(), "{e}");
    let key = AuthenticatorChoice::Soft(dir.join(format!("{name}.key")));
    let base = &server.base;
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
    let cred = tapgate::ceremony::register(&key, &begin.public_key, &server.origin).await.unwrap();
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
    let cred = tapgate::ceremony::assert(&key, &begin.public_key, &server.origin).await.unwrap();
    let done: Value = http
        .post(format!("{base}/api/v1/sessions/{}", begin.ceremony))
        .json(&json!({"credential": cred}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Maintainer { key, token: done["token"].as_str().unwrap().to_string(), package }
}

/// Peak resident memory (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets a process's peak resident memory to its current one.
pub fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

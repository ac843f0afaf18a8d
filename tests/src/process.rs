//! The real `tapgate-server` binary as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bins::bin;

/// A running `tapgate-server serve`. Killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The WebAuthn origin, `http://localhost:PORT` unless configured.
    pub origin: String,
    pub port: u16,
    log: Arc<Mutex<String>>,
    /// Reads stderr into `log` until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Options for starting a server.
#[derive(Default, Clone)]
pub struct ServeOptions {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl ServerProcess {
    /// Starts the server with its data in `data_dir` and waits until it listens.
    pub fn start(data_dir: &Path, opts: &ServeOptions) -> ServerProcess {
        let mut cmd = Command::new(bin("tapgate-server"));
        cmd.arg("--data-dir").arg(data_dir);
        if let Some(url) = &opts.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.arg("serve").arg("--listen").arg(opts.listen.as_deref().unwrap_or("127.0.0.1:0"));
        cmd.args(&opts.extra_args);
        cmd.env("RUST_LOG", "info,sqlx=warn").env("NO_COLOR", "1");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tapgate-server");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let plain = strip_ansi(&line);
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&plain);
                        l.push('\n');
                    }
                    let _ = tx.send(plain);
                }
            })
        };
        let mut reader = Some(reader);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some((base, origin)) = parse_listening(&line) {
                        let port = base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
                        return ServerProcess { child, base, origin, port, log, reader: reader.take() };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    panic!(
                        "tapgate-server did not start (status {status:?}); its log:\n{}",
                        log.lock().map(|l| l.clone()).unwrap_or_default()
                    );
                }
            }
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for the server to exit by itself (e.g. at an armed failpoint);
    /// returns its exit status and its complete log, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<(ExitStatus, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, self.complete_log()));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, waits for the exit, and returns the exit status with everything the
    /// server wrote to stderr, up to its last line.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        match self.wait_exit(Duration::from_secs(20)) {
            Some(done) => done,
            None => {
                let _ = self.child.kill();
                let status = self.child.wait().expect("wait");
                (status, self.complete_log())
            }
        }
    }

    /// The log once the process has exited: the reader thread has seen end of file.
    fn complete_log(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `... listening on http://127.0.0.1:PORT (origin http://localhost:PORT)` → (base, origin)
fn parse_listening(line: &str) -> Option<(String, String)> {
    let rest = line.split("tapgate-server listening on ").nth(1)?;
    let (base, rest) = rest.split_once(" (origin ")?;
    let origin = rest.split(')').next()?;
    Some((base.to_string(), origin.to_string()))
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs `tapgate-server ARGS` to completion (admin commands), returning (status, stdout, stderr).
pub fn server_cli(
    data_dir: &Path,
    database_url: Option<&str>,
    args: &[&str],
) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(bin("tapgate-server"));
    cmd.arg("--data-dir").arg(data_dir);
    if let Some(url) = database_url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.args(args).env("NO_COLOR", "1").stdin(Stdio::null());
    let out = cmd.output().expect("run tapgate-server");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        strip_ansi(&String::from_utf8_lossy(&out.stderr)),
    )
}

/// Runs the `tapgate` CLI with `args`, a private config directory and extra environment;
/// returns (status, stdout, stderr).
pub fn tapgate_cli(config_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(bin("tapgate"));
    cmd.args(args)
        .env("TAPGATE_CONFIG_DIR", config_dir)
        .env_remove("TAPGATE_TOKEN")
        .env_remove("TAPGATE_SERVER")
        .env_remove("TAPGATE_AUTHENTICATOR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tapgate");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

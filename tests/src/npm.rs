//! The machine's real `npm`, with a private user config, and under a pseudo-terminal (`script`)
//! for its web-auth flows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// npm with its own `.npmrc` and cache, pointed at one registry.
pub struct Npm {
    pub userconfig: PathBuf,
    pub cache: PathBuf,
    pub registry: String,
}

impl Npm {
    pub fn new(dir: &Path, registry: &str) -> Npm {
        let userconfig = dir.join("npmrc");
        std::fs::write(&userconfig, format!("registry={registry}/\n")).expect("write npmrc");
        Npm { userconfig, cache: dir.join("npm-cache"), registry: registry.to_string() }
    }

    fn base(&self, cmd: &mut Command) {
        cmd.env("npm_config_userconfig", &self.userconfig)
            .env("npm_config_cache", &self.cache)
            .env("npm_config_registry", format!("{}/", self.registry))
            .env("npm_config_update_notifier", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_audit", "false")
            .env("NO_COLOR", "1");
    }

    /// Runs `npm ARGS` in `dir` to completion.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("npm");
        cmd.args(args).current_dir(dir).stdin(Stdio::null());
        self.base(&mut cmd);
        cmd.output().expect("run npm")
    }

    /// Starts `npm ARGS` under a pseudo-terminal; its screen goes to a log file.
    pub fn spawn_tty(&self, dir: &Path, args: &[&str]) -> TtyNpm {
        // The screen log lives outside `dir`: npm would pack a log growing inside a package.
        let log = std::env::temp_dir().join(format!(
            "tapgate-npm-tty-{}-{}.log",
            std::process::id(),
            rand::random::<u64>()
        ));
        let line =
            std::iter::once("npm").chain(args.iter().copied()).map(shell_quote).collect::<Vec<_>>().join(" ");
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", &line])
            .arg(&log)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.base(&mut cmd);
        let child = cmd.spawn().expect("run npm under script");
        TtyNpm { child, log }
    }

    /// The token npm saved for the registry, if any.
    pub fn saved_token(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.userconfig).ok()?;
        text.lines().find_map(|l| l.split_once(":_authToken=").map(|(_, t)| t.trim().to_string()))
    }

    pub fn set_token(&self, token: &str) {
        let host = self.registry.trim_start_matches("http://").trim_start_matches("https://");
        let text = format!("registry={}/\n//{host}/:_authToken={token}\n", self.registry);
        std::fs::write(&self.userconfig, text).expect("write npmrc");
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// npm running under a pseudo-terminal.
pub struct TtyNpm {
    child: Child,
    log: PathBuf,
}

impl TtyNpm {
    /// What npm has printed so far (escape sequences removed).
    pub fn screen(&self) -> String {
        crate::process::strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default()).replace('\r', "")
    }

    /// Waits until npm prints a URL starting with `prefix`; returns it.
    pub fn wait_for_url(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if let Some(start) = screen.find(prefix) {
                let url: String = screen[start..].chars().take_while(|c| !c.is_whitespace()).collect();
                return url;
            }
            assert!(Instant::now() < deadline, "npm printed no {prefix}… URL; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for npm to exit; returns (success, screen).
    pub fn wait(mut self, timeout: Duration) -> (bool, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status.success(), self.screen());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return (false, format!("(timed out)\n{}", self.screen()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

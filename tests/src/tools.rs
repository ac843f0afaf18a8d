//! External tools the end-to-end tests drive (npm, node, Chromium, script). A missing tool skips
//! its tests loudly, or fails them when `TAPGATE_TEST_REQUIRE_TOOLS=1` (as in CI).

use std::path::PathBuf;
use std::process::Command;

fn required() -> bool {
    std::env::var("TAPGATE_TEST_REQUIRE_TOOLS").is_ok_and(|v| v == "1" || v == "true")
}

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

/// Whether every tool is present; prints a loud skip (or panics when required) if not.
pub fn available(what: &str, tools: &[(&str, &[&str])]) -> bool {
    let missing: Vec<_> = tools.iter().filter(|(p, a)| !works(p, a)).map(|(p, _)| *p).collect();
    if missing.is_empty() {
        return true;
    }
    if required() {
        panic!("{what} needs {missing:?}, and TAPGATE_TEST_REQUIRE_TOOLS=1 forbids skipping");
    }
    eprintln!(
        "\n!!!!! SKIPPED: {what}: missing {missing:?}. Install them (see .ci/run); CI sets TAPGATE_TEST_REQUIRE_TOOLS=1.\n"
    );
    false
}

pub fn npm_available() -> bool {
    available("npm compatibility test", &[("npm", &["--version"]), ("script", &["--version"])])
}

/// The browser driver's directory (`tests/browser`), when its dependencies are installed.
pub fn browser_driver() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !available("browser test", &[("node", &["--version"]), (chromium.as_str(), &["--version"])]) {
        return None;
    }
    if !dir.join("node_modules/playwright-core").exists() {
        if required() {
            panic!("browser test: run `npm ci` in {} first (.ci/run does)", dir.display());
        }
        eprintln!("\n!!!!! SKIPPED: browser test: run `npm ci` in {} (CI does).\n", dir.display());
        return None;
    }
    Some(dir)
}

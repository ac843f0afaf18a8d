//! The workspace's binaries, built once per test run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>`, derived from the test executable (`target/<profile>/deps/e2e-…`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// Path of a workspace binary, building the binaries first (once per process) so the tests
/// always run the code under test.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let profile_dir = target_dir();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(cargo);
        // With the failpoints the crash tests arm (`TAPGATE_FAILPOINT`); unarmed they do nothing.
        cmd.args(["build", "--quiet", "-p", "tapgate-server", "-p", "tapgate", "--bins"]);
        cmd.args(["--features", "tapgate-server/failpoints"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the binaries");
        assert!(status.success(), "building the tapgate binaries failed");
    });
    let path = target_dir().join(name);
    assert!(path.exists(), "binary {} missing after build", path.display());
    path
}

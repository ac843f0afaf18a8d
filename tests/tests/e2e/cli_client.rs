//! The real `tapgate` CLI against the real server binary.

use serde_json::Value;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};

#[test]
fn whoami_with_a_token_and_clear_errors_without() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("cfg");
    let server = ServerProcess::start(&data, &ServeOptions::default());
    server_cli(&data, None, &["user", "add", "alice"]);
    let (_, token, _) = server_cli(&data, None, &["token", "issue", "alice"]);
    let token = token.trim();

    let (status, out, err) =
        tapgate_cli(&cfg, &["--server", &server.base, "whoami"], &[("TAPGATE_TOKEN", token)]);
    assert!(status.success(), "{err}");
    assert_eq!(out.trim(), "alice");
    let (status, out, _) =
        tapgate_cli(&cfg, &["--server", &server.base, "whoami", "--json"], &[("TAPGATE_TOKEN", token)]);
    assert!(status.success());
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["username"], "alice");

    let (status, out, err) = tapgate_cli(&cfg, &["--server", &server.base, "whoami"], &[]);
    assert!(!status.success());
    assert!(out.is_empty());
    assert!(err.contains("not logged in") && err.contains("tapgate login"), "{err}");

    let (status, _, err) =
        tapgate_cli(&cfg, &["--server", &server.base, "whoami"], &[("TAPGATE_TOKEN", "tg_api_wrong")]);
    assert!(!status.success());
    assert!(err.contains("unknown, expired or revoked"), "{err}");

    let (status, _, err) =
        tapgate_cli(&cfg, &["--server", "http://127.0.0.1:1", "whoami"], &[("TAPGATE_TOKEN", token)]);
    assert!(!status.success());
    assert!(err.contains("cannot reach the registry"), "{err}");
}

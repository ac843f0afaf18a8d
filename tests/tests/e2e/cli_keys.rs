//! The real `tapgate` CLI with a software key against the real server binary: enroll with an
//! invite, sign in, list, add, remove; attested and unattested keys recorded as configured.

use serde_json::Value;
use tapgate::authenticator::{self, AuthenticatorChoice};
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli, tapgate_cli};

fn soft_key(dir: &std::path::Path, name: &str) -> (String, std::path::PathBuf) {
    let path = dir.join(name);
    authenticator::open(&AuthenticatorChoice::Soft(path.clone())).unwrap();
    (format!("soft:{}", path.display()), authenticator::soft::ca_pem_path(&path))
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

#[test]
fn enroll_login_list_add_remove_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("cfg");
    let (main_key, main_ca) = soft_key(dir.path(), "main.key");
    let (backup_key, _) = soft_key(dir.path(), "backup.key");
    let (stranger_key, _) = soft_key(dir.path(), "stranger.key");
    let opts = ServeOptions {
        extra_args: vec!["--attestation-ca".into(), main_ca.display().to_string()],
        ..Default::default()
    };
    let server = ServerProcess::start(&data, &opts);
    let registry = server.origin.clone();
    let (_, added, _) = server_cli(&data, None, &["--origin", &registry, "user", "add", "alice", "--json"]);
    let invite_url = json(&added)["invite_url"].as_str().unwrap().to_string();
    let run = |key: &str, args: &[&str]| {
        let mut all = vec!["--server", registry.as_str(), "--authenticator", key];
        all.extend_from_slice(args);
        tapgate_cli(&cfg, &all, &[])
    };

    let (status, out, err) =
        run(&main_key, &["key", "add", "--invite", &invite_url, "--name", "main key", "--json"]);
    assert!(status.success(), "{err}");
    let key = json(&out);
    assert_eq!(key["name"], "main key");
    assert_eq!(key["attested"], true, "chains to the configured CA");
    assert_eq!(key["attestation_format"], "packed");

    let (status, _, err) = run(&backup_key, &["key", "add", "--invite", &invite_url, "--name", "again"]);
    assert!(!status.success());
    assert!(err.contains("invite is unknown, expired or already used"), "{err}");

    let (status, _, err) = run(&stranger_key, &["login", "--username", "alice"]);
    assert!(!status.success());
    assert!(err.contains("none of the connected security keys is enrolled"), "{err}");

    let (status, out, err) = run(&main_key, &["login", "--username", "alice"]);
    assert!(status.success(), "{err}");
    assert!(out.contains("Logged in to") && out.contains("alice"), "{out}");
    let creds = cfg.join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (status, out, _) = run(&main_key, &["whoami"]);
    assert!(status.success());
    assert_eq!(out.trim(), "alice");

    // A second key: the new key registers, then an enrolled key approves exactly it. The new
    // key cannot approve itself.
    let (status, _, err) = run(&backup_key, &["key", "add", "--name", "backup"]);
    assert!(!status.success());
    assert!(err.contains("none of the connected security keys is enrolled"), "{err}");
    let (status, out, err) =
        run(&backup_key, &["key", "add", "--name", "backup", "--approve-with", &main_key, "--json"]);
    assert!(status.success(), "{err}");
    let backup = json(&out);
    assert_eq!(backup["attested"], false, "its CA is not trusted");

    let (status, out, _) = run(&main_key, &["key", "list", "--json"]);
    assert!(status.success());
    assert_eq!(json(&out)["keys"].as_array().unwrap().len(), 2);
    let (status, out, _) = run(&main_key, &["key", "list"]);
    assert!(status.success());
    assert!(out.contains("main key") && out.contains("attested") && out.contains("backup"), "{out}");

    let id = backup["id"].as_str().unwrap();
    let (status, _, err) = run(&main_key, &["key", "remove", id]);
    assert!(status.success(), "{err}");
    let (status, _, err) = run(&main_key, &["key", "remove", key["id"].as_str().unwrap()]);
    assert!(!status.success());
    assert!(err.contains("last usable security key"), "{err}");
    let (_, out, _) = run(&main_key, &["key", "list", "--json"]);
    assert_eq!(json(&out)["keys"].as_array().unwrap().len(), 1);

    // Logging out revokes the token on the registry, not only here.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&creds).unwrap()).unwrap();
    let token = saved["registries"].as_object().unwrap().values().next().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, out, err) = run(&main_key, &["logout"]);
    assert!(status.success(), "{err}");
    assert!(out.contains("revoked"), "{out}");
    let (status, _, err) = run(&main_key, &["whoami"]);
    assert!(!status.success() && err.contains("not logged in"), "{err}");
    let who = reqwest::blocking::Client::new()
        .get(format!("{}/-/whoami", server.origin))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(who.status(), 401, "the revoked token no longer works");
    for secret in ["tg_inv_", "tg_api_"] {
        assert!(!server.log().contains(secret), "no {secret} secret in the server log");
    }
}

//! The CLI trusts nothing the registry says. A fake registry (an attacker who controls the
//! server or the network) answers `tapgate publish` and `tapgate approve` with approvals whose
//! challenge commits to something other than what they show, or whose intent is not what the
//! user asked for. The CLI must refuse before touching the key: the fake registry must never
//! receive a signature.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tapgate::authenticator::{self, AuthenticatorChoice};
use tapgate_shared::gate_intent::{Change, GateIntent};
use tapgate_shared::intent::sri_sha512;
use tapgate_tests::process::tapgate_cli;

use crate::publish_support::tarball;

/// How the fake registry lies.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lie {
    /// Shows the user's own intent, but the challenge commits to the malware's.
    ChallengeForOtherIntent,
    /// Shows (and consistently commits to) an intent for other bytes than the user packed.
    OtherIntent,
    /// Sends no intent at all, only WebAuthn options.
    NoIntent,
    /// Honest: shows and commits to the user's intent (the control case).
    Honest,
}

struct Fake {
    lie: Lie,
    honest: GateIntent,
    malware: GateIntent,
    signatures: AtomicUsize,
    origin: String,
}

fn approval(fake: &Fake) -> Value {
    let nonce = [7u8; 32];
    let (shown, signed) = match fake.lie {
        Lie::ChallengeForOtherIntent => (Some(&fake.honest), &fake.malware),
        Lie::OtherIntent => (Some(&fake.malware), &fake.malware),
        Lie::NoIntent => (None, &fake.malware),
        Lie::Honest => (Some(&fake.honest), &fake.honest),
    };
    json!({
        "id": "apr_fake", "url": format!("{}/approve/apr_fake", fake.origin),
        "package": "left-pad", "version": "1.0.0", "integrity": "", "requested_by": "alice",
        "status": "pending", "expires_at": "2030-01-01T00:00:00Z",
        "description": shown.map(GateIntent::describe).unwrap_or_default(),
        "action": "publish",
        "intent": shown,
        "nonce": URL_SAFE_NO_PAD.encode(nonce),
        "approvals": 0, "required": 1,
        "publicKey": {
            "challenge": URL_SAFE_NO_PAD.encode(signed.challenge(&nonce)),
            "timeout": 60000, "rpId": "localhost",
            "allowCredentials": [{"type": "public-key", "id": URL_SAFE_NO_PAD.encode([9u8; 32])}],
            "userVerification": "preferred",
        },
    })
}

async fn start(fake: Arc<Fake>) -> (String, Arc<Fake>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let fake = Arc::new(Fake { origin: origin.clone(), ..Arc::try_unwrap(fake).ok().unwrap() });
    let app = Router::new()
        .route(
            "/{name}",
            put(|State(f): State<Arc<Fake>>| async move {
                let body = json!({"error": {"code": "otp_required", "message": "approve"}, "authUrl": "x", "doneUrl": "y", "approval": approval(&f)});
                (StatusCode::UNAUTHORIZED, [("www-authenticate", "OTP")], axum::Json(body)).into_response()
            }),
        )
        .route(
            "/api/v1/approvals/{id}",
            get(|State(f): State<Arc<Fake>>| async move { axum::Json(approval(&f)) }).post(
                |State(f): State<Arc<Fake>>| async move {
                    f.signatures.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"ticket": "tg_tkt_x", "code": "ABCDEFGH", "expires_at": "2030-01-01T00:00:00Z"}))
                },
            ),
        )
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, fake)
}

/// Runs the CLI off the async workers (the fake registry runs on them).
async fn cli(
    dir: &std::path::Path,
    args: &[&str],
    token: Option<&str>,
) -> (std::process::ExitStatus, String, String) {
    let cfg = dir.join("cfg");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let token = token.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = token.iter().map(|t| ("TAPGATE_TOKEN", t.as_str())).collect();
        tapgate_cli(&cfg, &args, &env)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_to_sign_what_a_lying_registry_asks() {
    let dir = tempfile::tempdir().unwrap();
    let good = tarball("left-pad", "1.0.0", "the reviewed code");
    let evil = tarball("left-pad", "1.0.0", "a backdoor");
    let tgz = dir.path().join("left-pad-1.0.0.tgz");
    std::fs::write(&tgz, &good).unwrap();
    let key_path = dir.path().join("k.key");
    authenticator::open(&AuthenticatorChoice::Soft(key_path.clone())).unwrap();
    let key = format!("soft:{}", key_path.display());
    let intent = |bytes: &[u8]| GateIntent {
        subject: "left-pad".into(),
        requested_by: "alice".into(),
        change: Change::Publish {
            version: "1.0.0".into(),
            integrity: sri_sha512(bytes),
            tags: vec!["latest".into()],
        },
    };
    for lie in [Lie::ChallengeForOtherIntent, Lie::OtherIntent, Lie::NoIntent, Lie::Honest] {
        let fake = Arc::new(Fake {
            lie,
            honest: intent(&good),
            malware: intent(&evil),
            signatures: AtomicUsize::new(0),
            origin: String::new(),
        });
        let (origin, fake) = start(fake).await;
        let args =
            ["--server", origin.as_str(), "--authenticator", key.as_str(), "publish", tgz.to_str().unwrap()];
        let (status, _, err) = cli(dir.path(), &args, Some("tg_api_x")).await;
        assert!(!status.success(), "{lie:?}: {err}");
        let expected = match lie {
            Lie::ChallengeForOtherIntent => {
                "asked your key to sign something other than the change it showed"
            }
            Lie::OtherIntent => "not what you asked for",
            Lie::NoIntent => "without the intent",
            // The control: every check passed, so the CLI went on to the key (which holds no
            // credential for this fake registry).
            Lie::Honest => "none of the connected security keys is enrolled",
        };
        assert!(err.contains(expected), "{lie:?}: {err}");
        assert_eq!(fake.signatures.load(Ordering::SeqCst), 0, "{lie:?}: nothing was signed");

        // `tapgate approve` on the same approval: the challenge is recomputed there too.
        if lie == Lie::ChallengeForOtherIntent || lie == Lie::NoIntent {
            let url = format!("{origin}/approve/apr_fake");
            let (status, _, err) =
                cli(dir.path(), &["--server", &origin, "--authenticator", &key, "approve", &url], None).await;
            assert!(!status.success());
            assert!(err.contains("nothing was signed"), "{lie:?}: {err}");
            assert_eq!(fake.signatures.load(Ordering::SeqCst), 0);
        }
    }
}

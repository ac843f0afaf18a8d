//! Secrets never reach the log, proven on the complete log at the most verbose level: the real
//! server runs with `RUST_LOG=trace`, the test issues and uses every kind of secret (invites,
//! sign-in and issued API tokens, tickets, typed codes, approval ids and done-URL secrets, npm
//! web-login secrets, CI credentials, deploy keys, webhook secrets), then stops the server, waits
//! for it to exit, reads everything it wrote, and searches it for every secret value issued.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_shared::intent::sri_sha512;
use tapgate_tests::db::{Backend, TestDb};
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli};

use crate::notify_support::WebhookReceiver;
use crate::publish_support::{publish_body, tarball};
use crate::remote_support::Remote;

const PKG: &str = "scan-pkg";

/// The last path segment of a URL.
fn last_segment(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

async fn json_of(resp: reqwest::Response, status: StatusCode) -> Value {
    let got = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn no_secret_in_the_complete_trace_log(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let data = db.data_dir();
    let url = Some(db.url.as_str());
    let options = ServeOptions {
        database_url: Some(db.url.clone()),
        extra_args: ["--webhook-allow-http", "--outbox-poll-ms", "100"].map(String::from).to_vec(),
        env: vec![("RUST_LOG".into(), "trace".into())],
        ..Default::default()
    };
    let server = ServerProcess::start(&data, &options);
    let r = Remote::of(&server);
    let mut secrets: Vec<(&str, String)> = Vec::new();

    // Invites and sign-in tokens.
    let alice = r.person(&data, url, "alice", false).await;
    let root = r.person(&data, url, "root", true).await;
    for p in [&alice, &root] {
        secrets.push(("invite", p.invite.clone()));
        secrets.push(("sign-in token", p.token.clone()));
    }
    // An issued token (admin CLI) and one made over the API.
    let (status, issued, err) = server_cli(&data, url, &["token", "issue", "alice"]);
    assert!(status.success(), "{err}");
    secrets.push(("issued token", issued.trim().to_string()));
    let made = json_of(
        r.send(
            Method::POST,
            "/api/v1/tokens",
            &alice.token,
            Some(&json!({"name": "scan", "scopes": ["read"]})),
            None,
        )
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let made = made["token"].as_str().unwrap().to_string();
    assert_eq!(
        json_of(r.send(Method::GET, "/-/whoami", &made, None, None).await.unwrap(), StatusCode::OK).await["username"],
        "alice"
    );
    secrets.push(("API token", made));

    // A publish: the approval (its id, its done-URL secret), a tap's ticket and typed code, and
    // the fresh ticket npm's poll of the done URL hands out.
    let tgz = tarball(PKG, "1.0.0", "scan");
    let body = publish_body(PKG, "1.0.0", &tgz);
    let first = json_of(
        r.send(Method::PUT, &format!("/{PKG}"), &alice.token, Some(&body), None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let done_url = first["doneUrl"].as_str().unwrap().to_string();
    let info: tapgate_shared::api::ApprovalInfo = serde_json::from_value(first["approval"].clone()).unwrap();
    secrets.push(("approval id", info.id.clone()));
    secrets.push(("done-URL secret", last_segment(&done_url)));
    let tapped = r.approve(&info, &alice.key).await;
    secrets.push(("ticket", tapped.ticket.clone()));
    secrets.push(("typed code", tapped.code.clone()));
    let polled = json_of(r.http.get(&done_url).send().await.unwrap(), StatusCode::OK).await;
    let npm_ticket = polled["token"].as_str().unwrap().to_string();
    secrets.push(("done-URL ticket", npm_ticket.clone()));
    json_of(
        r.send(Method::PUT, &format!("/{PKG}"), &alice.token, Some(&body), Some(&npm_ticket)).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // A typed code (as yarn sends it) for a dist-tag.
    let tag_path = format!("/-/package/{PKG}/dist-tags/beta");
    let tag_body = json!("1.0.0");
    let info = r.approval_for(Method::PUT, &tag_path, &alice.token, Some(&tag_body)).await;
    secrets.push(("approval id", info.id.clone()));
    let tapped = r.approve(&info, &alice.key).await;
    secrets.push(("ticket", tapped.ticket.clone()));
    secrets.push(("typed code", tapped.code.clone()));
    let resp =
        r.send(Method::PUT, &tag_path, &alice.token, Some(&tag_body), Some(&tapped.code)).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    // A refused ticket is logged as refused, never by value.
    let wrong = format!("tg_tkt_{}", "f".repeat(43));
    let rc_path = format!("/-/package/{PKG}/dist-tags/rc");
    let resp = r.send(Method::PUT, &rc_path, &alice.token, Some(&tag_body), Some(&wrong)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    secrets.push(("refused ticket", wrong));

    // npm's web login.
    let login =
        json_of(r.http.post(r.url("/-/v1/login")).json(&json!({})).send().await.unwrap(), StatusCode::OK)
            .await;
    let login_done = login["doneUrl"].as_str().unwrap().to_string();
    secrets.push(("npm login id", last_segment(login["loginUrl"].as_str().unwrap())));
    secrets.push(("npm login done secret", last_segment(&login_done)));
    assert_eq!(r.http.get(&login_done).send().await.unwrap().status(), StatusCode::ACCEPTED);

    // A webhook (its secret is shown once), then a delivery signed with it.
    let hooks = WebhookReceiver::start().await;
    let hook_path = format!("/api/v1/packages/{PKG}/webhooks");
    let hook_body = json!({ "urls": [hooks.url("scan")] });
    let ticket = r.ticket(Method::PUT, &hook_path, &alice, Some(&hook_body)).await;
    let set = json_of(
        r.send(Method::PUT, &hook_path, &alice.token, Some(&hook_body), Some(&ticket)).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let hook_secret = set["webhooks"][0]["secret"].as_str().unwrap().to_string();
    hooks.trust(&hook_secret);
    secrets.push(("webhook secret", hook_secret));

    // CI: the policy lets CI publish with deploy keys; a credential; a deploy key; its publish.
    let policy_path = format!("/api/v1/packages/{PKG}/policy");
    let policy = json!({ "second_factor": "security-key", "ci": ["deploy-key"] });
    let ticket = r.ticket(Method::PUT, &policy_path, &root, Some(&policy)).await;
    json_of(
        r.send(Method::PUT, &policy_path, &root.token, Some(&policy), Some(&ticket)).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let in_a_day =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 86_400;
    let scope = json!({
        "id": "ci_00000000000000000abc", "package": PKG, "name": "release", "versions": "^1.0.0", "tags": ["latest"],
        "expires_at": tapgate_shared::ci::format_utc(i64::try_from(in_a_day).unwrap()), "cidrs": [],
    });
    let ticket = r.ticket(Method::POST, "/api/v1/ci/credentials", &alice, Some(&scope)).await;
    let cred = json_of(
        r.send(Method::POST, "/api/v1/ci/credentials", &alice.token, Some(&scope), Some(&ticket))
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let ci = cred["credential"].as_str().unwrap().to_string();
    secrets.push(("CI credential", ci.clone()));
    let tgz = tarball(PKG, "1.0.1", "scan ci");
    let ask =
        json!({ "package": PKG, "version": "1.0.1", "integrity": sri_sha512(&tgz), "tags": ["latest"] });
    let dk = json_of(
        r.send(Method::POST, "/api/v1/ci/deploy-keys", &ci, Some(&ask), None).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let deploy_key = dk["deploy_key"].as_str().unwrap().to_string();
    secrets.push(("deploy key", deploy_key.clone()));
    let body = publish_body(PKG, "1.0.1", &tgz);
    json_of(
        r.send(Method::PUT, &format!("/{PKG}"), &ci, Some(&body), Some(&deploy_key)).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // The deploy key's signature part alone (a log could cut the text at the dot).
    secrets.push(("deploy key signature", deploy_key.rsplit('.').next().unwrap().to_string()));

    // Wait for the webhook deliveries (signed with the secret), then stop and read everything.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while hooks.hooks().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(hooks.hooks().iter().any(|h| h.valid), "a delivery signed with the webhook secret arrived");
    let (status, log) = tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(log.contains("TRACE"), "the log is at trace level");
    assert!(log.contains("change approved with a security key"), "the log covers the session");
    assert!(log.lines().count() > 200, "the complete log: {} lines", log.lines().count());
    assert!(secrets.len() >= 20);
    for (kind, value) in &secrets {
        assert!(value.len() >= 8, "{kind} {value:?} is long enough to search for");
        if let Some(line) = log.lines().find(|l| l.contains(value.as_str())) {
            panic!("the {kind} {value} is in the server's log:\n{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_no_secret_in_the_complete_trace_log() {
    no_secret_in_the_complete_trace_log(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_no_secret_in_the_complete_trace_log() {
    no_secret_in_the_complete_trace_log(Backend::Postgres).await;
}

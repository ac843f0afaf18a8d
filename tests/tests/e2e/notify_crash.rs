//! A server killed (SIGKILL) between committing a change and delivering its notification
//! delivers it after a restart: the event was in the outbox, committed with the change.

use std::time::{Duration, Instant};

use sqlx::Connection;
use tapgate_tests::db::{Backend, TestDb};
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli};

use crate::notify_support::WebhookReceiver;
use crate::publish_support::{publish_body, tarball};

const SECRET: &str = "whsec_test_secret";

async fn add_webhook(db: &TestDb, url: &str) {
    let sql = "INSERT INTO package_webhooks (id, package, url, secret, created_at) VALUES ($1, 'left-pad', $2, $3, 0)";
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind("whk_1").bind(url).bind(SECRET).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind("whk_1").bind(url).bind(SECRET).execute(&mut conn).await.unwrap();
        }
    }
}

async fn killed_between_commit_and_delivery(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let hooks = WebhookReceiver::start().await;
    hooks.trust(SECRET);
    let data = db.data_dir();
    let url = Some(db.url.as_str());
    let options = |poll_ms: &str| ServeOptions {
        database_url: Some(db.url.clone()),
        extra_args: vec!["--webhook-allow-http".into(), "--outbox-poll-ms".into(), poll_ms.into()],
        ..Default::default()
    };
    // This instance looks for deliveries only once an hour: the kill lands before it delivers.
    let server = ServerProcess::start(&data, &options("3600000"));
    let (s, _, e) = server_cli(&data, url, &["user", "add", "alice"]);
    assert!(s.success(), "{e}");
    let (s, token, e) = server_cli(&data, url, &["token", "issue", "alice"]);
    assert!(s.success(), "{e}");
    let (s, _, e) =
        server_cli(&data, url, &["package", "reserve", "left-pad", "--owner", "alice", "--policy", "none"]);
    assert!(s.success(), "{e}");
    add_webhook(&db, &hooks.url("crash")).await;
    let body = publish_body("left-pad", "1.0.0", &tarball("left-pad", "1.0.0", "a"));
    let resp = reqwest::Client::new()
        .put(server.url("/left-pad"))
        .bearer_auth(token.trim())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    server.kill();
    assert!(hooks.hooks().is_empty(), "nothing was delivered before the kill");
    let (s, list, e) = server_cli(&data, url, &["outbox", "list"]);
    assert!(s.success(), "{e}");
    assert!(list.contains("webhook") && list.contains("left-pad"), "{list}");

    let server = ServerProcess::start(&data, &options("100"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while hooks.hooks().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = hooks.hooks();
    assert_eq!(got.len(), 1, "{}", server.log());
    assert!(got[0].valid);
    assert_eq!(got[0].body["action"], "publish");
    assert_eq!(got[0].body["intent"]["version"], "1.0.0");
    assert_eq!(got[0].body["authorized"]["kind"], "token");
    let (_, list, _) = server_cli(&data, url, &["outbox", "list"]);
    assert!(list.contains("every notification was delivered"), "{list}");
    let (s, out, _) = server_cli(&data, url, &["outbox", "retry", "--all"]);
    assert!(s.success());
    assert!(out.contains("0 deliveries"), "delivered ones are not retried: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_kill_between_commit_and_delivery_delivers_after_restart() {
    killed_between_commit_and_delivery(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_kill_between_commit_and_delivery_delivers_after_restart() {
    killed_between_commit_and_delivery(Backend::Postgres).await;
}

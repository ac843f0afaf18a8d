//! Notifications: a lock alerts every maintainer by email and webhook with the details; chosen
//! events reach those who chose them; deliveries survive a receiver that is down, and two
//! instances deliver each one once. Real SMTP and webhook receivers run on loopback.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tapgate_server::notify::worker::{self, Senders};
use tapgate_shared::api::Webhooks;

use crate::gate_support::with_tap;
use crate::lockout::lock_of;
use crate::notify_support::{SmtpReceiver, WebhookReceiver};
use crate::publish_support::{Maintainer, maintainer, publish_body, publish_with_key, tarball};
use crate::support::{Backend, TestApp, backend_tests};

backend_tests!(
    a_lock_alerts_every_maintainer_by_email_and_webhook,
    a_receiver_that_is_down_gets_the_event_when_it_is_back,
    two_instances_deliver_each_event_once,
);

pub async fn notifying_app(backend: Backend, smtp: Option<&SmtpReceiver>) -> Option<TestApp> {
    let url = smtp.map(SmtpReceiver::url);
    TestApp::with_config(backend, move |c| {
        c.notify.smtp_url = url;
        c.notify.allow_http_webhooks = true;
        c.notify.poll_interval = std::time::Duration::from_millis(50);
    })
    .await
}

/// Runs this instance's worker once; answers the deliveries attempted.
pub async fn deliver(app: &TestApp) -> usize {
    let senders = Senders::new(&app.state.config.notify).unwrap();
    worker::run_once(&app.state, &senders).await.unwrap()
}

/// Sets and verifies `address` as `m`'s alert address through the link emailed to it.
async fn verified_email(app: &TestApp, m: &Maintainer, address: &str, smtp: &SmtpReceiver) {
    let resp = app
        .http
        .put(app.url("/api/v1/user/email"))
        .bearer_auth(&m.token)
        .json(&json!({ "email": address }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(deliver(app).await, 1);
    let mail = smtp.to(address).pop().expect("the verification email");
    let body = mail.body();
    let link = body.lines().map(str::trim).find(|l| l.contains("/-/email/verify/")).unwrap();
    let resp = app.http.get(link.replace(&app.origin, &app.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    let settings: Value = app.get_json_as("/api/v1/user/notifications", &m.token).await;
    assert_eq!(settings["email"], address);
}

/// Sets `urls` as the package's webhooks with `m`'s tap; answers the new secrets.
async fn set_webhooks(app: &TestApp, m: &Maintainer, package: &str, urls: &[String]) -> Vec<String> {
    let path = format!("/api/v1/packages/{package}/webhooks");
    let (info, resp) =
        with_tap(app, Method::PUT, &path, &m.token, Some(&json!({ "urls": urls })), &m.key).await;
    assert_eq!(info.action, "webhook-set");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let set: Webhooks = serde_json::from_str(&text).unwrap();
    set.webhooks.into_iter().filter_map(|w| w.secret).collect()
}

/// A package `name` published by `m`, with `others` as co-maintainers.
async fn package_with(app: &TestApp, m: &Maintainer, name: &str, others: &[&str]) {
    let resp = publish_with_key(app, m, name, "1.0.0", &tarball(name, "1.0.0", "a")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    for other in others {
        let path = format!("/api/v1/packages/{name}/maintainers/{other}");
        let (_, resp) = with_tap(app, Method::PUT, &path, &m.token, None, &m.key).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

/// A refused typed code on `name`, sent with a telling user agent.
async fn attacker_code(app: &TestApp, token: &str, name: &str) {
    let body = publish_body(name, "6.6.6", &tarball(name, "6.6.6", "evil"));
    let resp = app
        .http
        .put(app.url(&format!("/{name}")))
        .bearer_auth(token)
        .header("user-agent", "evil-agent/1.0")
        .header("npm-otp", "ZZZZ9999")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

async fn a_lock_alerts_every_maintainer_by_email_and_webhook(backend: Backend) {
    let smtp = SmtpReceiver::start().await;
    let hooks = WebhookReceiver::start().await;
    let Some(app) = notifying_app(backend, Some(&smtp)).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let bob = maintainer(&app, "bob").await;
    package_with(&app, &alice, "left-pad", &["bob"]).await;
    verified_email(&app, &alice, "alice@example.com", &smtp).await;
    verified_email(&app, &bob, "bob@example.com", &smtp).await;
    // Bob only wants publishes; lock alerts reach him anyway.
    let resp = app
        .http
        .put(app.url("/api/v1/user/notifications"))
        .bearer_auth(&bob.token)
        .json(&json!({ "events": ["publish"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for secret in set_webhooks(&app, &alice, "left-pad", &[hooks.url("alerts")]).await {
        hooks.trust(&secret);
    }
    deliver(&app).await;
    smtp.mails.lock().unwrap().clear();
    let before = hooks.hooks().len();

    // npm shows the verified addresses.
    let packument: Value = app.get_json("/left-pad").await;
    let emails: Vec<&str> =
        packument["maintainers"].as_array().unwrap().iter().filter_map(|m| m["email"].as_str()).collect();
    assert_eq!(emails, ["alice@example.com", "bob@example.com"]);
    let doc: Value = app.get_json_as("/-/user/org.couchdb.user:bob", &alice.token).await;
    assert_eq!(doc["email"], "bob@example.com");

    for _ in 0..5 {
        attacker_code(&app, &alice.token, "left-pad").await;
    }
    assert!(!lock_of(&app, "left-pad").await.is_null());
    assert_eq!(deliver(&app).await, 3, "two emails and one webhook");

    for address in ["alice@example.com", "bob@example.com"] {
        let mails = smtp.to(address);
        assert_eq!(mails.len(), 1, "{address}: {mails:?}");
        let mail = &mails[0];
        assert!(mail.subject().contains("left-pad is locked after 5 failed"), "{}", mail.subject());
        let body = mail.body();
        for needle in [
            "a refused approval ticket or one-time code",
            "account: alice",
            "127.0.0.1",
            "evil-agent/1.0",
            "tapgate unlock left-pad",
            "Reading and installing still work",
        ] {
            assert!(body.contains(needle), "{address} lacks {needle:?}:\n{body}");
        }
    }
    let got: Vec<_> = hooks.hooks().into_iter().skip(before).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    let hook = &got[0];
    assert!(hook.valid, "the signature verifies with the webhook's secret");
    assert_eq!(hook.path, "alerts");
    assert_eq!(hook.body["type"], "package.locked");
    assert_eq!(hook.body["package"], "left-pad");
    assert_eq!(hook.body["unlock"], "tapgate unlock left-pad");
    let failures = hook.body["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 5);
    assert_eq!(failures[0]["account"], "alice");
    assert_eq!(failures[0]["client_ip"], "127.0.0.1");
    assert_eq!(failures[0]["user_agent"], "evil-agent/1.0");
    assert_eq!(failures[0]["kind"], "ticket_refused");
    assert!(hook.body["event_id"].as_i64().is_some());
    assert_eq!(deliver(&app).await, 0, "nothing twice");

    // After the unlock, a publish reaches both (bob chose publishes), a dist-tag only alice.
    let (_, resp) =
        with_tap(&app, Method::POST, "/api/v1/packages/left-pad/unlock", &alice.token, None, &alice.key)
            .await;
    assert_eq!(resp.status(), StatusCode::OK);
    deliver(&app).await;
    assert_eq!(smtp.to("bob@example.com").len(), 2, "the unlock is an alert too");
    let resp = publish_with_key(&app, &alice, "left-pad", "1.0.1", &tarball("left-pad", "1.0.1", "b")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, resp) = with_tap(
        &app,
        Method::PUT,
        "/-/package/left-pad/dist-tags/beta",
        &alice.token,
        Some(&json!("1.0.0")),
        &alice.key,
    )
    .await;
    assert!(resp.status().is_success());
    deliver(&app).await;
    let bobs = smtp.to("bob@example.com");
    assert_eq!(bobs.len(), 3, "{:?}", bobs.iter().map(|m| m.subject()).collect::<Vec<_>>());
    assert!(bobs[2].subject().contains("Publish left-pad@1.0.1"), "{}", bobs[2].subject());
    assert!(bobs[2].body().contains("approved with a security-key tap by alice"), "{}", bobs[2].body());
    let alices: Vec<String> = smtp.to("alice@example.com").iter().map(|m| m.subject()).collect();
    assert!(alices.iter().any(|s| s.contains("`beta`")), "{alices:?}");
    let webhook_publish = hooks.hooks().into_iter().find(|h| h.body["action"] == "publish").unwrap();
    assert!(webhook_publish.valid);
    assert_eq!(webhook_publish.body["intent"]["version"], "1.0.1");
    assert!(webhook_publish.body["intent"]["integrity"].as_str().unwrap().starts_with("sha512-"));
    assert_eq!(webhook_publish.body["authorized"]["kind"], "tap");
}

async fn a_receiver_that_is_down_gets_the_event_when_it_is_back(backend: Backend) {
    let Some(app) = notifying_app(backend, None).await else {
        return;
    };
    // An address nobody listens on yet.
    let reserved = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let alice = maintainer(&app, "alice").await;
    package_with(&app, &alice, "left-pad", &[]).await;
    let url = format!("http://{addr}/down");
    let secrets = set_webhooks(&app, &alice, "left-pad", &[url]).await;
    let resp = publish_with_key(&app, &alice, "left-pad", "1.0.1", &tarball("left-pad", "1.0.1", "b")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(deliver(&app).await, 1);
    let pending = app.store().deliveries(true, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
    assert!(pending[0].last_error.as_deref().unwrap().contains("cannot reach"), "{pending:?}");

    let hooks = WebhookReceiver::on(tokio::net::TcpListener::bind(addr).await.unwrap(), 0).await;
    hooks.trust(&secrets[0]);
    assert_eq!(deliver(&app).await, 0, "the retry waits for its backoff");
    app.clock.advance(31);
    assert_eq!(deliver(&app).await, 1);
    let got = hooks.hooks();
    assert_eq!(got.len(), 1);
    assert!(got[0].valid);
    assert_eq!(got[0].body["action"], "publish");
    assert!(app.store().deliveries(true, 10).await.unwrap().is_empty());
    app.clock.advance(3600);
    assert_eq!(deliver(&app).await, 0);
    assert_eq!(hooks.hooks().len(), 1, "delivered once");
}

async fn two_instances_deliver_each_event_once(backend: Backend) {
    let Some(app) = notifying_app(backend, None).await else {
        return;
    };
    let other = app.another_instance().await;
    let hooks = WebhookReceiver::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), 20).await;
    let alice = maintainer(&app, "alice").await;
    package_with(&app, &alice, "left-pad", &[]).await;
    let urls: Vec<String> = (0..10).map(|i| hooks.url(&format!("h{i}"))).collect();
    for secret in set_webhooks(&app, &alice, "left-pad", &urls).await {
        hooks.trust(&secret);
    }
    for v in 1..=3 {
        let version = format!("1.0.{v}");
        let resp =
            publish_with_key(&app, &alice, "left-pad", &version, &tarball("left-pad", &version, &version))
                .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    // 3 publishes × 10 webhooks, two workers racing for them.
    let a = tokio::spawn(worker::run(app.state.clone(), Senders::new(&app.state.config.notify).unwrap()));
    let b = tokio::spawn(worker::run(other.state.clone(), Senders::new(&other.state.config.notify).unwrap()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while hooks.hooks().len() < 30 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    a.abort();
    b.abort();
    let got = hooks.hooks();
    let mut seen: Vec<(i64, String)> =
        got.iter().map(|h| (h.body["event_id"].as_i64().unwrap(), h.path.clone())).collect();
    seen.sort();
    let total = seen.len();
    seen.dedup();
    // What the database calls delivered is what arrived.
    let delivered = app.store().deliveries(false, 100).await.unwrap();
    for d in &delivered {
        assert!(d.delivered_at.is_some(), "{d:?}");
        let path = d.target.rsplit('/').next().unwrap().to_string();
        assert!(seen.contains(&(d.event_id, path)), "{d:?} never arrived");
    }
    assert_eq!(total, 30, "every delivery arrived");
    assert_eq!(seen.len(), 30, "none twice");
    assert!(got.iter().all(|h| h.valid && !h.delivery.is_empty()));
    assert!(app.store().deliveries(true, 100).await.unwrap().is_empty());
}

//! Crash consistency, proven at every failpoint: the real `tapgate-server` binary (built with the
//! `failpoints` feature) is started with `TAPGATE_FAILPOINT=<name>`, a change whose evidence was
//! obtained beforehand (a tap's ticket under a policy that demands one, a deploy key, a CI
//! credential) is sent, the process aborts at that point (as a crash or power loss would),
//! and after a restart without the failpoint the change is either
//! - absent: the stored state is exactly as before, and the same evidence does it again; or
//! - whole (the failpoint lies after the commit): version, tarball, tags, ticket spent, audit
//!   entry and notification all there, and the evidence refused when offered again.
//!
//! Durability across power loss rests on SQLite's `synchronous = FULL` in WAL mode (set in
//! `server/src/store/mod.rs`): an acknowledged commit is on disk before the answer is sent. An
//! `abort` loses no more than a power cut after that sync would.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tapgate_shared::intent::sri_sha512;
use tapgate_tests::db::{Backend, TestDb};
use tapgate_tests::process::{ServeOptions, ServerProcess};

use crate::notify_support::WebhookReceiver;
use crate::publish_support::{publish_body, tarball};
use crate::remote_support::{Person, Remote};
use crate::state_support::Snapshot;

const PKG: &str = "crash-pkg";
const HOOK_SECRET: &str = "whsec_crash_test_secret";

/// Every failpoint this test walks. It must equal what the binary reports it has compiled in
/// (`TAPGATE_FAILPOINT=list`), so a failpoint nobody walks fails the test.
const WALKED: &[(&str, Change)] = &[
    ("gate.checked", Change::Publish),
    ("gate.ticket_spent", Change::Publish),
    ("gate.deploy_key_spent", Change::DeployKeyPublish),
    ("outbox.event_inserted", Change::Publish),
    ("outbox.deliveries_queued", Change::Publish),
    ("audit.head_locked", Change::Publish),
    ("audit.entry_appended", Change::Publish),
    ("publish.package_claimed", Change::Publish),
    ("publish.version_inserted", Change::Publish),
    ("publish.tarball_inserted", Change::Publish),
    ("publish.tags_set", Change::Publish),
    ("publish.committed", Change::Publish),
    ("dist_tag.set", Change::DistTag),
    ("unpublish.version_marked", Change::Unpublish),
    ("unpublish.tarball_deleted", Change::Unpublish),
    ("unpublish.tags_removed", Change::Unpublish),
    ("unpublish.committed", Change::Unpublish),
    ("maintainer_add.inserted", Change::AddMaintainer),
    ("maintainer_remove.deleted", Change::RemoveMaintainer),
    ("policy.stored", Change::Policy),
    ("approval.signature_recorded", Change::Tap),
    ("approval.approved", Change::Tap),
    ("ci_credential.inserted", Change::CiCredential),
    ("deploy_key.swept", Change::AskDeployKey),
    ("deploy_key.inserted", Change::AskDeployKey),
    ("outbox.claimed", Change::Publish),
    ("notify.sent", Change::Publish),
];

/// Failpoints after the commit: the change must be whole after the restart.
const AFTER_COMMIT: &[&str] = &["publish.committed", "unpublish.committed", "outbox.claimed", "notify.sent"];
/// Failpoints in the notification worker: it dies after the change was answered, maybe.
const IN_WORKER: &[&str] = &["outbox.claimed", "notify.sent"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Publish,
    DeployKeyPublish,
    AskDeployKey,
    DistTag,
    Unpublish,
    AddMaintainer,
    RemoveMaintainer,
    Policy,
    Tap,
    CiCredential,
}

/// The request a change sends with its evidence, prepared while the server runs unarmed.
struct Prepared {
    method: Method,
    path: String,
    body: Option<Value>,
    token: String,
    /// The ticket or deploy key (`npm-otp`), if the change carries one.
    otp: Option<String>,
    /// For [`Change::Tap`]: the approval to tap, and the publish it approves.
    tap: Option<(tapgate_shared::api::ApprovalInfo, Value)>,
    /// Tables the whole change alters.
    alters: &'static [&'static str],
    /// What offering the evidence again after the change is answered with.
    again: (StatusCode, &'static str),
    /// A version this change publishes (its tarball is checked after).
    publishes: Option<(String, Vec<u8>)>,
}

struct Rig {
    db: TestDb,
    data: PathBuf,
    options: ServeOptions,
    server: Option<ServerProcess>,
    remote: Remote,
    alice: Person,
    root: Person,
    ci: String,
    hooks: WebhookReceiver,
    next: u32,
    policy_flip: bool,
}

fn serve_options(db: &TestDb, port: u16, failpoint: Option<&str>) -> ServeOptions {
    let mut env = Vec::new();
    if let Some(name) = failpoint {
        env.push(("TAPGATE_FAILPOINT".to_string(), name.to_string()));
    }
    ServeOptions {
        database_url: Some(db.url.clone()),
        // The same address every time, so the WebAuthn origin stays the same across restarts.
        listen: Some(format!("127.0.0.1:{port}")),
        // A request cut short by a crash keeps counting as a refused ticket (the attempt is
        // counted before the request runs and given back after it): this test crashes dozens.
        extra_args: [
            "--webhook-allow-http",
            "--outbox-poll-ms",
            "100",
            "--limit-otp-failures",
            "1000/900",
            "--limit-otp-failures-account",
            "1000/900",
            "--limit-taps-account",
            "1000/600",
        ]
        .map(String::from)
        .to_vec(),
        env,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn policy(extra: bool) -> Value {
    // Both demand a tap for every change and let CI publish with a deploy key.
    if extra {
        json!({ "second_factor": "security-key", "ci": ["deploy-key", "oidc"] })
    } else {
        json!({ "second_factor": "security-key", "ci": ["deploy-key"] })
    }
}

impl Rig {
    async fn new(backend: Backend) -> Option<Rig> {
        let db = TestDb::new(backend).await?;
        let data = db.data_dir();
        let options = serve_options(&db, free_port(), None);
        let server = ServerProcess::start(&data, &options);
        let remote = Remote::of(&server);
        let url = options.database_url.clone();
        let alice = remote.person(&data, url.as_deref(), "alice", false).await;
        let root = remote.person(&data, url.as_deref(), "root", true).await;
        let _bob = server_user(&data, url.as_deref(), "bob");
        let hooks = WebhookReceiver::start().await;
        hooks.trust(HOOK_SECRET);
        let mut rig = Rig {
            db,
            data,
            options,
            server: Some(server),
            remote,
            alice,
            root,
            ci: String::new(),
            hooks,
            next: 0,
            policy_flip: false,
        };
        // The package, with its first version (under the default policy: a tap), a webhook,
        // a policy letting CI publish with deploy keys, and a CI credential.
        let (v, tgz) = rig.fresh_version();
        let body = publish_body(PKG, &v, &tgz);
        let ticket = rig.remote.ticket(Method::PUT, &format!("/{PKG}"), &rig.alice, Some(&body)).await;
        let resp = rig
            .remote
            .send(Method::PUT, &format!("/{PKG}"), &rig.alice.token, Some(&body), Some(&ticket))
            .await;
        assert_eq!(resp.unwrap().status(), StatusCode::CREATED);
        rig.add_webhook().await;
        let path = format!("/api/v1/packages/{PKG}/policy");
        let body = policy(false);
        let ticket = rig.remote.ticket(Method::PUT, &path, &rig.root, Some(&body)).await;
        let resp =
            rig.remote.send(Method::PUT, &path, &rig.root.token, Some(&body), Some(&ticket)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
        let scope = rig.ci_scope(&format!("ci_{:020x}", 0));
        let ticket =
            rig.remote.ticket(Method::POST, "/api/v1/ci/credentials", &rig.alice, Some(&scope)).await;
        let resp = rig
            .remote
            .send(Method::POST, "/api/v1/ci/credentials", &rig.alice.token, Some(&scope), Some(&ticket))
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        let issued: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        rig.ci = issued["credential"].as_str().unwrap().to_string();
        rig.settle().await;
        Some(rig)
    }

    fn fresh_version(&mut self) -> (String, Vec<u8>) {
        self.next += 1;
        let v = format!("1.0.{}", self.next);
        let tgz = tarball(PKG, &v, &format!("crash {}", self.next));
        (v, tgz)
    }

    fn ci_scope(&self, id: &str) -> Value {
        let in_a_day =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 86_400;
        json!({
            "id": id, "package": PKG, "name": "release", "versions": "^1.0.0", "tags": ["latest"],
            "expires_at": tapgate_shared::ci::format_utc(i64::try_from(in_a_day).unwrap()), "cidrs": [],
        })
    }

    async fn add_webhook(&self) {
        let sql =
            "INSERT INTO package_webhooks (id, package, url, secret, created_at) VALUES ($1, $2, $3, $4, 0)";
        let url = self.hooks.url("crash");
        match self.db.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db.url).await.unwrap();
                sqlx::query(sql)
                    .bind("whk_crash")
                    .bind(PKG)
                    .bind(url)
                    .bind(HOOK_SECRET)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
                sqlx::query(sql)
                    .bind("whk_crash")
                    .bind(PKG)
                    .bind(url)
                    .bind(HOOK_SECRET)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }

    /// Deliveries not yet delivered.
    async fn undelivered(&self) -> i64 {
        let sql = "SELECT COUNT(*) FROM outbox_deliveries WHERE delivered_at IS NULL";
        match self.db.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db.url).await.unwrap();
                sqlx::query_as::<_, (i64,)>(sql).fetch_one(&mut conn).await.unwrap().0
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
                sqlx::query_as::<_, (i64,)>(sql).fetch_one(&mut conn).await.unwrap().0
            }
        }
    }

    /// Lets every delivery lease run out (as two minutes would).
    async fn expire_leases(&self) {
        let sql = "UPDATE outbox_deliveries SET next_attempt_at = 0 WHERE delivered_at IS NULL";
        match self.db.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    /// Waits until the worker delivered every queued notification (so none is in flight when
    /// the server stops).
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.undelivered().await > 0 {
            assert!(Instant::now() < deadline, "deliveries stay undelivered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn restart(&mut self, failpoint: Option<&str>) {
        if let Some(server) = self.server.take() {
            let (status, log) = server.stop();
            assert!(status.success(), "stopped cleanly: {status:?}\n{log}");
        }
        let options = ServeOptions { env: serve_options(&self.db, 0, failpoint).env, ..self.options.clone() };
        self.server = Some(ServerProcess::start(&self.data, &options));
    }

    /// Obtains the evidence for `change` with the server unarmed.
    async fn prepare(&mut self, change: Change) -> Prepared {
        let r = self.remote.clone();
        let publish_alters: &'static [&'static str] = &[
            "versions",
            "tarballs",
            "dist_tags",
            "approvals",
            "audit_log",
            "audit_heads",
            "outbox_events",
            "outbox_deliveries",
        ];
        match change {
            Change::Publish => {
                let (v, tgz) = self.fresh_version();
                let body = publish_body(PKG, &v, &tgz);
                let path = format!("/{PKG}");
                let ticket = r.ticket(Method::PUT, &path, &self.alice, Some(&body)).await;
                Prepared {
                    method: Method::PUT,
                    path,
                    body: Some(body),
                    token: self.alice.token.clone(),
                    otp: Some(ticket),
                    tap: None,
                    alters: publish_alters,
                    // Versions are immutable: that is checked before the ticket.
                    again: (StatusCode::FORBIDDEN, "version_exists"),
                    publishes: Some((v, tgz)),
                }
            }
            Change::Tap => {
                let (v, tgz) = self.fresh_version();
                let body = publish_body(PKG, &v, &tgz);
                let info =
                    r.approval_for(Method::PUT, &format!("/{PKG}"), &self.alice.token, Some(&body)).await;
                Prepared {
                    method: Method::PUT,
                    path: format!("/{PKG}"),
                    body: None,
                    token: self.alice.token.clone(),
                    otp: None,
                    tap: Some((info, body)),
                    alters: &["approvals", "approval_signatures"],
                    again: (StatusCode::OK, ""),
                    publishes: None,
                }
            }
            Change::DeployKeyPublish | Change::AskDeployKey => {
                let (v, tgz) = self.fresh_version();
                let ask = json!({ "package": PKG, "version": v, "integrity": sri_sha512(&tgz), "tags": ["latest"] });
                if change == Change::AskDeployKey {
                    return Prepared {
                        method: Method::POST,
                        path: "/api/v1/ci/deploy-keys".into(),
                        body: Some(ask),
                        token: self.ci.clone(),
                        otp: None,
                        tap: None,
                        alters: &["deploy_keys"],
                        again: (StatusCode::CREATED, ""),
                        publishes: None,
                    };
                }
                let resp =
                    r.send(Method::POST, "/api/v1/ci/deploy-keys", &self.ci, Some(&ask), None).await.unwrap();
                let issued: Value = resp.json().await.unwrap();
                let key = issued["deploy_key"].as_str().unwrap_or_else(|| panic!("{issued}")).to_string();
                let mut alters = publish_alters.to_vec();
                alters.retain(|t| *t != "approvals");
                alters.push("deploy_keys");
                Prepared {
                    method: Method::PUT,
                    path: format!("/{PKG}"),
                    body: Some(publish_body(PKG, &v, &tgz)),
                    token: self.ci.clone(),
                    otp: Some(key),
                    tap: None,
                    alters: alters.leak(),
                    again: (StatusCode::UNAUTHORIZED, "invalid_deploy_key"),
                    publishes: Some((v, tgz)),
                }
            }
            Change::DistTag => {
                let path = format!("/-/package/{PKG}/dist-tags/next-{}", self.next);
                let body = json!("1.0.1");
                let ticket = r.ticket(Method::PUT, &path, &self.alice, Some(&body)).await;
                self.gated(Method::PUT, path, Some(body), ticket, &["dist_tags"], false)
            }
            Change::Unpublish => {
                let (v, tgz) = self.fresh_version();
                let body = publish_body(PKG, &v, &tgz);
                let ticket = r.ticket(Method::PUT, &format!("/{PKG}"), &self.alice, Some(&body)).await;
                let resp = r
                    .send(Method::PUT, &format!("/{PKG}"), &self.alice.token, Some(&body), Some(&ticket))
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::CREATED);
                self.settle().await;
                let path = format!("/api/v1/packages/{PKG}/versions/{v}");
                let ticket = r.ticket(Method::DELETE, &path, &self.alice, None).await;
                let tables = ["versions", "tarballs", "dist_tags"];
                // Once gone, the version is not found: checked before the ticket.
                Prepared {
                    again: (StatusCode::NOT_FOUND, "package_not_found"),
                    ..self.gated(Method::DELETE, path, None, ticket, &tables, false)
                }
            }
            Change::AddMaintainer => {
                let path = format!("/api/v1/packages/{PKG}/maintainers/bob");
                let ticket = r.ticket(Method::PUT, &path, &self.alice, None).await;
                self.gated(Method::PUT, path, None, ticket, &["package_maintainers"], false)
            }
            Change::RemoveMaintainer => {
                let path = format!("/api/v1/packages/{PKG}/maintainers/bob");
                // bob became a maintainer at the walk of `maintainer_add.inserted`, or does now.
                let now = Snapshot::of(&self.db).await;
                if now.rows("package_maintainers").len() < 2 {
                    let ticket = r.ticket(Method::PUT, &path, &self.alice, None).await;
                    let resp =
                        r.send(Method::PUT, &path, &self.alice.token, None, Some(&ticket)).await.unwrap();
                    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
                    self.settle().await;
                }
                let ticket = r.ticket(Method::DELETE, &path, &self.alice, None).await;
                self.gated(Method::DELETE, path, None, ticket, &["package_maintainers"], false)
            }
            Change::Policy => {
                self.policy_flip = !self.policy_flip;
                let path = format!("/api/v1/packages/{PKG}/policy");
                let body = policy(self.policy_flip);
                let ticket = r.ticket(Method::PUT, &path, &self.root, Some(&body)).await;
                self.gated(Method::PUT, path, Some(body), ticket, &["packages"], true)
            }
            Change::CiCredential => {
                self.next += 1;
                let scope = self.ci_scope(&format!("ci_{:020x}", self.next));
                let ticket =
                    r.ticket(Method::POST, "/api/v1/ci/credentials", &self.alice, Some(&scope)).await;
                self.gated(
                    Method::POST,
                    "/api/v1/ci/credentials".into(),
                    Some(scope),
                    ticket,
                    &["ci_credentials"],
                    false,
                )
            }
        }
    }

    /// A gated change with a tap's ticket: it spends the approval and writes an audit entry and
    /// a notification besides `tables`.
    fn gated(
        &self,
        method: Method,
        path: String,
        body: Option<Value>,
        ticket: String,
        tables: &[&'static str],
        by_root: bool,
    ) -> Prepared {
        let mut alters: Vec<&'static str> = tables.to_vec();
        for t in ["approvals", "audit_log", "audit_heads", "outbox_events", "outbox_deliveries"] {
            if !alters.contains(&t) {
                alters.push(t);
            }
        }
        Prepared {
            method,
            path,
            body,
            token: if by_root { self.root.token.clone() } else { self.alice.token.clone() },
            otp: Some(ticket),
            tap: None,
            alters: alters.leak(),
            again: (StatusCode::UNAUTHORIZED, "invalid_ticket"),
            publishes: None,
        }
    }

    /// Sends the prepared change (for a tap: the tap).
    async fn perform(&self, p: &Prepared) -> reqwest::Result<reqwest::Response> {
        if let Some((info, _)) = &p.tap {
            return self.remote.tap(info, &self.alice.key).await;
        }
        self.remote.send(p.method.clone(), &p.path, &p.token, p.body.as_ref(), p.otp.as_deref()).await
    }

    /// Checks the published version of `p` byte for byte and that `latest` points at it.
    async fn check_published(&self, p: &Prepared) {
        let Some((version, tgz)) = &p.publishes else { return };
        let http = &self.remote.http;
        let doc: Value =
            http.get(self.remote.url(&format!("/{PKG}"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["versions"][version]["dist"]["integrity"], sri_sha512(tgz), "{doc}");
        assert_eq!(doc["dist-tags"]["latest"], version.as_str());
        let bytes = http
            .get(self.remote.url(&format!("/{PKG}/-/{PKG}-{version}.tgz")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.as_ref(), tgz.as_slice(), "the tarball of {version} is whole");
    }

    /// Walks one failpoint.
    async fn walk(&mut self, point: &'static str, change: Change) {
        let after_commit = AFTER_COMMIT.contains(&point);
        let prepared = self.prepare(change).await;
        self.settle().await;
        let before = Snapshot::of(&self.db).await;
        let hooks_before = self.hooks.hooks().len();
        self.restart(Some(point));
        let answer = self.perform(&prepared).await;
        if !IN_WORKER.contains(&point) {
            assert!(
                answer.is_err(),
                "{point}: the server answered instead of dying: {:?}",
                answer.map(|r| r.status())
            );
        }
        let mut server = self.server.take().unwrap();
        let (status, log) = server
            .wait_exit(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{point}: the server did not die at the failpoint"));
        assert_eq!(status.signal(), Some(6), "{point}: aborted (SIGABRT): {status:?}\n{log}");
        assert!(log.contains(&format!("failpoint {point}: aborting")), "{point}: {log}");
        drop(server);

        self.restart(None);
        let after = Snapshot::of(&self.db).await;
        if after_commit {
            after.assert_changed_only(&before, prepared.alters, point);
            self.check_published(&prepared).await;
            let (status, code) = prepared.again;
            let again = self.perform(&prepared).await.unwrap();
            crate::support::expect_error(again, status, code).await;
            if point == "notify.sent" {
                // Sent, but the worker died before recording it: the delivery is still due once
                // its lease (two minutes, which the test lets pass at once) runs out, and is sent
                // again: at least once, never lost.
                assert!(self.undelivered().await >= 1, "{point}: the sent delivery is still due");
                self.expire_leases().await;
                self.settle().await;
                assert!(
                    self.hooks.hooks().len() >= hooks_before + 2,
                    "{point}: sent again after the restart"
                );
            } else if point == "outbox.claimed" {
                // The claim died with its transaction: the delivery is due at once.
                self.settle().await;
                assert!(self.hooks.hooks().len() > hooks_before, "{point}: delivered after the restart");
            }
        } else {
            after.assert_unchanged_since(&before, point);
            // The same evidence does it again.
            let again = self.perform(&prepared).await.unwrap();
            let status = again.status();
            let text = again.text().await.unwrap();
            assert!(status.is_success(), "{point}: redoing with the same evidence: {status} {text}");
            if let Some((_, body)) = &prepared.tap {
                let ticket: Value = serde_json::from_str(&text).unwrap();
                let resp = self
                    .remote
                    .send(
                        Method::PUT,
                        &format!("/{PKG}"),
                        &self.alice.token,
                        Some(body),
                        ticket["ticket"].as_str(),
                    )
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::CREATED, "{point}: the re-tapped ticket publishes");
            }
            let done = Snapshot::of(&self.db).await;
            if prepared.tap.is_some() {
                assert_eq!(
                    done.rows("approval_signatures").len(),
                    before.rows("approval_signatures").len() + 1
                );
            } else {
                done.assert_changed_only(&before, prepared.alters, point);
            }
            self.check_published(&prepared).await;
        }
        self.settle().await;
    }
}

fn server_user(data: &std::path::Path, url: Option<&str>, name: &str) -> String {
    let (status, out, err) = tapgate_tests::process::server_cli(data, url, &["user", "add", name, "--json"]);
    assert!(status.success(), "{err}");
    out
}

/// The failpoints compiled into the binary under test.
fn compiled_in() -> Vec<String> {
    let out = std::process::Command::new(tapgate_tests::bins::bin("tapgate-server"))
        .env("TAPGATE_FAILPOINT", "list")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

async fn every_failpoint_leaves_changes_whole_or_absent(backend: Backend) {
    let mut listed: Vec<String> = compiled_in();
    let mut walked: Vec<String> = WALKED.iter().map(|(p, _)| (*p).to_string()).collect();
    listed.sort();
    walked.sort();
    assert_eq!(walked, listed, "the test walks exactly the failpoints compiled in");
    let Some(mut rig) = Rig::new(backend).await else {
        return;
    };
    for (point, change) in WALKED {
        rig.walk(point, *change).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_failpoint_leaves_changes_whole_or_absent() {
    every_failpoint_leaves_changes_whole_or_absent(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_failpoint_leaves_changes_whole_or_absent() {
    every_failpoint_leaves_changes_whole_or_absent(Backend::Postgres).await;
}

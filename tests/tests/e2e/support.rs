//! In-process test application and helpers.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use tapgate_server::clock::ManualClock;
use tapgate_server::store::Store;
use tapgate_server::store::users::User;
use tapgate_server::webauthn::{AttestationTrust, RelyingParty};
use tapgate_server::{AppConfig, AppState};
pub use tapgate_tests::db::{Backend, TestDb};
use tokio::sync::oneshot;

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(Backend)`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use backend_tests;

/// A store on a fresh database, or `None` when the backend is unavailable (skipped loudly).
pub async fn test_store(backend: Backend) -> Option<(Store, TestDb)> {
    let db = TestDb::new(backend).await?;
    let store = Store::connect(&db.url).await.expect("connect to test database");
    Some((store, db))
}

/// The real application on 127.0.0.1:0 with a fresh database and a manual clock.
pub struct TestApp {
    pub base: String,
    /// The WebAuthn origin, `http://localhost:PORT`.
    pub origin: String,
    pub state: AppState,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    _db: TestDb,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn new(backend: Backend) -> Option<TestApp> {
        Self::with_trust(backend, AttestationTrust::none()).await
    }

    /// An app whose relying party trusts the given attestation CAs.
    pub async fn with_trust(backend: Backend, trust: AttestationTrust) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        Some(Self::on_database(db, trust, ManualClock::new(), None, |_| {}).await)
    }

    /// An app whose configuration `configure` adjusts (limits, timeouts).
    pub async fn with_config(backend: Backend, configure: impl FnOnce(&mut AppConfig)) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        Some(Self::on_database(db, AttestationTrust::none(), ManualClock::new(), None, configure).await)
    }

    /// A second, independent server instance on the same database (as behind a load balancer).
    pub async fn another_instance(&self) -> TestApp {
        // Same clock, so expiry agrees across the two.
        // Instances behind one load balancer share the public origin and configuration.
        let mine = self.state.config.clone();
        Self::on_database(
            TestDb::borrowed(&self._db),
            self.state.rp.trust.clone(),
            self.clock.clone(),
            Some(self.origin.clone()),
            move |config| {
                config.connections = mine.connections.clone();
                config.rate_limits = mine.rate_limits.clone();
                config.notify = mine.notify.clone();
                config.oidc = mine.oidc.clone();
                config.default_ci = mine.default_ci.clone();
            },
        )
        .await
    }

    async fn on_database(
        db: TestDb,
        trust: AttestationTrust,
        clock: ManualClock,
        origin: Option<String>,
        configure: impl FnOnce(&mut AppConfig),
    ) -> TestApp {
        let store = Store::connect(&db.url).await.expect("connect to test database");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let origin = origin.unwrap_or_else(|| format!("http://localhost:{port}"));
        let mut config = AppConfig {
            origin: origin.parse().expect("origin"),
            max_json_bytes: 64 * 1024,
            default_policy: tapgate_shared::api::SecondFactor::SecurityKey,
            max_tarball_bytes: 1024 * 1024,
            approval_ttl_seconds: tapgate_server::gate::approvals::DEFAULT_INTENT_TTL_SECONDS,
            connections: Default::default(),
            rate_limits: Default::default(),
            trusted_proxies: Vec::new(),
            notify: Default::default(),
            upstream: None,
            oidc: Default::default(),
            default_ci: Vec::new(),
        };
        configure(&mut config);
        let rp = RelyingParty::new(&config.origin, trust).expect("relying party");
        let state = AppState::new(store, Arc::new(clock.clone()), config, rp);
        let (tx, rx) = oneshot::channel::<()>();
        let app_state = state.clone();
        tokio::spawn(async move {
            let _ = tapgate_server::serve(listener, app_state, async move {
                let _ = rx.await;
            })
            .await;
        });
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            origin,
            state,
            clock,
            http: reqwest::Client::new(),
            _db: db,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path` as JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    /// `GET path` as JSON, with a bearer token.
    pub async fn get_json_as<T: serde::de::DeserializeOwned>(&self, path: &str, token: &str) -> T {
        self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap().json().await.unwrap()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The test's database (to tamper with it, as an attacker holding it would).
    pub fn database(&self) -> &TestDb {
        &self._db
    }

    pub async fn user(&self, name: &str, admin: bool) -> User {
        self.store().create_user(name, admin, self.clock_now()).await.expect("create user")
    }

    pub fn clock_now(&self) -> i64 {
        use tapgate_server::clock::Clock;
        self.clock.now()
    }

    /// A token for `user` with the given scopes.
    pub async fn token(&self, user: &User, scopes: &[tapgate_shared::api::Scope]) -> String {
        let (_, secret) = self
            .store()
            .issue_token(
                &user.id,
                "test",
                scopes,
                None,
                tapgate_server::store::tokens::TokenSource::Issued,
                self.clock_now(),
            )
            .await
            .expect("issue token");
        secret
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts an error envelope with `status` and `code`; returns the message.
pub async fn expect_error(resp: reqwest::Response, status: StatusCode, code: &str) -> String {
    let got = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(body["error"]["code"], code, "unexpected error code; body: {text}");
    let message = body["error"]["message"].as_str().expect("message").to_string();
    assert!(message.len() > 10, "the message should be a sentence: {message:?}");
    message
}

/// Whether npm and npx are present (a loud skip, or a failure when tools are required).
pub fn npm_tools() -> bool {
    tapgate_tests::tools::available(
        "yarn/pnpm install test",
        &[("npm", &["--version"]), ("npx", &["--version"])],
    )
}

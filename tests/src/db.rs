//! A fresh database per test.
//!
//! SQLite: a file in a temporary directory. PostgreSQL: a new database on the server named by
//! `TAPGATE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), dropped
//! when the test ends. When PostgreSQL cannot be reached the PostgreSQL tests are skipped with a
//! loud message, unless `TAPGATE_TEST_REQUIRE_POSTGRES=1` (as in CI), which makes them fail.

use std::path::PathBuf;

use rand::RngCore;
use sqlx::Connection;

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    /// Keeps the SQLite file's directory alive.
    pub dir: tempfile::TempDir,
    pg_admin_url: Option<String>,
    pg_name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("TAPGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

fn postgres_required() -> bool {
    std::env::var("TAPGATE_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

impl TestDb {
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("tapgate.db").display());
        TestDb { url, backend: Backend::Sqlite, dir, pg_admin_url: None, pg_name: None }
    }

    /// A new PostgreSQL database, or `None` (after a loud message) when PostgreSQL is not
    /// reachable and not required.
    pub async fn postgres() -> Option<TestDb> {
        let admin = admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) => {
                if postgres_required() {
                    panic!(
                        "PostgreSQL is required (TAPGATE_TEST_REQUIRE_POSTGRES=1) but {admin} is unreachable: {e}"
                    );
                }
                eprintln!(
                    "\n!!!!! SKIPPED: PostgreSQL test: cannot reach {admin} ({e}).\n\
                     !!!!! Start PostgreSQL or set TAPGATE_TEST_POSTGRES_URL; CI sets TAPGATE_TEST_REQUIRE_POSTGRES=1.\n"
                );
                return None;
            }
        };
        let mut suffix = [0u8; 8];
        rand::rng().fill_bytes(&mut suffix);
        let name = format!("tg_test_{}", hex::encode(suffix));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let url = with_database(&admin, &name);
        let dir = tempfile::tempdir().expect("tempdir");
        Some(TestDb { url, backend: Backend::Postgres, dir, pg_admin_url: Some(admin), pg_name: Some(name) })
    }

    /// Another handle on the same database that does not drop it.
    pub fn borrowed(other: &TestDb) -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        TestDb { url: other.url.clone(), backend: other.backend, dir, pg_admin_url: None, pg_name: None }
    }

    /// A data directory next to the database (for the server's `--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => format!("{url}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (Some(admin), Some(name)) = (self.pg_admin_url.take(), self.pg_name.take()) else {
            return;
        };
        // Drop runs inside and outside runtimes alike: use a private thread and runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

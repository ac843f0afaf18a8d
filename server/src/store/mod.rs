//! The storage layer. Routes and the admin CLI go through [`Store`]; nobody else writes SQL.
//!
//! Two backends share every query: SQLite (the embedded default, one file in the data
//! directory) and PostgreSQL (for several server instances behind a load balancer). Queries are
//! written once in the SQL both understand (`$1` placeholders, `RETURNING`, `ON CONFLICT`) and
//! compiled for each pool by [`dispatch!`]. Times are Unix seconds (`BIGINT`), bytes are
//! `BLOB`/`BYTEA`.

pub mod approvals;
pub mod audit;
pub mod ceremonies;
pub mod changes;
pub mod ci;
pub mod effects;
pub mod events;
pub mod fido_mds;
pub mod gate;
pub mod invites;
pub mod keys;
pub mod limits;
pub mod lockout;
pub mod names;
pub mod npm_logins;
pub mod oidc;
pub mod outbox;
pub mod packages;
pub mod pending;
pub mod served_origin;
pub mod server_secrets;
pub mod signing_keys;
mod sqlite_file;
pub mod stages;
pub mod subscriptions;
pub mod tokens;
pub mod upstream;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqlitePool};

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is malformed or names an unsupported backend.
    #[error("{0}")]
    Config(String),
    /// The database cannot be reached or refused the connection.
    #[error("{0}")]
    Unavailable(String),
    /// A uniqueness rule or a compare-and-set lost.
    #[error("{0}")]
    Conflict(String),
    /// Text the database refuses to store (e.g. a NUL character on PostgreSQL).
    #[error("{0}")]
    InvalidText(String),
    /// Stored data that cannot be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => StoreError::Unavailable(err.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            // character_not_in_repertoire, untranslatable_character: text with NUL and the like.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
                StoreError::InvalidText(db.message().to_string())
            }
            _ => StoreError::Database(err),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same query code against whichever pool the store holds.
///
/// `dispatch!(self, pool => body)` compiles `body` once per backend with `pool` bound to the
/// concrete pool type.
macro_rules! dispatch {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use dispatch;

/// A handle on the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and applies pending migrations; a
    /// SQLite file is created if missing, readable by its owner only (as are its `-wal` and
    /// `-shm` files, which SQLite creates with the database file's mode).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::open(url, true).await
    }

    /// Like [`Store::connect`], but never creates a database: a missing SQLite file, or a
    /// database without tapgate's tables, is a [`StoreError::Config`] saying so. For the admin
    /// commands, which must work on the server's database or not at all.
    pub async fn open_existing(url: &str) -> StoreResult<Self> {
        Self::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> StoreResult<Self> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid SQLite database URL: {e}")))?;
            let file = options.get_filename().to_path_buf();
            if create {
                sqlite_file::create_private(&file)?;
            } else if !sqlite_file::is_memory(&file) && !file.is_file() {
                return Err(StoreError::Config(format!("there is no database file {}", file.display())));
            }
            let options = options
                .create_if_missing(create)
                // Durability: in WAL mode `synchronous = FULL` syncs the log at every commit,
                // so a write acknowledged to a client survives a power loss (NORMAL would only
                // keep the database consistent, and could lose the last commits). The crash test
                // (tests e2e/crash.rs) relies on this setting.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| connect_error(url, e))?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid PostgreSQL database URL: {e}")))?;
            // One direct attempt first, so that a refused connection or a wrong password is
            // reported as such instead of as a pool time-out.
            let probe =
                sqlx::PgConnection::connect_with(&options).await.map_err(|e| connect_error(url, e))?;
            let _ = probe.close().await;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| connect_error(url, e))?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL {}: use sqlite://PATH or postgres://USER@HOST/DB",
                redact_url(url)
            )));
        };
        let store = Store { pool };
        if !create && !store.has_schema().await? {
            return Err(StoreError::Config(format!(
                "the database at {} has no tapgate tables (no server has run on it)",
                redact_url(url)
            )));
        }
        store.migrate().await?;
        Ok(store)
    }

    /// Whether tapgate's migrations ever ran on this database.
    async fn has_schema(&self) -> StoreResult<bool> {
        let found: Option<(i64,)> = match &self.pool {
            Pool::Sqlite(pool) => {
                sqlx::query_as("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                    .fetch_optional(pool)
                    .await?
            }
            Pool::Postgres(pool) => {
                sqlx::query_as("SELECT 1::BIGINT FROM pg_tables WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations'")
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(found.is_some())
    }

    async fn migrate(&self) -> StoreResult<()> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// (open, idle, maximum) connections of the pool.
    pub fn pool_stats(&self) -> (u32, u32, u32) {
        dispatch!(self, pool => (pool.size(), u32::try_from(pool.num_idle()).unwrap_or(u32::MAX), pool.options().get_max_connections()))
    }

    /// Closes every connection (waits for queries in flight).
    pub async fn close(&self) {
        dispatch!(self, pool => pool.close().await)
    }
}

fn connect_error(url: &str, err: sqlx::Error) -> StoreError {
    let target = redact_url(url);
    let reason = match &err {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::PoolTimedOut => "timed out".to_string(),
        other => other.to_string(),
    };
    StoreError::Unavailable(format!("cannot connect to the database at {target}: {reason}"))
}

/// The URL with any password replaced by `***`, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => url.split('@').next_back().map(|s| format!("…@{s}")).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_appear_in_redacted_urls() {
        let shown = redact_url("postgres://app:hunter2@db.internal:5432/tapgate");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.internal"));
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}

//! Failed second-factor attempts counted against packages, and the locks they set. A failure
//! and the lock it completes commit together: the package row is locked first (PostgreSQL) or
//! the write transaction is exclusive (SQLite), so two instances counting the fifth failure at
//! once set one lock, never two.

use super::effects::{Effects, write_effects};
use super::gate::{CommitError, Guard, begin_write, enforce_guard, lock_package};
use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// One failure as recorded.
#[derive(Debug, Clone)]
pub struct NewFailure<'a> {
    pub package: &'a str,
    pub kind: &'a str,
    pub user_id: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub detail: &'a str,
    /// Whether it counts towards the lock.
    pub counted: bool,
    pub at: UnixSeconds,
}

/// A failure as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailureRow {
    pub id: i64,
    pub package: String,
    pub at: UnixSeconds,
    pub kind: String,
    pub user_id: Option<String>,
    pub key_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: String,
    pub counted: bool,
    /// The account's name, if any.
    pub account: Option<String>,
}

/// A package's lock in force.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PackageLock {
    pub package: String,
    pub lock_id: String,
    pub locked_at: UnixSeconds,
    /// Counted failures in the window when it was locked.
    pub failures: i64,
}

/// When counted failures lock a package: `threshold` of them within `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRule {
    pub threshold: i64,
    pub window_seconds: i64,
}

/// Builds what a new lock leaves behind (the alert to every maintainer) from the lock and the
/// failures that set it.
pub type Alert<'a> = dyn Fn(&PackageLock, &[FailureRow]) -> Effects + Send + Sync + 'a;

/// What recording a failure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; the package is not (newly) locked. `counted`: failures counting now.
    Noted { counted: i64 },
    /// This failure locked the package.
    Locked(PackageLock),
}

impl Store {
    /// Records a failure against `f.package` (with `noted`, its audit entry) and, when it is
    /// counted and completes `rule`, locks the package in the same transaction (`lock_id` names
    /// the new lock; `alert` builds what the lock leaves behind). A package that does not exist
    /// is never locked.
    pub async fn record_failure(
        &self,
        f: &NewFailure<'_>,
        rule: Option<LockRule>,
        lock_id: &str,
        noted: &Effects,
        alert: &Alert<'_>,
    ) -> StoreResult<Recorded> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let exists: Option<(String,)> =
                sqlx::query_as(lock_package(pool)).bind(f.package).fetch_optional(&mut *tx).await?;
            let counted = f.counted && exists.is_some();
            sqlx::query(
                "INSERT INTO auth_failures (package, at, kind, user_id, key_id, client_ip, user_agent, detail, counted) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(f.package)
            .bind(f.at)
            .bind(f.kind)
            .bind(f.user_id)
            .bind(f.key_id)
            .bind(f.client_ip)
            .bind(f.user_agent)
            .bind(f.detail)
            .bind(counted)
            .execute(&mut *tx)
            .await?;
            if exists.is_some() {
                write_effects!(pool, tx, Some(noted), f.at);
            }
            let (Some(rule), true) = (rule, counted) else {
                tx.commit().await?;
                return Ok(Recorded::Noted { counted: 0 });
            };
            let state: Option<(Option<String>, i64)> =
                sqlx::query_as("SELECT lock_id, counted_after FROM package_locks WHERE package = $1")
                    .bind(f.package)
                    .fetch_optional(&mut *tx)
                    .await?;
            let (locked, counted_after) = match &state {
                Some((lock, after)) => (lock.is_some(), *after),
                None => (false, 0),
            };
            let (count,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM auth_failures WHERE package = $1 AND counted AND id > $2 AND at > $3",
            )
            .bind(f.package)
            .bind(counted_after)
            .bind(f.at - rule.window_seconds)
            .fetch_one(&mut *tx)
            .await?;
            if locked || count < rule.threshold {
                tx.commit().await?;
                return Ok(Recorded::Noted { counted: count });
            }
            sqlx::query(
                "INSERT INTO package_locks (package, lock_id, locked_at, failures) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (package) DO UPDATE SET lock_id = excluded.lock_id, locked_at = excluded.locked_at, \
                 failures = excluded.failures",
            )
            .bind(f.package)
            .bind(lock_id)
            .bind(f.at)
            .bind(count)
            .execute(&mut *tx)
            .await?;
            let lock = PackageLock {
                package: f.package.to_string(),
                lock_id: lock_id.to_string(),
                locked_at: f.at,
                failures: count,
            };
            let failures: Vec<FailureRow> = sqlx::query_as(
                "SELECT f.id, f.package, f.at, f.kind, f.user_id, f.key_id, f.client_ip, f.user_agent, f.detail, \
                 f.counted, u.name AS account FROM auth_failures f LEFT JOIN users u ON u.id = f.user_id \
                 WHERE f.package = $1 AND f.counted AND f.id > $2 AND f.at > $3 ORDER BY f.id LIMIT 50",
            )
            .bind(f.package)
            .bind(counted_after)
            .bind(f.at - rule.window_seconds)
            .fetch_all(&mut *tx)
            .await?;
            let effects = alert(&lock, &failures);
            write_effects!(pool, tx, Some(&effects), f.at);
            tx.commit().await?;
            Ok(Recorded::Locked(lock))
        })
    }

    /// The lock in force on `package`, if any.
    pub async fn package_lock(&self, package: &str) -> StoreResult<Option<PackageLock>> {
        let sql = "SELECT package, lock_id, locked_at, failures FROM package_locks \
                   WHERE package = $1 AND lock_id IS NOT NULL AND locked_at IS NOT NULL";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, PackageLock>(sql).bind(package).fetch_optional(pool).await?))
    }

    /// The failures recorded against `package` since `since`, oldest first, at most `limit`.
    pub async fn failures_since(
        &self,
        package: &str,
        since: UnixSeconds,
        limit: i64,
    ) -> StoreResult<Vec<FailureRow>> {
        let sql = "SELECT f.id, f.package, f.at, f.kind, f.user_id, f.key_id, f.client_ip, f.user_agent, f.detail, \
                   f.counted, u.name AS account FROM auth_failures f LEFT JOIN users u ON u.id = f.user_id \
                   WHERE f.package = $1 AND f.at >= $2 ORDER BY f.id LIMIT $3";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, FailureRow>(sql)
            .bind(package)
            .bind(since)
            .bind(limit)
            .fetch_all(pool)
            .await?))
    }

    /// Lifts the lock `lock_id` of `package` under `guard` (the maintainers' taps). Failures
    /// recorded so far stop counting.
    pub async fn unlock_package(
        &self,
        package: &str,
        lock_id: &str,
        guard: &Guard<'_>,
    ) -> Result<(), CommitError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            let (last,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM auth_failures WHERE package = $1")
                .bind(package)
                .fetch_one(&mut *tx)
                .await?;
            let n = sqlx::query(
                "UPDATE package_locks SET lock_id = NULL, locked_at = NULL, counted_after = $1, unlocked_at = $2, \
                 unlocked_by = $3 WHERE package = $4 AND lock_id = $5",
            )
            .bind(last)
            .bind(guard.now)
            .bind(guard.actor)
            .bind(package)
            .bind(lock_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(CommitError::Stale(format!("the lock on {package} changed while the unlock waited: run it again")));
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

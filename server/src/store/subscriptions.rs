//! Where notifications go: each user's alert address (verified by a link) and the events they
//! chose, and each package's webhooks (set through the gate).

use super::gate::{CommitError, Guard, begin_write, enforce_guard};
use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// A user's notification settings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmailRow {
    pub user_id: String,
    /// The verified address alerts go to.
    pub address: Option<String>,
    pub verified_at: Option<UnixSeconds>,
    /// An address waiting for its verification link.
    pub pending_address: Option<String>,
    pub events: String,
}

/// A package's webhook.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub package: String,
    pub url: String,
    pub secret: String,
    pub created_at: UnixSeconds,
}

impl Store {
    pub async fn user_email(&self, user_id: &str) -> StoreResult<Option<EmailRow>> {
        let sql = "SELECT user_id, address, verified_at, pending_address, events FROM user_emails WHERE user_id = $1";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, EmailRow>(sql).bind(user_id).fetch_optional(pool).await?))
    }

    /// Records `address` as waiting for verification with the link secret's hash.
    pub async fn set_pending_email(
        &self,
        user_id: &str,
        address: &str,
        token_hash: &str,
        expires_at: UnixSeconds,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO user_emails (user_id, pending_address, pending_token_hash, pending_expires_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET pending_address = excluded.pending_address, \
                 pending_token_hash = excluded.pending_token_hash, pending_expires_at = excluded.pending_expires_at",
            )
            .bind(user_id)
            .bind(address)
            .bind(token_hash)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Makes the pending address whose link secret hashes to `token_hash` the verified one;
    /// answers (user id, address), or `None` for an unknown or expired link.
    pub async fn verify_email(
        &self,
        token_hash: &str,
        now: UnixSeconds,
    ) -> StoreResult<Option<(String, String)>> {
        dispatch!(self, pool => {
            let row: Option<(String, String)> = sqlx::query_as(
                "UPDATE user_emails SET address = pending_address, verified_at = $1, pending_address = NULL, \
                 pending_token_hash = NULL, pending_expires_at = NULL \
                 WHERE pending_token_hash = $2 AND pending_expires_at > $1 AND pending_address IS NOT NULL \
                 RETURNING user_id, address",
            )
            .bind(now)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
            Ok(row)
        })
    }

    /// Sets the events a user wants besides lock alerts (`all`, or comma-separated kinds).
    pub async fn set_email_events(&self, user_id: &str, events: &str) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO user_emails (user_id, events) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET events = excluded.events",
            )
            .bind(user_id)
            .bind(events)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Each maintainer's name and verified address (if any), by name.
    pub async fn maintainer_emails(&self, package: &str) -> StoreResult<Vec<(String, Option<String>)>> {
        let sql = "SELECT u.name, CASE WHEN e.verified_at IS NOT NULL THEN e.address END FROM package_maintainers m \
                   JOIN users u ON u.id = m.user_id LEFT JOIN user_emails e ON e.user_id = u.id \
                   WHERE m.package = $1 ORDER BY u.name";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, (String, Option<String>)>(sql).bind(package).fetch_all(pool).await?))
    }

    pub async fn webhooks(&self, package: &str) -> StoreResult<Vec<WebhookRow>> {
        let sql = "SELECT id, package, url, secret, created_at FROM package_webhooks WHERE package = $1 ORDER BY url";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, WebhookRow>(sql).bind(package).fetch_all(pool).await?))
    }

    /// Replaces the package's webhooks with `urls` under `guard`: kept URLs keep their id and
    /// secret, new ones get `fresh` (url, id, secret).
    pub async fn set_webhooks(
        &self,
        package: &str,
        urls: &[String],
        fresh: &[(String, String, String)],
        guard: &Guard<'_>,
    ) -> Result<(), CommitError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            let existing: Vec<(String,)> = sqlx::query_as("SELECT url FROM package_webhooks WHERE package = $1")
                .bind(package)
                .fetch_all(&mut *tx)
                .await?;
            for (url,) in existing.iter().filter(|(u,)| !urls.contains(u)) {
                sqlx::query("DELETE FROM package_webhooks WHERE package = $1 AND url = $2")
                    .bind(package)
                    .bind(url)
                    .execute(&mut *tx)
                    .await?;
            }
            for (url, id, secret) in fresh.iter().filter(|(u, _, _)| !existing.iter().any(|(e,)| e == u)) {
                sqlx::query("INSERT INTO package_webhooks (id, package, url, secret, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(id)
                    .bind(package)
                    .bind(url)
                    .bind(secret)
                    .bind(guard.now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

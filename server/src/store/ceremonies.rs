//! WebAuthn ceremony state, kept in the database so any instance can finish a ceremony another
//! started. Taking a ceremony deletes it: each is used at most once.

use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Ceremony {
    pub id: String,
    pub kind: String,
    pub user_id: Option<String>,
    pub state: String,
    pub context: String,
    pub created_at: UnixSeconds,
    pub expires_at: UnixSeconds,
}

/// What taking a ceremony found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Found(Ceremony),
    /// It existed but had expired (it is deleted now).
    Expired,
    /// No such ceremony of that kind: never existed, or already finished.
    Missing,
}

impl Store {
    pub async fn put_ceremony(&self, c: &Ceremony) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO ceremonies (id, kind, user_id, state, context, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&c.id)
            .bind(&c.kind)
            .bind(&c.user_id)
            .bind(&c.state)
            .bind(&c.context)
            .bind(c.created_at)
            .bind(c.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Atomically removes and returns ceremony `id` of `kind`.
    pub async fn take_ceremony(&self, id: &str, kind: &str, now: UnixSeconds) -> StoreResult<Taken> {
        let sql = "DELETE FROM ceremonies WHERE id = $1 AND kind = $2 \
                   RETURNING id, kind, user_id, state, context, created_at, expires_at";
        let found = dispatch!(self, pool => {
            sqlx::query_as::<_, Ceremony>(sql).bind(id).bind(kind).fetch_optional(pool).await?
        });
        Ok(match found {
            None => Taken::Missing,
            Some(c) if c.expires_at <= now => Taken::Expired,
            Some(c) => Taken::Found(c),
        })
    }

    /// Deletes what has expired and serves no record: ceremonies, npm logins a day after expiry,
    /// approvals that were never used, a day after they lapsed, and rate-limit counters whose
    /// window has passed, and the tarballs of stages that expired undecided. Approvals that published a version are kept forever (they are its
    /// record). Returns the number of rows deleted.
    pub async fn purge_expired(&self, now: UnixSeconds) -> StoreResult<u64> {
        let day_ago = now - 86_400;
        let n: u64 = dispatch!(self, pool => {
            let mut n = sqlx::query("DELETE FROM ceremonies WHERE expires_at <= $1").bind(now).execute(pool).await?.rows_affected();
            n += sqlx::query("DELETE FROM npm_logins WHERE expires_at <= $1").bind(day_ago).execute(pool).await?.rows_affected();
            n += sqlx::query(
                "DELETE FROM approvals WHERE used_at IS NULL AND expires_at <= $1 \
                 AND (ticket_expires_at IS NULL OR ticket_expires_at <= $1)",
            )
            .bind(day_ago)
            .execute(pool)
            .await?
            .rows_affected();
            n += sqlx::query("DELETE FROM rate_limits WHERE expires_at <= $1").bind(now).execute(pool).await?.rows_affected();
            n
        });
        Ok(n + self.purge_expired_stages(now).await?)
    }
}

//! npm's web login: `POST /-/v1/login` opens one, the `/login/{id}` page approves it with a key
//! tap, and npm collects a token once from the done URL, which only it knows.

use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// A web login lives this long.
pub const NPM_LOGIN_TTL_SECONDS: i64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NpmLogin {
    pub id: String,
    pub created_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    pub user_id: Option<String>,
    pub approved_at: Option<UnixSeconds>,
    pub collected_at: Option<UnixSeconds>,
}

/// What polling the done URL finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginPoll {
    Pending,
    /// Approved by this user; the caller now issues the token (this poll won the collection).
    Approved {
        user_id: String,
    },
    /// Unknown, expired or already collected.
    Gone,
}

impl Store {
    pub async fn create_npm_login(&self, id: &str, done_hash: &str, now: UnixSeconds) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("INSERT INTO npm_logins (id, done_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(done_hash)
                .bind(now)
                .bind(now + NPM_LOGIN_TTL_SECONDS)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn npm_login(&self, id: &str) -> StoreResult<Option<NpmLogin>> {
        let sql = "SELECT id, created_at, expires_at, user_id, approved_at, collected_at FROM npm_logins WHERE id = $1";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, NpmLogin>(sql).bind(id).fetch_optional(pool).await?))
    }

    /// Marks a pending login approved by `user_id`; false if it is not pending any more.
    pub async fn approve_npm_login(&self, id: &str, user_id: &str, now: UnixSeconds) -> StoreResult<bool> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "UPDATE npm_logins SET user_id = $1, approved_at = $2 \
                 WHERE id = $3 AND approved_at IS NULL AND expires_at > $2",
            )
            .bind(user_id)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// One poll of the done URL, identified by the hash of its secret.
    pub async fn poll_npm_login(&self, done_hash: &str, now: UnixSeconds) -> StoreResult<LoginPoll> {
        let sql = "SELECT id, created_at, expires_at, user_id, approved_at, collected_at FROM npm_logins WHERE done_hash = $1";
        let found = dispatch!(self, pool => sqlx::query_as::<_, NpmLogin>(sql).bind(done_hash).fetch_optional(pool).await?);
        let Some(login) = found else {
            return Ok(LoginPoll::Gone);
        };
        if login.collected_at.is_some() || login.expires_at <= now {
            return Ok(LoginPoll::Gone);
        }
        let Some(user_id) = login.user_id.filter(|_| login.approved_at.is_some()) else {
            return Ok(LoginPoll::Pending);
        };
        let won = dispatch!(self, pool => {
            sqlx::query("UPDATE npm_logins SET collected_at = $1 WHERE id = $2 AND collected_at IS NULL")
                .bind(now)
                .bind(&login.id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(if won == 1 { LoginPoll::Approved { user_id } } else { LoginPoll::Gone })
    }
}

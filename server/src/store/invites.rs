//! Invites: single-use secrets that let a new user enroll their first security key.

use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;
use crate::secrets::{self, SecretKind};

/// How long an invite stays valid.
pub const INVITE_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// An invite that is still usable.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Invite {
    pub token_hash: String,
    pub user_id: String,
    pub expires_at: UnixSeconds,
}

impl Store {
    /// Issues an invite for `user_id`, voiding their older unused ones; returns the secret
    /// (shown once).
    pub async fn create_invite(&self, user_id: &str, now: UnixSeconds) -> StoreResult<String> {
        let secret = secrets::generate(SecretKind::Invite);
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            // A new invite voids the user's older unused ones: only the latest link enrolls.
            sqlx::query("UPDATE invites SET expires_at = $1 WHERE user_id = $2 AND used_at IS NULL AND expires_at > $1")
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO invites (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&secret.hash)
            .bind(user_id)
            .bind(now)
            .bind(now + INVITE_TTL_SECONDS)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(secret.plaintext)
    }

    /// The invite behind `token` if it is unused, unexpired and its user is enabled.
    pub async fn valid_invite(&self, token: &str, now: UnixSeconds) -> StoreResult<Option<Invite>> {
        if !secrets::has_prefix(token, SecretKind::Invite) {
            return Ok(None);
        }
        let hash = secrets::hash(token);
        let sql = "SELECT i.token_hash, i.user_id, i.expires_at FROM invites i \
                   JOIN users u ON u.id = i.user_id \
                   WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > $2 AND NOT u.disabled";
        let found = dispatch!(self, pool => {
            sqlx::query_as::<_, Invite>(sql).bind(&hash).bind(now).fetch_optional(pool).await?
        });
        Ok(found.filter(|invite| secrets::hashes_equal(&invite.token_hash, &hash)))
    }
}

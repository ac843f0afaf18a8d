//! Security keys: a user's enrolled WebAuthn credentials.

use super::gate::{CommitError, Guard, begin_write, enforce_guard, lock_user};
use super::{Store, StoreError, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// A key as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecurityKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub credential_id: Vec<u8>,
    /// The webauthn-rs credential, JSON.
    pub credential: String,
    pub counter: i64,
    pub aaguid: String,
    pub attestation_format: String,
    pub attested: bool,
    pub attestation_ca: Option<String>,
    pub user_verified: bool,
    pub created_at: UnixSeconds,
    pub last_used_at: Option<UnixSeconds>,
    pub suspended_at: Option<UnixSeconds>,
    pub suspended_reason: Option<String>,
}

/// A key about to be stored.
#[derive(Debug, Clone)]
pub struct NewSecurityKey<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub credential_id: &'a [u8],
    pub credential: &'a str,
    pub counter: i64,
    pub aaguid: &'a str,
    pub attestation_format: &'a str,
    pub attested: bool,
    pub attestation_ca: Option<&'a str>,
    pub user_verified: bool,
}

macro_rules! select_keys {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, name, credential_id, credential, counter, aaguid, attestation_format, attested, \
             attestation_ca, user_verified, created_at, last_used_at, suspended_at, suspended_reason \
             FROM security_keys ",
            $rest
        )
    };
}

/// What allows a key to be enrolled: the account's invite (its first key, or after losing all
/// of them), consumed in the same transaction, or a tap of one of the account's keys approving
/// exactly this key.
#[derive(Debug, Clone, Copy)]
pub enum Enrollment<'a> {
    Invite(&'a str),
    Tap(&'a Guard<'a>),
}

/// The outcome of a counter compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterUpdate {
    Updated,
    /// Someone else updated the key in between (a concurrent use).
    Lost,
}

impl Store {
    /// Stores a key under `enrollment`: the invite is consumed, or the tap's approval spent, in
    /// the same transaction.
    pub async fn add_key(
        &self,
        key: &NewSecurityKey<'_>,
        enrollment: Enrollment<'_>,
        now: UnixSeconds,
    ) -> Result<SecurityKey, CommitError> {
        let id = crate::secrets::public_id("key_");
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            match &enrollment {
                Enrollment::Invite(invite_hash) => {
                    let used = sqlx::query(
                        "UPDATE invites SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
                    )
                    .bind(now)
                    .bind(*invite_hash)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if used != 1 {
                        return Err(CommitError::Stale("the invite was already used or has expired".into()));
                    }
                }
                Enrollment::Tap(guard) => enforce_guard!(pool, tx, guard),
            }
            let inserted = sqlx::query(
                "INSERT INTO security_keys (id, user_id, name, credential_id, credential, counter, aaguid, \
                 attestation_format, attested, attestation_ca, user_verified, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&id)
            .bind(key.user_id)
            .bind(key.name)
            .bind(key.credential_id)
            .bind(key.credential)
            .bind(key.counter)
            .bind(key.aaguid)
            .bind(key.attestation_format)
            .bind(key.attested)
            .bind(key.attestation_ca)
            .bind(key.user_verified)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted.map_err(StoreError::from) {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => {
                    return Err(CommitError::Store(StoreError::Conflict("this security key is already enrolled".into())));
                }
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
        });
        Ok(self.key_by_id(&id).await?.ok_or_else(|| StoreError::Corrupt("stored key vanished".into()))?)
    }

    pub async fn key_by_id(&self, id: &str) -> StoreResult<Option<SecurityKey>> {
        let sql = select_keys!("WHERE id = $1");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, SecurityKey>(sql).bind(id).fetch_optional(pool).await?))
    }

    pub async fn key_by_credential_id(&self, credential_id: &[u8]) -> StoreResult<Option<SecurityKey>> {
        let sql = select_keys!("WHERE credential_id = $1");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, SecurityKey>(sql).bind(credential_id).fetch_optional(pool).await?))
    }

    /// All of a user's keys, suspended ones included, oldest first.
    pub async fn keys_of_user(&self, user_id: &str) -> StoreResult<Vec<SecurityKey>> {
        let sql = select_keys!("WHERE user_id = $1 ORDER BY created_at, id");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, SecurityKey>(sql).bind(user_id).fetch_all(pool).await?))
    }

    pub async fn rename_key(&self, user_id: &str, key_id: &str, name: &str) -> StoreResult<bool> {
        let n = dispatch!(self, pool => {
            sqlx::query("UPDATE security_keys SET name = $1 WHERE id = $2 AND user_id = $3")
                .bind(name)
                .bind(key_id)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Deletes a key unless it is the user's last usable one, under `guard` (the tap approving
    /// exactly this removal). `Ok(None)`: no such key.
    pub async fn delete_key(
        &self,
        user_id: &str,
        key_id: &str,
        guard: &Guard<'_>,
    ) -> Result<Option<()>, CommitError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let _ = sqlx::query(lock_user(pool)).bind(user_id).fetch_optional(&mut *tx).await?;
            let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM security_keys WHERE id = $1 AND user_id = $2")
                .bind(key_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(None);
            }
            let (others,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM security_keys WHERE user_id = $1 AND id <> $2 AND suspended_at IS NULL",
            )
            .bind(user_id)
            .bind(key_id)
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Err(CommitError::Stale(
                    "this is your last usable security key: enroll another one before removing it".into(),
                ));
            }
            enforce_guard!(pool, tx, guard);
            sqlx::query("DELETE FROM security_keys WHERE id = $1").bind(key_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(()))
        })
    }

    /// Records a successful use: compare-and-set on the counter, so two concurrent uses of the
    /// same assertion state cannot both win.
    pub async fn record_key_use(
        &self,
        key_id: &str,
        expected_counter: i64,
        new_counter: i64,
        credential: &str,
        now: UnixSeconds,
    ) -> StoreResult<CounterUpdate> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "UPDATE security_keys SET counter = $1, credential = $2, last_used_at = $3 \
                 WHERE id = $4 AND counter = $5 AND suspended_at IS NULL \
                 AND ($1 > counter OR ($1 = 0 AND counter = 0))",
            )
            .bind(new_counter)
            .bind(credential)
            .bind(now)
            .bind(key_id)
            .bind(expected_counter)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(if n == 1 { CounterUpdate::Updated } else { CounterUpdate::Lost })
    }

    /// Refuses a key from now on.
    pub async fn suspend_key(&self, key_id: &str, reason: &str, now: UnixSeconds) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("UPDATE security_keys SET suspended_at = $1, suspended_reason = $2 WHERE id = $3 AND suspended_at IS NULL")
                .bind(now)
                .bind(reason)
                .bind(key_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Suspends `key_id` of `user_id` for good on an operator's word (a lost or stolen key),
    /// writing `effects` (the user's notice, the audit entry) in the same transaction.
    /// Returns false if the user has no such key that is not suspended already.
    pub async fn revoke_key(
        &self,
        user_id: &str,
        key_id: &str,
        reason: &str,
        effects: &super::effects::Effects,
        now: UnixSeconds,
    ) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let _ = sqlx::query(lock_user(pool)).bind(user_id).fetch_optional(&mut *tx).await?;
            let updated = sqlx::query(
                "UPDATE security_keys SET suspended_at = $1, suspended_reason = $2 \
                 WHERE id = $3 AND user_id = $4 AND suspended_at IS NULL",
            )
            .bind(now)
            .bind(reason)
            .bind(key_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Ok(false);
            }
            super::effects::write_effects!(pool, tx, Some(effects), now);
            tx.commit().await?;
            Ok(true)
        })
    }
}

//! The registry's Ed25519 signing keys (for deploy keys). Exactly one is current; rotated-out
//! keys keep their rows with the time they stopped signing, so what they signed stays
//! verifiable. Shared by every instance.

use super::gate::begin_write;
use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// The algorithm every key here has.
pub const ALG_EDDSA: &str = "EdDSA";

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub public_key: Vec<u8>,
    /// The Ed25519 seed (32 bytes). Never logged.
    pub private_key: Vec<u8>,
    pub not_before: UnixSeconds,
    pub not_after: Option<UnixSeconds>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key", &"<redacted>")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

macro_rules! select_keys {
    ($rest:literal) => {
        concat!("SELECT kid, alg, public_key, private_key, not_before, not_after FROM signing_keys ", $rest)
    };
}

impl Store {
    /// The key that signs now, if there is one.
    pub async fn current_signing_key(&self) -> StoreResult<Option<SigningKeyRow>> {
        let sql = select_keys!("WHERE alg = $1 AND not_after IS NULL");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, SigningKeyRow>(sql).bind(ALG_EDDSA).fetch_optional(pool).await?))
    }

    /// Stores `key` as the current key unless there is one already (concurrent first uses agree
    /// on one).
    pub async fn insert_first_signing_key(&self, key: &SigningKeyRow) -> StoreResult<()> {
        let sql = "INSERT INTO signing_keys (kid, alg, public_key, private_key, not_before, not_after) \
                   VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT DO NOTHING";
        dispatch!(self, pool => {
            sqlx::query(sql)
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.public_key)
                .bind(&key.private_key)
                .bind(key.not_before)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends the current key's period at `now` and makes `key` (whose period starts at `now`)
    /// current. Returns the kid of the key retired, if any.
    pub async fn rotate_signing_key(
        &self,
        key: &SigningKeyRow,
        now: UnixSeconds,
    ) -> StoreResult<Option<String>> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let retired: Option<(String,)> = sqlx::query_as(
                "UPDATE signing_keys SET not_after = $1 WHERE alg = $2 AND not_after IS NULL RETURNING kid",
            )
            .bind(now)
            .bind(&key.alg)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, public_key, private_key, not_before, not_after) \
                 VALUES ($1, $2, $3, $4, $5, NULL)",
            )
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.public_key)
            .bind(&key.private_key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(retired.map(|(kid,)| kid))
        })
    }

    pub async fn signing_key(&self, kid: &str) -> StoreResult<Option<SigningKeyRow>> {
        let sql = select_keys!("WHERE kid = $1");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, SigningKeyRow>(sql).bind(kid).fetch_optional(pool).await?))
    }

    /// Every key, oldest first.
    pub async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRow>> {
        let sql = select_keys!("ORDER BY not_before, kid");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, SigningKeyRow>(sql).fetch_all(pool).await?))
    }
}

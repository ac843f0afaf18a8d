//! Trusted publishing: trusts (a maintainer's tapped issuer and claims), the ID tokens already
//! exchanged (by issuer and `jti`, until they expire), and the short-lived registry tokens the
//! exchanges answered. A registry token is spent by the publish it makes, inside that publish's
//! transaction (see [`super::gate`]).

use super::gate::{CommitError, Guard, begin_write, enforce_guard};
use super::{Store, StoreError, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// A trust as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TrustRow {
    pub id: String,
    pub package: String,
    pub issuer: String,
    pub provider: String,
    /// Canonical JSON.
    pub claims: String,
    /// JSON array.
    pub permissions: String,
    pub created_by: String,
    pub created_at: UnixSeconds,
    pub approval_id: String,
    pub removed_at: Option<UnixSeconds>,
}

impl TrustRow {
    pub fn permission_list(&self) -> Vec<String> {
        serde_json::from_str(&self.permissions).unwrap_or_default()
    }
}

macro_rules! select_trusts {
    ($rest:literal) => {
        concat!(
            "SELECT id, package, issuer, provider, claims, permissions, created_by, created_at, approval_id, \
             removed_at FROM trusts ",
            $rest
        )
    };
}

/// A trust to create, under the guard of the tap that approved it.
#[derive(Debug, Clone)]
pub struct NewTrust<'a> {
    pub id: &'a str,
    pub package: &'a str,
    pub issuer: &'a str,
    pub provider: &'a str,
    pub claims: &'a str,
    pub permissions: &'a [String],
    pub guard: Guard<'a>,
}

/// A registry token an exchange answered.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OidcTokenRow {
    pub hash: String,
    pub trust_id: String,
    pub package: String,
    pub permissions: String,
    pub issuer: String,
    pub jti: String,
    pub id_token: String,
    pub jwk: String,
    pub exchanged_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    pub spent_at: Option<UnixSeconds>,
    pub version: Option<String>,
    pub statement: Option<String>,
}

impl OidcTokenRow {
    pub fn permission_list(&self) -> Vec<String> {
        serde_json::from_str(&self.permissions).unwrap_or_default()
    }
}

macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT hash, trust_id, package, permissions, issuer, jti, id_token, jwk, exchanged_at, expires_at, \
             spent_at, version, statement FROM oidc_tokens ",
            $rest
        )
    };
}

/// An exchange to record: the ID token's `jti` (kept until `jti_expires_at`) and the token.
#[derive(Debug, Clone)]
pub struct NewExchange<'a> {
    pub hash: &'a str,
    pub trust_id: &'a str,
    pub package: &'a str,
    pub permissions: &'a [String],
    pub issuer: &'a str,
    pub jti: &'a str,
    pub jti_expires_at: UnixSeconds,
    pub id_token: &'a str,
    pub jwk: &'a str,
    pub now: UnixSeconds,
    pub expires_at: UnixSeconds,
}

/// Why an exchange was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The ID token's `jti` was exchanged before (on any instance).
    #[error("the ID token was exchanged already")]
    Replayed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ExchangeError {
    fn from(e: sqlx::Error) -> Self {
        ExchangeError::Store(e.into())
    }
}

fn json(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Creates a trust: the guard's tap is spent and becomes the trust's approval, in the same
    /// transaction.
    pub async fn create_trust(&self, t: &NewTrust<'_>) -> Result<(), CommitError> {
        let g = &t.guard;
        let approval_id = g.tap.map(|t| t.approval_id).ok_or(CommitError::EvidenceSpent)?;
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, g);
            sqlx::query(
                "INSERT INTO trusts (id, package, issuer, provider, claims, permissions, created_by, created_at, \
                 approval_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(t.id)
            .bind(t.package)
            .bind(t.issuer)
            .bind(t.provider)
            .bind(t.claims)
            .bind(json(t.permissions))
            .bind(g.actor)
            .bind(g.now)
            .bind(approval_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes a trust under `guard` (its notice and audit entry commit with it); tokens it
    /// answered stop working at once, even unspent ones.
    pub async fn remove_trust(&self, id: &str, guard: &Guard<'_>) -> Result<(), CommitError> {
        let g = guard;
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, g);
            let done = sqlx::query("UPDATE trusts SET removed_at = $1, removed_by = $2 WHERE id = $3 AND removed_at IS NULL")
                .bind(g.now)
                .bind(g.actor)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done != 1 {
                return Err(CommitError::Stale(format!("the trust {id} was removed meanwhile")));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn trust(&self, id: &str) -> StoreResult<Option<TrustRow>> {
        let sql = select_trusts!("WHERE id = $1");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, TrustRow>(sql).bind(id).fetch_optional(pool).await?))
    }

    /// A package's trusts in force, oldest first.
    pub async fn trusts(&self, package: &str) -> StoreResult<Vec<TrustRow>> {
        let sql = select_trusts!("WHERE package = $1 AND removed_at IS NULL ORDER BY created_at, id");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, TrustRow>(sql).bind(package).fetch_all(pool).await?))
    }

    /// How many trusts `package` ever held for `issuer` with exactly `claims`, removed ones
    /// included.
    pub async fn trusts_ever(&self, package: &str, issuer: &str, claims: &str) -> StoreResult<i64> {
        let sql = "SELECT COUNT(*) FROM trusts WHERE package = $1 AND issuer = $2 AND claims = $3";
        let (n,): (i64,) = dispatch!(self, pool => sqlx::query_as(sql).bind(package).bind(issuer).bind(claims).fetch_one(pool).await?);
        Ok(n)
    }

    /// Records an exchange: the `jti` first (refused when seen before, on any instance), then the
    /// token. Expired `jti`s and unspent expired tokens are forgotten meanwhile.
    pub async fn record_exchange(&self, e: &NewExchange<'_>) -> Result<(), ExchangeError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM oidc_jtis WHERE expires_at < $1").bind(e.now).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM oidc_tokens WHERE spent_at IS NULL AND expires_at <= $1")
                .bind(e.now)
                .execute(&mut *tx)
                .await?;
            let seen = sqlx::query(
                "INSERT INTO oidc_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (issuer, jti) DO NOTHING",
            )
            .bind(e.issuer)
            .bind(e.jti)
            .bind(e.jti_expires_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if seen != 1 {
                return Err(ExchangeError::Replayed);
            }
            sqlx::query(
                "INSERT INTO oidc_tokens (hash, trust_id, package, permissions, issuer, jti, id_token, jwk, \
                 exchanged_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(e.hash)
            .bind(e.trust_id)
            .bind(e.package)
            .bind(json(e.permissions))
            .bind(e.issuer)
            .bind(e.jti)
            .bind(e.id_token)
            .bind(e.jwk)
            .bind(e.now)
            .bind(e.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The registry token whose text hashes to `hash`.
    pub async fn oidc_token(&self, hash: &str) -> StoreResult<Option<OidcTokenRow>> {
        let sql = select_tokens!("WHERE hash = $1");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, OidcTokenRow>(sql).bind(hash).fetch_optional(pool).await?))
    }

    /// The registry token a version was published with, if it was.
    pub async fn spent_oidc_token(&self, package: &str, version: &str) -> StoreResult<Option<OidcTokenRow>> {
        let sql = select_tokens!("WHERE package = $1 AND version = $2 AND spent_at IS NOT NULL");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, OidcTokenRow>(sql).bind(package).bind(version).fetch_optional(pool).await?))
    }
}

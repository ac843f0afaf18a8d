//! CI credentials (a maintainer's tapped scope, and the hash of the secret CI holds) and the
//! deploy keys issued for them. A deploy key is spent by the publish it names, inside that
//! publish's transaction (see [`super::gate`]).

use super::gate::{CommitError, Guard, begin_write, enforce_guard};
use super::{Store, StoreError, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// A CI credential (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiCredential {
    pub id: String,
    pub package: String,
    pub name: String,
    pub versions: String,
    pub tags: Vec<String>,
    pub cidrs: Vec<String>,
    pub expires_at: UnixSeconds,
    pub created_by: String,
    pub created_at: UnixSeconds,
    pub approval_id: String,
    pub revoked_at: Option<UnixSeconds>,
    pub last_used_at: Option<UnixSeconds>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    package: String,
    name: String,
    versions: String,
    tags: String,
    cidrs: String,
    expires_at: UnixSeconds,
    created_by: String,
    created_at: UnixSeconds,
    approval_id: String,
    revoked_at: Option<UnixSeconds>,
    last_used_at: Option<UnixSeconds>,
}

fn list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("a CI credential's list: {e}")))
}

impl TryFrom<Row> for CiCredential {
    type Error = StoreError;

    fn try_from(r: Row) -> StoreResult<Self> {
        Ok(CiCredential {
            tags: list(&r.tags)?,
            cidrs: list(&r.cidrs)?,
            id: r.id,
            package: r.package,
            name: r.name,
            versions: r.versions,
            expires_at: r.expires_at,
            created_by: r.created_by,
            created_at: r.created_at,
            approval_id: r.approval_id,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
        })
    }
}

macro_rules! select_credentials {
    ($rest:literal) => {
        concat!(
            "SELECT id, package, name, versions, tags, cidrs, expires_at, created_by, created_at, approval_id, \
             revoked_at, last_used_at FROM ci_credentials ",
            $rest
        )
    };
}

/// A credential to create, under the guard of the tap that approved its scope.
#[derive(Debug, Clone)]
pub struct NewCiCredential<'a> {
    pub id: &'a str,
    pub package: &'a str,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub versions: &'a str,
    pub tags: &'a [String],
    pub cidrs: &'a [String],
    pub expires_at: UnixSeconds,
    pub guard: Guard<'a>,
}

/// A deploy key as issued.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeployKeyRow {
    pub hash: String,
    pub nonce: String,
    pub kid: String,
    pub credential_id: String,
    pub package: String,
    pub version: String,
    pub integrity: String,
    pub issued_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    pub spent_at: Option<UnixSeconds>,
    /// The deploy key's text, once spent.
    pub document: Option<String>,
}

macro_rules! select_deploy_keys {
    ($rest:literal) => {
        concat!(
            "SELECT hash, nonce, kid, credential_id, package, version, integrity, issued_at, expires_at, spent_at, \
             document FROM deploy_keys ",
            $rest
        )
    };
}

/// A deploy key to record (its hash; the text is kept only once spent).
#[derive(Debug, Clone)]
pub struct NewDeployKey<'a> {
    pub hash: &'a str,
    pub nonce: &'a str,
    pub kid: &'a str,
    pub credential_id: &'a str,
    pub package: &'a str,
    pub version: &'a str,
    pub integrity: &'a str,
    pub tags: &'a [String],
    pub issued_at: UnixSeconds,
    pub expires_at: UnixSeconds,
}

fn json(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Creates a credential: the guard's tap is spent and becomes the credential's approval, in
    /// the same transaction.
    pub async fn create_ci_credential(&self, c: &NewCiCredential<'_>) -> Result<(), CommitError> {
        let g = &c.guard;
        let approval_id = g.tap.map(|t| t.approval_id).ok_or(CommitError::EvidenceSpent)?;
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, g);
            sqlx::query(
                "INSERT INTO ci_credentials (id, package, name, secret_hash, versions, tags, cidrs, expires_at, \
                 created_by, created_at, approval_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(c.id)
            .bind(c.package)
            .bind(c.name)
            .bind(c.secret_hash)
            .bind(c.versions)
            .bind(json(c.tags))
            .bind(json(c.cidrs))
            .bind(c.expires_at)
            .bind(g.actor)
            .bind(g.now)
            .bind(approval_id)
            .execute(&mut *tx)
            .await?;
            crate::failpoint!("ci_credential.inserted");
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn ci_credential(&self, id: &str) -> StoreResult<Option<CiCredential>> {
        let sql = select_credentials!("WHERE id = $1");
        let row = dispatch!(self, pool => sqlx::query_as::<_, Row>(sql).bind(id).fetch_optional(pool).await?);
        row.map(CiCredential::try_from).transpose()
    }

    /// The credential whose secret hashes to `secret_hash`.
    pub async fn ci_credential_by_secret(&self, secret_hash: &str) -> StoreResult<Option<CiCredential>> {
        let sql = select_credentials!("WHERE secret_hash = $1");
        let row = dispatch!(self, pool => sqlx::query_as::<_, Row>(sql).bind(secret_hash).fetch_optional(pool).await?);
        row.map(CiCredential::try_from).transpose()
    }

    /// A package's credentials, revoked ones included, newest first.
    pub async fn ci_credentials(&self, package: &str) -> StoreResult<Vec<CiCredential>> {
        let sql = select_credentials!("WHERE package = $1 ORDER BY created_at DESC, id");
        let rows =
            dispatch!(self, pool => sqlx::query_as::<_, Row>(sql).bind(package).fetch_all(pool).await?);
        rows.into_iter().map(CiCredential::try_from).collect()
    }

    /// Revokes a credential; false when it was revoked already.
    pub async fn revoke_ci_credential(&self, id: &str, by: &str, now: UnixSeconds) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let done = sqlx::query(
                "UPDATE ci_credentials SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(by)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // What a revoked (perhaps leaked) credential staged is not left for someone to
            // approve by mistake: its waiting stages are rejected with it.
            sqlx::query(
                "UPDATE stages SET state = 'rejected', decided_at = $1, decided_by = $2 \
                 WHERE actor_type = 'ci-credential' AND actor_ref = $3 AND state = 'pending'",
            )
            .bind(now)
            .bind(by)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM stage_tarballs WHERE stage_id IN (SELECT id FROM stages \
                 WHERE actor_type = 'ci-credential' AND actor_ref = $1 AND state = 'rejected')",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(done == 1)
        })
    }

    /// Records a deploy key (and that its credential was used). Deploy keys that expired
    /// unspent are forgotten meanwhile, so asking for many keeps no more than minutes' worth.
    pub async fn create_deploy_key(&self, k: &NewDeployKey<'_>) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM deploy_keys WHERE spent_at IS NULL AND expires_at <= $1")
                .bind(k.issued_at)
                .execute(&mut *tx)
                .await?;
            crate::failpoint!("deploy_key.swept");
            sqlx::query(
                "INSERT INTO deploy_keys (hash, nonce, kid, credential_id, package, version, integrity, tags, \
                 issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(k.hash)
            .bind(k.nonce)
            .bind(k.kid)
            .bind(k.credential_id)
            .bind(k.package)
            .bind(k.version)
            .bind(k.integrity)
            .bind(json(k.tags))
            .bind(k.issued_at)
            .bind(k.expires_at)
            .execute(&mut *tx)
            .await?;
            crate::failpoint!("deploy_key.inserted");
            sqlx::query("UPDATE ci_credentials SET last_used_at = $1 WHERE id = $2")
                .bind(k.issued_at)
                .bind(k.credential_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The deploy key whose text hashes to `hash`.
    pub async fn deploy_key(&self, hash: &str) -> StoreResult<Option<DeployKeyRow>> {
        let sql = select_deploy_keys!("WHERE hash = $1");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, DeployKeyRow>(sql).bind(hash).fetch_optional(pool).await?))
    }

    /// The deploy key a version was published with, if it was.
    pub async fn spent_deploy_key(&self, package: &str, version: &str) -> StoreResult<Option<DeployKeyRow>> {
        let sql = select_deploy_keys!("WHERE package = $1 AND version = $2 AND spent_at IS NOT NULL");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, DeployKeyRow>(sql).bind(package).bind(version).fetch_optional(pool).await?))
    }
}

//! Packages, versions, tarballs, dist-tags and maintainers.

use std::collections::BTreeMap;

use super::{Store, StoreError, StoreResult, dispatch};
use crate::clock::UnixSeconds;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PackageRow {
    pub name: String,
    /// `PackagePolicy` JSON.
    pub policy: String,
    pub created_at: UnixSeconds,
    pub modified_at: UnixSeconds,
}

/// A published version without its tarball bytes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VersionRow {
    pub version: String,
    pub manifest: String,
    pub integrity: String,
    pub shasum: String,
    pub size: i64,
    pub published_at: UnixSeconds,
    pub approval_id: Option<String>,
}

/// Everything a publish writes, in one transaction.
#[derive(Debug, Clone)]
pub struct PublishRecord<'a> {
    pub package: &'a str,
    pub version: &'a str,
    pub manifest: &'a str,
    pub tarball: &'a [u8],
    pub integrity: &'a str,
    pub shasum: &'a str,
    pub publisher_id: &'a str,
    /// Policy JSON for the package if this publish creates it.
    pub default_policy: &'a str,
    /// The approval consumed by this publish (its ticket was presented).
    pub approval_id: Option<&'a str>,
    /// Dist-tags to point at this version.
    pub tags: &'a [String],
}

/// Why a publish did not commit.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("version exists")]
    VersionExists,
    #[error("not a maintainer")]
    NotMaintainer,
    #[error("approval not usable")]
    ApprovalNotUsable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PublishError {
    fn from(e: sqlx::Error) -> Self {
        PublishError::Store(e.into())
    }
}

impl Store {
    pub async fn package(&self, name: &str) -> StoreResult<Option<PackageRow>> {
        let sql = "SELECT name, policy, created_at, modified_at FROM packages WHERE name = $1";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, PackageRow>(sql).bind(name).fetch_optional(pool).await?))
    }

    /// Sets a package's policy, creating the (empty) package if it does not exist yet, so that
    /// critical names can be protected before their first publish.
    pub async fn set_policy(&self, name: &str, policy: &str, now: UnixSeconds) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO packages (name, policy, created_at, modified_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, modified_at = excluded.modified_at",
            )
            .bind(name)
            .bind(policy)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// (user id, username) of each maintainer, by username.
    pub async fn maintainers(&self, package: &str) -> StoreResult<Vec<(String, String)>> {
        let sql = "SELECT u.id, u.name FROM package_maintainers m JOIN users u ON u.id = m.user_id \
                   WHERE m.package = $1 ORDER BY u.name";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, (String, String)>(sql).bind(package).fetch_all(pool).await?))
    }

    pub async fn is_maintainer(&self, package: &str, user_id: &str) -> StoreResult<bool> {
        let sql = "SELECT user_id FROM package_maintainers WHERE package = $1 AND user_id = $2";
        let found = dispatch!(self, pool => {
            sqlx::query_as::<_, (String,)>(sql).bind(package).bind(user_id).fetch_optional(pool).await?
        });
        Ok(found.is_some())
    }

    /// Adds a maintainer; false if they already were one.
    pub async fn add_maintainer(&self, package: &str, user_id: &str, now: UnixSeconds) -> StoreResult<bool> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO package_maintainers (package, user_id, added_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (package, user_id) DO NOTHING",
            )
            .bind(package)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Removes a maintainer unless they are the last one. `Ok(false)`: not a maintainer.
    pub async fn remove_maintainer(&self, package: &str, user_id: &str) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM package_maintainers WHERE package = $1")
                .bind(package)
                .fetch_one(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM package_maintainers WHERE package = $1 AND user_id = $2")
                .bind(package)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 && count <= 1 {
                return Err(StoreError::Conflict("a package keeps at least one maintainer: add another first".into()));
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    pub async fn versions(&self, package: &str) -> StoreResult<Vec<VersionRow>> {
        let sql = "SELECT version, manifest, integrity, shasum, size, published_at, approval_id FROM versions \
                   WHERE package = $1 ORDER BY published_at, version";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, VersionRow>(sql).bind(package).fetch_all(pool).await?))
    }

    pub async fn version(&self, package: &str, version: &str) -> StoreResult<Option<VersionRow>> {
        let sql = "SELECT version, manifest, integrity, shasum, size, published_at, approval_id FROM versions \
                   WHERE package = $1 AND version = $2";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, VersionRow>(sql).bind(package).bind(version).fetch_optional(pool).await?))
    }

    pub async fn tarball(&self, package: &str, version: &str) -> StoreResult<Option<Vec<u8>>> {
        let sql = "SELECT tarball FROM versions WHERE package = $1 AND version = $2";
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, (Vec<u8>,)>(sql).bind(package).bind(version).fetch_optional(pool).await?
        });
        Ok(row.map(|(t,)| t))
    }

    pub async fn dist_tags(&self, package: &str) -> StoreResult<BTreeMap<String, String>> {
        let sql = "SELECT tag, version FROM dist_tags WHERE package = $1";
        let rows = dispatch!(self, pool => sqlx::query_as::<_, (String, String)>(sql).bind(package).fetch_all(pool).await?);
        Ok(rows.into_iter().collect())
    }

    pub async fn set_dist_tag(
        &self,
        package: &str,
        tag: &str,
        version: &str,
        now: UnixSeconds,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO dist_tags (package, tag, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (package, tag) DO UPDATE SET version = excluded.version",
            )
            .bind(package)
            .bind(tag)
            .bind(version)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE packages SET modified_at = $1 WHERE name = $2").bind(now).bind(package).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn remove_dist_tag(&self, package: &str, tag: &str) -> StoreResult<bool> {
        let n = dispatch!(self, pool => {
            sqlx::query("DELETE FROM dist_tags WHERE package = $1 AND tag = $2")
                .bind(package)
                .bind(tag)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Commits a version: package (if new), first maintainer (if none), the approval's
    /// consumption, the version with its tarball, and its dist-tags — all or nothing.
    pub async fn publish(&self, p: &PublishRecord<'_>, now: UnixSeconds) -> Result<(), PublishError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO packages (name, policy, created_at, modified_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(p.package)
            .bind(p.default_policy)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let maintainers: Vec<(String,)> = sqlx::query_as("SELECT user_id FROM package_maintainers WHERE package = $1")
                .bind(p.package)
                .fetch_all(&mut *tx)
                .await?;
            if maintainers.is_empty() {
                sqlx::query("INSERT INTO package_maintainers (package, user_id, added_at) VALUES ($1, $2, $3)")
                    .bind(p.package)
                    .bind(p.publisher_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            } else if !maintainers.iter().any(|(id,)| id == p.publisher_id) {
                return Err(PublishError::NotMaintainer);
            }
            if let Some(approval_id) = p.approval_id {
                let used = sqlx::query(
                    "UPDATE approvals SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND approved_at IS NOT NULL \
                     AND ticket_expires_at > $1 AND package = $3 AND version = $4 AND integrity = $5 AND requested_by = $6",
                )
                .bind(now)
                .bind(approval_id)
                .bind(p.package)
                .bind(p.version)
                .bind(p.integrity)
                .bind(p.publisher_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if used != 1 {
                    return Err(PublishError::ApprovalNotUsable);
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO versions (package, version, manifest, tarball, integrity, shasum, size, published_by, \
                 published_at, approval_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(p.package)
            .bind(p.version)
            .bind(p.manifest)
            .bind(p.tarball)
            .bind(p.integrity)
            .bind(p.shasum)
            .bind(i64::try_from(p.tarball.len()).unwrap_or(i64::MAX))
            .bind(p.publisher_id)
            .bind(now)
            .bind(p.approval_id)
            .execute(&mut *tx)
            .await;
            match inserted.map_err(StoreError::from) {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => return Err(PublishError::VersionExists),
                Err(e) => return Err(e.into()),
            }
            for tag in p.tags {
                sqlx::query(
                    "INSERT INTO dist_tags (package, tag, version) VALUES ($1, $2, $3) \
                     ON CONFLICT (package, tag) DO UPDATE SET version = excluded.version",
                )
                .bind(p.package)
                .bind(tag)
                .bind(p.version)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE packages SET modified_at = $1 WHERE name = $2").bind(now).bind(p.package).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}

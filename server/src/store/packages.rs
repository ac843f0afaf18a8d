//! Packages, versions, tarballs, dist-tags and maintainers: reads, and the publish commit.
//! The other gated writes are in [`super::changes`].

use std::collections::BTreeMap;

use super::gate::{CommitError, Guard, begin_write, enforce_guard, lock_package, touch_package};
use super::stages::settle_stages;
use super::{Store, StoreError, StoreResult, dispatch};
use crate::clock::UnixSeconds;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PackageRow {
    pub name: String,
    /// The stored policy JSON (see `crate::policy`).
    pub policy: String,
    pub created_at: UnixSeconds,
    pub modified_at: UnixSeconds,
    /// Incremented by every committed change to what installers receive.
    pub revision: i64,
}

/// A published version without its tarball bytes. Unpublished versions keep their row (the
/// number is never reused and the record stays) but are not served.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VersionRow {
    pub version: String,
    pub manifest: String,
    pub integrity: String,
    pub shasum: String,
    pub size: i64,
    pub published_at: UnixSeconds,
    pub approval_id: Option<String>,
    /// The deprecation message, if deprecated.
    pub deprecated: Option<String>,
    pub unpublished_at: Option<UnixSeconds>,
    /// The abbreviated manifest installers read (NULL for versions published before it was kept).
    pub abbreviated: Option<String>,
}

macro_rules! select_versions {
    ($rest:literal) => {
        concat!(
            "SELECT version, manifest, integrity, shasum, size, published_at, approval_id, deprecated, \
             unpublished_at, abbreviated FROM versions ",
            $rest
        )
    };
}

/// Everything a publish writes, in one transaction.
#[derive(Debug, Clone)]
pub struct PublishRecord<'a> {
    pub package: &'a str,
    pub version: &'a str,
    pub manifest: &'a str,
    /// The abbreviated manifest, stored beside the full one.
    pub abbreviated: &'a str,
    pub tarball: &'a [u8],
    pub integrity: &'a str,
    pub shasum: &'a str,
    /// The publisher, the policy evaluated (stored as the package's policy if this publish
    /// creates it) and the evidence.
    pub guard: Guard<'a>,
    /// Dist-tags to point at this version.
    pub tags: &'a [String],
    /// The staged release this publish approves, marked published in the same transaction.
    pub stage: Option<&'a str>,
}

impl Store {
    pub async fn package(&self, name: &str) -> StoreResult<Option<PackageRow>> {
        let sql = "SELECT name, policy, created_at, modified_at, revision FROM packages WHERE name = $1";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, PackageRow>(sql).bind(name).fetch_optional(pool).await?))
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

    /// Every version ever published, unpublished ones included, oldest first.
    pub async fn versions(&self, package: &str) -> StoreResult<Vec<VersionRow>> {
        let sql = select_versions!("WHERE package = $1 ORDER BY published_at, version");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, VersionRow>(sql).bind(package).fetch_all(pool).await?))
    }

    /// A version's row, also when it was unpublished.
    pub async fn version(&self, package: &str, version: &str) -> StoreResult<Option<VersionRow>> {
        let sql = select_versions!("WHERE package = $1 AND version = $2");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, VersionRow>(sql).bind(package).bind(version).fetch_optional(pool).await?))
    }

    /// The tarball of a version that is served (not unpublished).
    pub async fn tarball(&self, package: &str, version: &str) -> StoreResult<Option<Vec<u8>>> {
        let sql = "SELECT t.bytes FROM tarballs t JOIN versions v ON v.package = t.package AND v.version = t.version \
                   WHERE t.package = $1 AND t.version = $2 AND v.unpublished_at IS NULL";
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, (Vec<u8>,)>(sql).bind(package).bind(version).fetch_optional(pool).await?
        });
        Ok(row.map(|(t,)| t))
    }

    /// The versions served (not unpublished), in no particular order.
    pub async fn served_versions(&self, package: &str) -> StoreResult<Vec<String>> {
        let sql = "SELECT version FROM versions WHERE package = $1 AND unpublished_at IS NULL";
        let rows =
            dispatch!(self, pool => sqlx::query_as::<_, (String,)>(sql).bind(package).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    pub async fn dist_tags(&self, package: &str) -> StoreResult<BTreeMap<String, String>> {
        let sql = "SELECT tag, version FROM dist_tags WHERE package = $1";
        let rows = dispatch!(self, pool => sqlx::query_as::<_, (String, String)>(sql).bind(package).fetch_all(pool).await?);
        Ok(rows.into_iter().collect())
    }

    /// Commits a version: package (if new, with the evaluated policy), first maintainer (if
    /// new), the evidence's consumption, the version with its tarball, and its dist-tags — all
    /// or nothing. A package that exists without maintainers is reserved: nobody claims it by
    /// publishing.
    pub async fn publish(&self, p: &PublishRecord<'_>) -> Result<(), CommitError> {
        let g = &p.guard;
        let policy = g.package.map(|pkg| pkg.policy).unwrap_or_default();
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, g);
            // Creating the package and claiming it are one statement's outcome: of two first
            // publishes racing, one creates it and becomes its maintainer, the other then finds
            // it maintained by someone else.
            let created = sqlx::query(
                "INSERT INTO packages (name, policy, created_at, modified_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(p.package)
            .bind(policy)
            .bind(g.now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // The row exists now (ours or another's, committed): lock it and compare its policy
            // with the one the gate evaluated, which the guard could not do for a new name.
            let (stored,): (String,) =
                sqlx::query_as(lock_package(pool)).bind(p.package).fetch_one(&mut *tx).await?;
            if stored != policy {
                return Err(CommitError::PolicyChanged);
            }
            if created == 1 {
                // A name served from the upstream is not claimed by a first publish (the gate
                // refused it; this holds when the proxy served it meanwhile).
                let proxied: Option<(String,)> = sqlx::query_as("SELECT name FROM upstream_names WHERE name = $1")
                    .bind(p.package)
                    .fetch_optional(&mut *tx)
                    .await?;
                if proxied.is_some() {
                    return Err(CommitError::Stale(crate::upstream::claim_refusal(p.package)));
                }
                sqlx::query("INSERT INTO package_maintainers (package, user_id, added_at) VALUES ($1, $2, $3)")
                    .bind(p.package)
                    .bind(g.actor)
                    .bind(g.now)
                    .execute(&mut *tx)
                    .await?;
            } else {
                let maintainer: Option<(String,)> =
                    sqlx::query_as("SELECT user_id FROM package_maintainers WHERE package = $1 AND user_id = $2")
                        .bind(p.package)
                        .bind(g.actor)
                        .fetch_optional(&mut *tx)
                        .await?;
                if maintainer.is_none() {
                    return Err(CommitError::NotMaintainer);
                }
            }
            crate::failpoint!("publish.package_claimed");
            let inserted = sqlx::query(
                "INSERT INTO versions (package, version, manifest, integrity, shasum, size, published_by, \
                 published_at, approval_id, abbreviated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(p.package)
            .bind(p.version)
            .bind(p.manifest)
            .bind(p.integrity)
            .bind(p.shasum)
            .bind(i64::try_from(p.tarball.len()).unwrap_or(i64::MAX))
            .bind(g.actor)
            .bind(g.now)
            .bind(g.tap.map(|t| t.approval_id))
            .bind(p.abbreviated)
            .execute(&mut *tx)
            .await;
            match inserted.map_err(StoreError::from) {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => return Err(CommitError::VersionExists),
                Err(e) => return Err(e.into()),
            }
            crate::failpoint!("publish.version_inserted");
            sqlx::query("INSERT INTO tarballs (package, version, bytes) VALUES ($1, $2, $3)")
                .bind(p.package)
                .bind(p.version)
                .bind(p.tarball)
                .execute(&mut *tx)
                .await?;
            crate::failpoint!("publish.tarball_inserted");
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
            crate::failpoint!("publish.tags_set");
            settle_stages!(tx, p.stage, p.package, p.version, g.actor, g.now);
            touch_package!(tx, p.package, g.now);
            tx.commit().await?;
            crate::failpoint!("publish.committed");
            Ok(())
        })
    }
}

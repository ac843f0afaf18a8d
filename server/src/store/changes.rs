//! The gated writes other than publish: dist-tags, deprecation, unpublish, maintainers and
//! policy. Each runs its [`Guard`] inside its own transaction and checks that the change still
//! applies to what is stored (the tag still points where the intent said, the version is still
//! served…), so an approval of one state of the package is never applied to another.

use super::gate::{CommitError, Guard, begin_write, enforce_guard, touch_package};
use super::{Store, dispatch};

/// What unpublishing one version did to the dist-tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpublished {
    /// Tags removed because they pointed at the version.
    pub removed_tags: Vec<String>,
    /// Where `latest` points now, if it pointed at the version and another version remains.
    pub latest: Option<String>,
}

fn stale(message: impl Into<String>) -> CommitError {
    CommitError::Stale(message.into())
}

impl Store {
    /// Points `tag` at `version`, if the tag still points at `previous` (None: no such tag).
    pub async fn set_dist_tag(
        &self,
        package: &str,
        tag: &str,
        version: &str,
        previous: Option<&str>,
        guard: &Guard<'_>,
    ) -> Result<(), CommitError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            let served: Option<(String,)> = sqlx::query_as(
                "SELECT version FROM versions WHERE package = $1 AND version = $2 AND unpublished_at IS NULL",
            )
            .bind(package)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
            if served.is_none() {
                return Err(stale(format!("{package}@{version} is not published, so no tag can point at it")));
            }
            let current: Option<(String,)> = sqlx::query_as("SELECT version FROM dist_tags WHERE package = $1 AND tag = $2")
                .bind(package)
                .bind(tag)
                .fetch_optional(&mut *tx)
                .await?;
            if current.as_ref().map(|(v,)| v.as_str()) != previous {
                return Err(stale(format!("the tag {tag} of {package} moved while the change waited: run it again")));
            }
            sqlx::query(
                "INSERT INTO dist_tags (package, tag, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (package, tag) DO UPDATE SET version = excluded.version",
            )
            .bind(package)
            .bind(tag)
            .bind(version)
            .execute(&mut *tx)
            .await?;
            crate::failpoint!("dist_tag.set");
            touch_package!(tx, package, guard.now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes `tag` if it still points at `version`.
    pub async fn remove_dist_tag(
        &self,
        package: &str,
        tag: &str,
        version: &str,
        guard: &Guard<'_>,
    ) -> Result<(), CommitError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            let n = sqlx::query("DELETE FROM dist_tags WHERE package = $1 AND tag = $2 AND version = $3")
                .bind(package)
                .bind(tag)
                .bind(version)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(stale(format!("the tag {tag} of {package} moved while the change waited: run it again")));
            }
            touch_package!(tx, package, guard.now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Sets each version's deprecation message (an empty one lifts it).
    pub async fn deprecate(
        &self,
        package: &str,
        messages: &[(String, String)],
        guard: &Guard<'_>,
    ) -> Result<(), CommitError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            for (version, message) in messages {
                let message = (!message.is_empty()).then_some(message.as_str());
                let n = sqlx::query(
                    "UPDATE versions SET deprecated = $1 WHERE package = $2 AND version = $3 AND unpublished_at IS NULL",
                )
                .bind(message)
                .bind(package)
                .bind(version)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    return Err(stale(format!("{package}@{version} is no longer published")));
                }
            }
            touch_package!(tx, package, guard.now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stops serving `version` (which must still be served with `integrity`): its tarball is
    /// deleted, its row stays, tags pointing at it are removed, and `latest` moves to the
    /// highest version still served (as npm picks it).
    pub async fn unpublish_version(
        &self,
        package: &str,
        version: &str,
        integrity: &str,
        guard: &Guard<'_>,
    ) -> Result<Unpublished, CommitError> {
        let approval = guard.tap.map(|t| t.approval_id);
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            let n = sqlx::query(
                "UPDATE versions SET unpublished_at = $1, unpublished_by = $2, unpublish_approval_id = $3 \
                 WHERE package = $4 AND version = $5 AND integrity = $6 AND unpublished_at IS NULL",
            )
            .bind(guard.now)
            .bind(guard.actor)
            .bind(approval)
            .bind(package)
            .bind(version)
            .bind(integrity)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(stale(format!("{package}@{version} is not published (any more)")));
            }
            crate::failpoint!("unpublish.version_marked");
            sqlx::query("DELETE FROM tarballs WHERE package = $1 AND version = $2")
                .bind(package)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            crate::failpoint!("unpublish.tarball_deleted");
            let tags: Vec<(String,)> = sqlx::query_as("SELECT tag FROM dist_tags WHERE package = $1 AND version = $2 ORDER BY tag")
                .bind(package)
                .bind(version)
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM dist_tags WHERE package = $1 AND version = $2")
                .bind(package)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            let removed_tags: Vec<String> = tags.into_iter().map(|(t,)| t).collect();
            let mut latest = None;
            if removed_tags.iter().any(|t| t == "latest") {
                let remaining: Vec<(String,)> =
                    sqlx::query_as("SELECT version FROM versions WHERE package = $1 AND unpublished_at IS NULL")
                        .bind(package)
                        .fetch_all(&mut *tx)
                        .await?;
                // The highest remaining version, as npm itself picks it when it unpublishes.
                let newest = remaining.into_iter().max_by(|(a,), (b,)| crate::names::compare_versions(a, b));
                if let Some((v,)) = newest {
                    sqlx::query("INSERT INTO dist_tags (package, tag, version) VALUES ($1, 'latest', $2)")
                        .bind(package)
                        .bind(&v)
                        .execute(&mut *tx)
                        .await?;
                    latest = Some(v);
                }
            }
            crate::failpoint!("unpublish.tags_removed");
            touch_package!(tx, package, guard.now);
            tx.commit().await?;
            crate::failpoint!("unpublish.committed");
            Ok(Unpublished { removed_tags, latest })
        })
    }

    /// Stops serving every version; `versions` must be exactly the versions still served. The
    /// package row and its maintainers stay, so nobody else can claim the name.
    pub async fn unpublish_package(
        &self,
        package: &str,
        versions: &[String],
        guard: &Guard<'_>,
    ) -> Result<(), CommitError> {
        let approval = guard.tap.map(|t| t.approval_id);
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            let served: Vec<(String,)> = sqlx::query_as(
                "SELECT version FROM versions WHERE package = $1 AND unpublished_at IS NULL ORDER BY version",
            )
            .bind(package)
            .fetch_all(&mut *tx)
            .await?;
            let mut served: Vec<String> = served.into_iter().map(|(v,)| v).collect();
            let mut wanted = versions.to_vec();
            served.sort();
            wanted.sort();
            if served != wanted || served.is_empty() {
                return Err(stale(format!("the versions of {package} changed while the change waited: run it again")));
            }
            sqlx::query(
                "UPDATE versions SET unpublished_at = $1, unpublished_by = $2, unpublish_approval_id = $3 \
                 WHERE package = $4 AND unpublished_at IS NULL",
            )
            .bind(guard.now)
            .bind(guard.actor)
            .bind(approval)
            .bind(package)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM tarballs WHERE package = $1").bind(package).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM dist_tags WHERE package = $1").bind(package).execute(&mut *tx).await?;
            touch_package!(tx, package, guard.now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Makes `user_id` a maintainer; false if they already were one.
    pub async fn add_maintainer(
        &self,
        package: &str,
        user_id: &str,
        guard: &Guard<'_>,
    ) -> Result<bool, CommitError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            let n = sqlx::query(
                "INSERT INTO package_maintainers (package, user_id, added_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (package, user_id) DO NOTHING",
            )
            .bind(package)
            .bind(user_id)
            .bind(guard.now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            crate::failpoint!("maintainer_add.inserted");
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Removes a maintainer unless they are the last one; false if they were not one.
    pub async fn remove_maintainer(
        &self,
        package: &str,
        user_id: &str,
        guard: &Guard<'_>,
    ) -> Result<bool, CommitError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            let n = sqlx::query("DELETE FROM package_maintainers WHERE package = $1 AND user_id = $2")
                .bind(package)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            crate::failpoint!("maintainer_remove.deleted");
            let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM package_maintainers WHERE package = $1")
                .bind(package)
                .fetch_one(&mut *tx)
                .await?;
            if n == 1 && left == 0 {
                return Err(stale("a package keeps at least one maintainer: add another first"));
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Replaces the package's policy (the guard checks the old one), creating the package —
    /// reserving the name — if it does not exist yet.
    pub async fn set_policy(
        &self,
        package: &str,
        policy: &str,
        guard: &Guard<'_>,
    ) -> Result<(), CommitError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            sqlx::query(
                "INSERT INTO packages (name, policy, created_at, modified_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, modified_at = excluded.modified_at",
            )
            .bind(package)
            .bind(policy)
            .bind(guard.now)
            .execute(&mut *tx)
            .await?;
            crate::failpoint!("policy.stored");
            tx.commit().await?;
            Ok(())
        })
    }
}

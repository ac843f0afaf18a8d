//! What the upstream proxy keeps: which names it served (so none is claimed here afterwards) and
//! the tarballs it checked, bounded in total size. Whether a name is local is decided here too.

use super::gate::begin_write;
use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// A cached upstream tarball.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CachedTarball {
    pub integrity: String,
    pub bytes: Vec<u8>,
}

impl Store {
    /// Whether `name` belongs to this registry: a package row exists (published, reserved, or
    /// with every version unpublished), or it is in a scope an administrator gave someone, or in
    /// the scope of an existing user (`@alice/…`). Such names are never read from the upstream.
    pub async fn is_local_name(&self, name: &str) -> StoreResult<bool> {
        let scope = crate::gate::roles::scope_of(name).unwrap_or("");
        let user = scope.strip_prefix('@').unwrap_or("");
        let sql = "SELECT 1 FROM packages WHERE name = $1 \
                   UNION ALL SELECT 1 FROM scope_owners WHERE scope = $2 \
                   UNION ALL SELECT 1 FROM users WHERE name = $3 LIMIT 1";
        let found = dispatch!(self, pool => {
            sqlx::query_as::<_, (i32,)>(sql).bind(name).bind(scope).bind(user).fetch_optional(pool).await?
        });
        Ok(found.is_some())
    }

    /// Whether `name` was ever served from the upstream.
    pub async fn upstream_name_served(&self, name: &str) -> StoreResult<bool> {
        let sql = "SELECT name FROM upstream_names WHERE name = $1";
        let found = dispatch!(self, pool => sqlx::query_as::<_, (String,)>(sql).bind(name).fetch_optional(pool).await?);
        Ok(found.is_some())
    }

    /// Records that `name` was served from the upstream (once; later calls change nothing).
    pub async fn record_upstream_name(&self, name: &str, now: UnixSeconds) -> StoreResult<()> {
        let sql = "INSERT INTO upstream_names (name, first_served_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        dispatch!(self, pool => {
            sqlx::query(sql).bind(name).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// A cached upstream tarball.
    pub async fn upstream_tarball(&self, package: &str, version: &str) -> StoreResult<Option<CachedTarball>> {
        let sql = "SELECT integrity, bytes FROM upstream_tarballs WHERE package = $1 AND version = $2";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, CachedTarball>(sql).bind(package).bind(version).fetch_optional(pool).await?))
    }

    /// Caches a checked upstream tarball, evicting the oldest ones first so that the cache stays
    /// within `max_total_bytes`. A tarball larger than the whole cache is not kept.
    pub async fn cache_upstream_tarball(
        &self,
        package: &str,
        version: &str,
        integrity: &str,
        bytes: &[u8],
        now: UnixSeconds,
        max_total_bytes: i64,
    ) -> StoreResult<bool> {
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        if size > max_total_bytes {
            return Ok(false);
        }
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            // On PostgreSQL concurrent inserts serialize on this lock, so the bound holds for
            // several instances too; on SQLite `BEGIN IMMEDIATE` does the same.
            if matches!(self.backend(), super::Backend::Postgres) {
                sqlx::query("LOCK TABLE upstream_tarballs IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
            }
            let (mut total,): (i64,) = sqlx::query_as("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM upstream_tarballs")
                .fetch_one(&mut *tx)
                .await?;
            while total + size > max_total_bytes {
                let oldest: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT package, version, size FROM upstream_tarballs ORDER BY fetched_at, package, version LIMIT 1",
                )
                .fetch_optional(&mut *tx)
                .await?;
                let Some((p, v, s)) = oldest else { break };
                sqlx::query("DELETE FROM upstream_tarballs WHERE package = $1 AND version = $2")
                    .bind(&p)
                    .bind(&v)
                    .execute(&mut *tx)
                    .await?;
                total -= s;
            }
            sqlx::query(
                "INSERT INTO upstream_tarballs (package, version, integrity, size, bytes, fetched_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (package, version) DO NOTHING",
            )
            .bind(package)
            .bind(version)
            .bind(integrity)
            .bind(size)
            .bind(bytes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// The total size of the cached upstream tarballs, in bytes.
    pub async fn upstream_cache_bytes(&self) -> StoreResult<i64> {
        let sql = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM upstream_tarballs";
        let (total,) = dispatch!(self, pool => sqlx::query_as::<_, (i64,)>(sql).fetch_one(pool).await?);
        Ok(total)
    }
}

//! Who may claim a name: reserved packages (created by the operator before their first publish,
//! with a policy and first maintainers) and scopes given to users.
//!
//! These are the operator's own acts on the database (`tapgate-server package reserve`,
//! `tapgate-server scope add`): whoever runs them already holds the database.

use super::gate::{begin_write, lock_package};
use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

impl Store {
    /// Reserves `package` with `policy` and makes `owners` (user ids) its maintainers. An
    /// existing package keeps its versions; the owners are added to its maintainers and its
    /// policy is replaced.
    pub async fn reserve_package(
        &self,
        package: &str,
        policy: &str,
        owners: &[String],
        now: UnixSeconds,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let _ = sqlx::query(lock_package(pool)).bind(package).fetch_optional(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO packages (name, policy, created_at, modified_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, modified_at = excluded.modified_at",
            )
            .bind(package)
            .bind(policy)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for owner in owners {
                sqlx::query(
                    "INSERT INTO package_maintainers (package, user_id, added_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (package, user_id) DO NOTHING",
                )
                .bind(package)
                .bind(owner)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Gives `scope` (e.g. `@acme`) to a user.
    pub async fn add_scope_owner(&self, scope: &str, user_id: &str, now: UnixSeconds) -> StoreResult<bool> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO scope_owners (scope, user_id, added_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope, user_id) DO NOTHING",
            )
            .bind(scope)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Takes `scope` from a user; false if they did not own it.
    pub async fn remove_scope_owner(&self, scope: &str, user_id: &str) -> StoreResult<bool> {
        let n = dispatch!(self, pool => {
            sqlx::query("DELETE FROM scope_owners WHERE scope = $1 AND user_id = $2")
                .bind(scope)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// The usernames that own `scope` through an administrator's grant.
    pub async fn scope_owners(&self, scope: &str) -> StoreResult<Vec<String>> {
        let sql = "SELECT u.name FROM scope_owners s JOIN users u ON u.id = s.user_id WHERE s.scope = $1 ORDER BY u.name";
        let rows =
            dispatch!(self, pool => sqlx::query_as::<_, (String,)>(sql).bind(scope).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// Every scope grant as (scope, username).
    pub async fn all_scope_owners(&self) -> StoreResult<Vec<(String, String)>> {
        let sql = "SELECT s.scope, u.name FROM scope_owners s JOIN users u ON u.id = s.user_id ORDER BY s.scope, u.name";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, (String, String)>(sql).fetch_all(pool).await?))
    }
}

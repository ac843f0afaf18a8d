//! The security event log: counter regressions, lockouts, refused approvals.

use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecurityEvent {
    pub id: i64,
    pub at: UnixSeconds,
    pub kind: String,
    pub user_id: Option<String>,
    pub package: Option<String>,
    pub detail: String,
}

impl Store {
    pub async fn record_event(
        &self,
        at: UnixSeconds,
        kind: &str,
        user_id: Option<&str>,
        package: Option<&str>,
        detail: &str,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO security_events (at, kind, user_id, package, detail) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(at)
            .bind(kind)
            .bind(user_id)
            .bind(package)
            .bind(detail)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The most recent events, newest first.
    pub async fn recent_events(&self, limit: i64) -> StoreResult<Vec<SecurityEvent>> {
        let sql =
            "SELECT id, at, kind, user_id, package, detail FROM security_events ORDER BY id DESC LIMIT $1";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, SecurityEvent>(sql).bind(limit).fetch_all(pool).await?))
    }
}

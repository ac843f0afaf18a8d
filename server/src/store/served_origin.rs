//! The public origin the server last started with: admin commands print links for it, so an
//! invite works at the address the server really answers on.

use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

impl Store {
    /// Records `origin` as the one the server serves, from `now`.
    pub async fn record_served_origin(&self, origin: &str, now: UnixSeconds) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO served_origin (id, origin, started_at) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET origin = excluded.origin, started_at = excluded.started_at",
            )
            .bind(origin)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The origin the server last started with, and when; `None` before its first start.
    pub async fn served_origin(&self) -> StoreResult<Option<(String, UnixSeconds)>> {
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, (String, i64)>("SELECT origin, started_at FROM served_origin WHERE id = 1")
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }
}

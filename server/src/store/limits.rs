//! Rate-limit counters, shared by every instance on the database: one row per rule (`bucket`),
//! subject and fixed window. Counting is one atomic upsert, so two instances (or two requests)
//! never lose each other's hits.

use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// One counter: a rule's bucket, whom it counts, and the window it counts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub bucket: &'static str,
    pub subject: String,
    pub window_start: UnixSeconds,
}

impl Store {
    /// Adds one to `counter` (creating it) and returns its new count. The row is kept until
    /// `expires_at`, when the purge deletes it.
    pub async fn count_hit(&self, counter: &Counter, expires_at: UnixSeconds) -> StoreResult<i64> {
        let sql = "INSERT INTO rate_limits (bucket, subject, window_start, count, expires_at) \
                   VALUES ($1, $2, $3, 1, $4) \
                   ON CONFLICT (bucket, subject, window_start) DO UPDATE SET count = rate_limits.count + 1 \
                   RETURNING count";
        let (count,) = dispatch!(self, pool => {
            sqlx::query_as::<_, (i64,)>(sql)
                .bind(counter.bucket)
                .bind(&counter.subject)
                .bind(counter.window_start)
                .bind(expires_at)
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }

    /// Takes back one hit from `counter` (an attempt that turned out to count for nothing).
    pub async fn refund_hit(&self, counter: &Counter) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "UPDATE rate_limits SET count = count - 1 \
                 WHERE bucket = $1 AND subject = $2 AND window_start = $3 AND count > 0",
            )
            .bind(counter.bucket)
            .bind(&counter.subject)
            .bind(counter.window_start)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

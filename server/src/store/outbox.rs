//! The outbox: events and their deliveries. Any instance's worker claims due deliveries — on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED`, on SQLite inside a `BEGIN IMMEDIATE` transaction —
//! and holds each for a lease (its `next_attempt_at` moves past the lease), so two instances
//! never attempt one delivery at the same time; a delivery is marked done once, when it
//! succeeded.

use sqlx::{PgPool, SqlitePool};

use super::effects::{Notice, enqueue_notice};
use super::gate::begin_write;
use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

trait ClaimDue {
    const DUE: &'static str;
}

const DUE_WHERE: &str = "SELECT id FROM outbox_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL \
                         AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2";

impl ClaimDue for SqlitePool {
    const DUE: &'static str = DUE_WHERE;
}

impl ClaimDue for PgPool {
    const DUE: &'static str = "SELECT id FROM outbox_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL \
                               AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED";
}

fn due<P: ClaimDue>(_: &P) -> &'static str {
    P::DUE
}

/// A delivery claimed for an attempt, with its event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub event_id: i64,
    pub channel: String,
    pub target: String,
    pub ref_id: Option<String>,
    /// Attempts including this one.
    pub attempts: i32,
    pub kind: String,
    pub package: Option<String>,
    pub payload: String,
    pub created_at: UnixSeconds,
    /// The webhook's signing secret (webhooks only).
    pub secret: Option<String>,
}

/// A delivery as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: i64,
    pub kind: String,
    pub package: Option<String>,
    pub channel: String,
    pub target: String,
    pub attempts: i32,
    pub next_attempt_at: UnixSeconds,
    pub delivered_at: Option<UnixSeconds>,
    pub failed_at: Option<UnixSeconds>,
    pub last_error: Option<String>,
    pub created_at: UnixSeconds,
}

impl Store {
    /// Enqueues `notice` on its own (when nothing else commits with it).
    pub async fn enqueue(&self, notice: &Notice, now: UnixSeconds) -> StoreResult<i64> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let id = enqueue_notice!(tx, notice, now);
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Enqueues an email to one address (e.g. a verification link), whoever it belongs to.
    pub async fn enqueue_email(
        &self,
        kind: &str,
        account: &str,
        address: &str,
        payload: &str,
        now: UnixSeconds,
    ) -> StoreResult<i64> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let (event_id,): (i64,) = sqlx::query_as(
                "INSERT INTO outbox_events (kind, package, account, payload, created_at) VALUES ($1, NULL, $2, $3, $4) RETURNING id",
            )
            .bind(kind)
            .bind(account)
            .bind(payload)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO outbox_deliveries (event_id, channel, target, ref_id, next_attempt_at) VALUES ($1, 'email', $2, $3, $4)",
            )
            .bind(event_id)
            .bind(address)
            .bind(account)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(event_id)
        })
    }

    /// Claims up to `limit` due deliveries until `now + lease_seconds`, counting the attempt.
    pub async fn claim_deliveries(
        &self,
        now: UnixSeconds,
        lease_seconds: i64,
        limit: i64,
    ) -> StoreResult<Vec<Claimed>> {
        dispatch!(self, pool => {
            // A plain read first: most polls find nothing, and need no write transaction (on
            // SQLite, the database's one writer).
            let any: Option<(i64,)> = sqlx::query_as(DUE_WHERE).bind(now).bind(1_i64).fetch_optional(pool).await?;
            if any.is_none() {
                return Ok(Vec::new());
            }
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let ids: Vec<(i64,)> = sqlx::query_as(due(pool)).bind(now).bind(limit).fetch_all(&mut *tx).await?;
            let mut claimed = Vec::with_capacity(ids.len());
            for (id,) in ids {
                sqlx::query("UPDATE outbox_deliveries SET next_attempt_at = $1, attempts = attempts + 1 WHERE id = $2")
                    .bind(now + lease_seconds)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                crate::failpoint!("outbox.claimed");
                let row: Claimed = sqlx::query_as(
                    "SELECT d.id, d.event_id, d.channel, d.target, d.ref_id, d.attempts, e.kind, e.package, e.payload, \
                     e.created_at, w.secret FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id \
                     LEFT JOIN package_webhooks w ON d.channel = 'webhook' AND w.id = d.ref_id WHERE d.id = $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                claimed.push(row);
            }
            tx.commit().await?;
            Ok(claimed)
        })
    }

    /// Records a delivery's success.
    pub async fn delivered(&self, id: i64, now: UnixSeconds) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query("UPDATE outbox_deliveries SET delivered_at = $1, last_error = NULL WHERE id = $2 AND delivered_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or given up when `None`.
    pub async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<UnixSeconds>,
        now: UnixSeconds,
    ) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "UPDATE outbox_deliveries SET last_error = $1, next_attempt_at = COALESCE($2, next_attempt_at), \
                 failed_at = CASE WHEN $2 IS NULL THEN $3 ELSE NULL END WHERE id = $4 AND delivered_at IS NULL",
            )
            .bind(error)
            .bind(retry_at)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Deliveries, newest first: every one, or only those not delivered.
    pub async fn deliveries(&self, undelivered_only: bool, limit: i64) -> StoreResult<Vec<DeliveryRow>> {
        let sql = "SELECT d.id, d.event_id, e.kind, e.package, d.channel, d.target, d.attempts, d.next_attempt_at, \
                   d.delivered_at, d.failed_at, d.last_error, e.created_at FROM outbox_deliveries d \
                   JOIN outbox_events e ON e.id = d.event_id WHERE (NOT $1 OR d.delivered_at IS NULL) \
                   ORDER BY d.id DESC LIMIT $2";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, DeliveryRow>(sql).bind(undelivered_only).bind(limit).fetch_all(pool).await?))
    }

    /// Makes undelivered deliveries due now (one, or every one), also those given up; returns how
    /// many.
    pub async fn retry_deliveries(&self, id: Option<i64>, now: UnixSeconds) -> StoreResult<u64> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "UPDATE outbox_deliveries SET next_attempt_at = $1, failed_at = NULL, attempts = 0 \
                 WHERE delivered_at IS NULL AND ($2 IS NULL OR id = $2)",
            )
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// Deletes events older than `before` whose deliveries all arrived; answers how many.
    pub async fn purge_delivered(&self, before: UnixSeconds) -> StoreResult<u64> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "DELETE FROM outbox_events WHERE created_at < $1 AND NOT EXISTS \
                 (SELECT 1 FROM outbox_deliveries d WHERE d.event_id = outbox_events.id AND d.delivered_at IS NULL)",
            )
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// Every event of a package (for tests and the operator), oldest first.
    pub async fn outbox_events(&self, package: &str) -> StoreResult<Vec<(i64, String, String)>> {
        let sql = "SELECT id, kind, payload FROM outbox_events WHERE package = $1 ORDER BY id";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, (i64, String, String)>(sql).bind(package).fetch_all(pool).await?))
    }
}

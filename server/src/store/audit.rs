//! The audit log's storage: entries appended inside the transaction of what they record, each
//! chain's head locked while it is extended (PostgreSQL `FOR UPDATE`; SQLite's write transaction
//! is exclusive), and the heads the server signed. Nothing here updates or deletes an entry.

use sqlx::{PgPool, SqlitePool};
use tapgate_shared::audit::GENESIS;

use super::{Store, StoreResult, dispatch};
use crate::clock::{UnixSeconds, rfc3339};

/// An entry to append: its chain, kind and body (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    pub chain: String,
    pub kind: String,
    pub body: serde_json::Value,
}

pub(crate) trait LockHead {
    const LOCK_HEAD: &'static str;
}

impl LockHead for SqlitePool {
    const LOCK_HEAD: &'static str = "SELECT seq, hash FROM audit_heads WHERE chain = $1";
}

impl LockHead for PgPool {
    const LOCK_HEAD: &'static str = "SELECT seq, hash FROM audit_heads WHERE chain = $1 FOR UPDATE";
}

pub(crate) fn lock_head<P: LockHead>(_: &P) -> &'static str {
    P::LOCK_HEAD
}

/// The entry's text: sorted keys, no spaces (serde_json's map is ordered).
pub fn entry_text(draft: &AuditDraft, seq: i64, at: UnixSeconds) -> String {
    serde_json::json!({
        "v": 1,
        "chain": draft.chain,
        "seq": seq,
        "at": rfc3339(at),
        "kind": draft.kind,
        "body": draft.body,
    })
    .to_string()
}

/// Appends `$draft` (an [`AuditDraft`]) to its chain inside `$tx` on `$pool`, at `$now`.
macro_rules! append_audit {
    ($pool:expr, $tx:expr, $draft:expr, $now:expr) => {{
        let draft: &$crate::store::audit::AuditDraft = $draft;
        let now: i64 = $now;
        sqlx::query("INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (chain) DO NOTHING")
            .bind(&draft.chain)
            .bind(tapgate_shared::audit::GENESIS)
            .execute(&mut *$tx)
            .await?;
        let (seq, prev): (i64, String) = sqlx::query_as($crate::store::audit::lock_head($pool))
            .bind(&draft.chain)
            .fetch_one(&mut *$tx)
            .await?;
        $crate::failpoint!("audit.head_locked");
        let seq = seq + 1;
        let entry = $crate::store::audit::entry_text(draft, seq, now);
        let hash = tapgate_shared::audit::entry_hash(&prev, &entry);
        sqlx::query(
            "INSERT INTO audit_log (chain, seq, at, kind, entry, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&draft.chain)
        .bind(seq)
        .bind(now)
        .bind(&draft.kind)
        .bind(&entry)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *$tx)
        .await?;
        $crate::failpoint!("audit.entry_appended");
        sqlx::query("UPDATE audit_heads SET seq = $1, hash = $2 WHERE chain = $3")
            .bind(seq)
            .bind(&hash)
            .bind(&draft.chain)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use append_audit;

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: UnixSeconds,
    pub kind: String,
    pub entry: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A signed head as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SignedHeadRow {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
    pub signed_at: UnixSeconds,
    pub key_id: String,
    pub signature: String,
}

impl Store {
    /// Appends entries on their own (what they record commits nothing else).
    pub async fn append_audit(&self, drafts: &[AuditDraft], now: UnixSeconds) -> StoreResult<()> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(super::gate::begin_write(pool)).await?;
            for draft in drafts {
                append_audit!(pool, tx, draft, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Entries of `chain` after `after`, oldest first, at most `limit`.
    pub async fn audit_entries(&self, chain: &str, after: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let sql = "SELECT seq, at, kind, entry, prev_hash, hash FROM audit_log WHERE chain = $1 AND seq > $2 \
                   ORDER BY seq LIMIT $3";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, AuditRow>(sql).bind(chain).bind(after).bind(limit).fetch_all(pool).await?))
    }

    /// The chain's head (length, last hash).
    pub async fn audit_head(&self, chain: &str) -> StoreResult<(i64, String)> {
        let sql = "SELECT seq, hash FROM audit_heads WHERE chain = $1";
        let row = dispatch!(self, pool => sqlx::query_as::<_, (i64, String)>(sql).bind(chain).fetch_optional(pool).await?);
        Ok(row.unwrap_or((0, GENESIS.to_string())))
    }

    /// Heads extended since they were last signed.
    pub async fn unsigned_heads(&self) -> StoreResult<Vec<(String, i64, String)>> {
        let sql = "SELECT h.chain, h.seq, h.hash FROM audit_heads h WHERE h.seq > 0 AND h.seq > \
                   COALESCE((SELECT MAX(s.seq) FROM audit_signed_heads s WHERE s.chain = h.chain), 0) ORDER BY h.chain";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, (String, i64, String)>(sql).fetch_all(pool).await?))
    }

    /// Records a signed head (once: another instance may have signed the same one).
    pub async fn add_signed_head(&self, head: &SignedHeadRow) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO audit_signed_heads (chain, seq, hash, signed_at, key_id, signature) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chain, seq) DO NOTHING",
            )
            .bind(&head.chain)
            .bind(head.seq)
            .bind(&head.hash)
            .bind(head.signed_at)
            .bind(&head.key_id)
            .bind(&head.signature)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The latest signed head of `chain`.
    pub async fn latest_signed_head(&self, chain: &str) -> StoreResult<Option<SignedHeadRow>> {
        let sql = "SELECT chain, seq, hash, signed_at, key_id, signature FROM audit_signed_heads WHERE chain = $1 \
                   ORDER BY seq DESC LIMIT 1";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, SignedHeadRow>(sql).bind(chain).fetch_optional(pool).await?))
    }
}

//! The stored state a gated write may change, read straight from the database: what refusal
//! tests compare before and after ("nothing changed"), and what the crash test compares across
//! a crash ("absent" or "whole").

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Connection;
use tapgate_tests::db::{Backend, TestDb};

use crate::support::TestApp;

/// One line per row of each table that records what installers receive, who may change it, and
/// the evidence and effects of changes. Columns that move on reads or in the background (token
/// use times, delivery attempts) are left out.
const TABLES: &[(&str, &str)] = &[
    ("packages", "SELECT name || ' ' || policy FROM packages"),
    (
        "versions",
        "SELECT package || '@' || version || ' ' || integrity || ' ' || COALESCE(CAST(unpublished_at AS TEXT), 'served') \
         || ' ' || COALESCE(deprecated, '-') FROM versions",
    ),
    ("tarballs", "SELECT package || '@' || version FROM tarballs"),
    ("dist_tags", "SELECT package || ' ' || tag || ' ' || version FROM dist_tags"),
    ("package_maintainers", "SELECT package || ' ' || user_id FROM package_maintainers"),
    (
        "approvals",
        "SELECT id || ' approved=' || COALESCE(CAST(approved_at AS TEXT), '-') || ' used=' \
         || COALESCE(CAST(used_at AS TEXT), '-') || ' rejected=' || COALESCE(CAST(rejected_at AS TEXT), '-') FROM approvals",
    ),
    ("approval_signatures", "SELECT approval_id || ' ' || key_id FROM approval_signatures"),
    ("ci_credentials", "SELECT id || ' ' || COALESCE(CAST(revoked_at AS TEXT), 'live') FROM ci_credentials"),
    ("deploy_keys", "SELECT hash || ' ' || COALESCE(CAST(spent_at AS TEXT), 'unspent') FROM deploy_keys"),
    ("audit_log", "SELECT chain || ' ' || CAST(seq AS TEXT) || ' ' || kind || ' ' || hash FROM audit_log"),
    ("audit_heads", "SELECT chain || ' ' || CAST(seq AS TEXT) || ' ' || hash FROM audit_heads"),
    ("outbox_events", "SELECT CAST(id AS TEXT) || ' ' || kind FROM outbox_events"),
    (
        "outbox_deliveries",
        "SELECT CAST(id AS TEXT) || ' ' || channel || ' ' || target FROM outbox_deliveries",
    ),
    ("package_locks", "SELECT package || ' ' || lock_id FROM package_locks WHERE lock_id IS NOT NULL"),
    ("stages", "SELECT id || ' ' || state FROM stages"),
    ("stage_tarballs", "SELECT stage_id FROM stage_tarballs"),
    (
        "security_keys",
        "SELECT id || ' ' || user_id || ' ' || COALESCE(CAST(suspended_at AS TEXT), 'ok') FROM security_keys",
    ),
    (
        "users",
        "SELECT id || ' ' || name || ' ' || CASE WHEN disabled THEN 'disabled' ELSE 'enabled' END \
         || CASE WHEN admin THEN ' admin' ELSE '' END FROM users",
    ),
    (
        "invites",
        "SELECT token_hash || ' ' || user_id || ' ' || COALESCE(CAST(used_at AS TEXT), 'unused') FROM invites",
    ),
];

/// The rows of every table in [`TABLES`], each table's rows sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<&'static str, Vec<String>>);

macro_rules! read_all {
    ($conn:expr) => {{
        let mut tables = BTreeMap::new();
        for (table, sql) in TABLES {
            let rows: Vec<(Option<String>,)> = sqlx::query_as(*sql)
                .fetch_all(&mut $conn)
                .await
                .unwrap_or_else(|e| panic!("snapshot of {table}: {e}"));
            let mut rows: Vec<String> =
                rows.into_iter().map(|(r,)| r.unwrap_or_else(|| "NULL".into())).collect();
            rows.sort();
            tables.insert(*table, rows);
        }
        tables
    }};
}

impl Snapshot {
    pub async fn of(db: &TestDb) -> Snapshot {
        let tables = match db.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                let t = read_all!(conn);
                let _ = conn.close().await;
                t
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                let t = read_all!(conn);
                let _ = conn.close().await;
                t
            }
        };
        Snapshot(tables)
    }

    pub async fn of_app(app: &TestApp) -> Snapshot {
        Snapshot::of(app.database()).await
    }

    /// The tables whose rows differ from `before`, with (rows gone, rows new).
    pub fn changes_since(&self, before: &Snapshot) -> BTreeMap<&'static str, (Vec<String>, Vec<String>)> {
        let mut out = BTreeMap::new();
        for (table, rows) in &self.0 {
            let old: BTreeSet<&String> = before.0.get(table).map(|r| r.iter().collect()).unwrap_or_default();
            let new: BTreeSet<&String> = rows.iter().collect();
            let gone: Vec<String> = old.difference(&new).map(|s| (*s).clone()).collect();
            let added: Vec<String> = new.difference(&old).map(|s| (*s).clone()).collect();
            if !gone.is_empty() || !added.is_empty() {
                out.insert(*table, (gone, added));
            }
        }
        out
    }

    /// Asserts that nothing changed since `before`.
    #[track_caller]
    pub fn assert_unchanged_since(&self, before: &Snapshot, what: &str) {
        let changes = self.changes_since(before);
        assert!(changes.is_empty(), "{what}: the stored state changed: {changes:#?}");
    }

    /// Asserts that exactly the tables in `changed` differ from `before` (each of them does).
    #[track_caller]
    pub fn assert_changed_only(&self, before: &Snapshot, changed: &[&str], what: &str) {
        let changes = self.changes_since(before);
        let got: BTreeSet<&str> = changes.keys().copied().collect();
        let want: BTreeSet<&str> = changed.iter().copied().collect();
        assert_eq!(got, want, "{what}: tables changed: {changes:#?}");
    }

    /// Asserts that a refusal changed nothing but the record of the failed attempt: entries of
    /// kind `attempt.failed` appended to the audit log (and its head moved with them).
    #[track_caller]
    pub fn assert_refused_since(&self, before: &Snapshot, what: &str) {
        let mut changes = self.changes_since(before);
        if let Some((gone, added)) = changes.remove("audit_log") {
            assert!(gone.is_empty(), "{what}: audit entries vanished: {gone:?}");
            assert!(
                added.iter().all(|e| e.split(' ').nth(2) == Some("attempt.failed")),
                "{what}: a refusal logged more than its failed attempt: {added:?}"
            );
            changes.remove("audit_heads");
        }
        assert!(changes.is_empty(), "{what}: the stored state changed: {changes:#?}");
    }

    pub fn rows(&self, table: &str) -> &[String] {
        self.0.get(table).map(Vec::as_slice).unwrap_or_default()
    }
}

/// `refused!(app, response_future_expr, STATUS, "code")`: takes a snapshot, runs the request,
/// asserts its exact status and error code and that the stored state did not change (beyond the
/// audit record of a failed attempt); evaluates to the error message.
macro_rules! refused {
    ($app:expr, $resp:expr, $status:expr, $code:expr) => {{
        let before = $crate::state_support::Snapshot::of_app($app).await;
        let resp = $resp;
        let message = $crate::support::expect_error(resp, $status, $code).await;
        $crate::state_support::Snapshot::of_app($app).await.assert_refused_since(&before, $code);
        message
    }};
}
pub(crate) use refused;

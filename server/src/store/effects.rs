//! What a committed change leaves behind, written in its own transaction: the events to tell
//! people about ([`Notice`], the outbox) and its audit log entries. A change and its notifications commit together or not
//! at all; the worker (`crate::notify::worker`) delivers them afterwards.

/// An event for the outbox and whom it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The event's kind (`package-locked`, `change`, `key-change`, …).
    pub kind: String,
    /// What recipients subscribe to (e.g. the action, `publish`): a user's `events` setting must
    /// name it, unless it is `all` or the notice is an alert.
    pub topic: String,
    /// The package: its maintainers' verified addresses and its webhooks receive it.
    pub package: Option<String>,
    /// The account (user id): its own verified address receives it.
    pub account: Option<String>,
    /// The event as JSON.
    pub payload: String,
    /// Sent to every recipient whatever they chose (lock alerts).
    pub alert: bool,
    /// Whether email deliveries are made (SMTP is configured).
    pub email: bool,
}

/// Everything a gated commit writes besides the change itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub notice: Option<Notice>,
    /// Audit log entries, appended in order.
    pub audit: Vec<super::audit::AuditDraft>,
}

/// Inserts `$notice` (a [`Notice`]) into the outbox inside `$tx`, with one delivery per
/// recipient, all due at `$now`. Evaluates to the event id.
macro_rules! enqueue_notice {
    ($tx:expr, $notice:expr, $now:expr) => {{
        let notice: &$crate::store::effects::Notice = $notice;
        let now: i64 = $now;
        let (event_id,): (i64,) = sqlx::query_as(
            "INSERT INTO outbox_events (kind, package, account, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&notice.kind)
        .bind(&notice.package)
        .bind(&notice.account)
        .bind(&notice.payload)
        .bind(now)
        .fetch_one(&mut *$tx)
        .await?;
        $crate::failpoint!("outbox.event_inserted");
        if notice.email {
            if let Some(package) = &notice.package {
                sqlx::query(
                    "INSERT INTO outbox_deliveries (event_id, channel, target, ref_id, next_attempt_at) \
                     SELECT $1, 'email', e.address, e.user_id, $2 FROM package_maintainers m \
                     JOIN user_emails e ON e.user_id = m.user_id \
                     WHERE m.package = $3 AND e.address IS NOT NULL AND e.verified_at IS NOT NULL \
                     AND ($4 OR e.events = 'all' OR (',' || e.events || ',') LIKE ('%,' || $5 || ',%')) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(event_id)
                .bind(now)
                .bind(package)
                .bind(notice.alert)
                .bind(&notice.topic)
                .execute(&mut *$tx)
                .await?;
            }
            if let Some(account) = &notice.account {
                sqlx::query(
                    "INSERT INTO outbox_deliveries (event_id, channel, target, ref_id, next_attempt_at) \
                     SELECT $1, 'email', e.address, e.user_id, $2 FROM user_emails e \
                     WHERE e.user_id = $3 AND e.address IS NOT NULL AND e.verified_at IS NOT NULL \
                     AND ($4 OR e.events = 'all' OR (',' || e.events || ',') LIKE ('%,' || $5 || ',%')) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(event_id)
                .bind(now)
                .bind(account)
                .bind(notice.alert)
                .bind(&notice.topic)
                .execute(&mut *$tx)
                .await?;
            }
        }
        if let Some(package) = &notice.package {
            sqlx::query(
                "INSERT INTO outbox_deliveries (event_id, channel, target, ref_id, next_attempt_at) \
                 SELECT $1, 'webhook', w.url, w.id, $2 FROM package_webhooks w WHERE w.package = $3 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(event_id)
            .bind(now)
            .bind(package)
            .execute(&mut *$tx)
            .await?;
        }
        $crate::failpoint!("outbox.deliveries_queued");
        event_id
    }};
}
pub(crate) use enqueue_notice;

/// Writes a commit's [`Effects`] inside `$tx` on `$pool`.
macro_rules! write_effects {
    ($pool:expr, $tx:expr, $effects:expr, $now:expr) => {{
        let effects: Option<&$crate::store::effects::Effects> = $effects;
        if let Some(effects) = effects {
            if let Some(notice) = &effects.notice {
                let _ = $crate::store::effects::enqueue_notice!($tx, notice, $now);
            }
            for draft in &effects.audit {
                $crate::store::audit::append_audit!($pool, $tx, draft, $now);
            }
        }
    }};
}
pub(crate) use write_effects;

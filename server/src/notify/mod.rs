//! Telling maintainers what happens to their packages: lock alerts (always), and the changes,
//! key changes and approvals each user chose. Events are written to the outbox in the
//! transaction that caused them ([`crate::store::effects`]) and delivered afterwards by the
//! [`worker`], by email ([`email`], SMTP configured by the operator, to addresses verified by a
//! link) and to each package's webhooks ([`webhook`], signed JSON POSTs).
//!
//! This module knows nothing of HTTP routes.

pub mod email;
pub mod events;
pub mod operator;
pub mod settings;
pub mod webhook;
pub mod worker;

use std::time::Duration;

/// How notifications are delivered.
#[derive(Clone)]
pub struct NotifyConfig {
    /// `smtp://HOST:PORT` (plain), `smtp://…?tls=required` (STARTTLS) or `smtps://HOST` (TLS),
    /// with `USER:PASSWORD@` when the server needs them. No email without it.
    pub smtp_url: Option<String>,
    /// The `From:` address of emails.
    pub from: String,
    /// Whether webhook URLs may be plain `http://` (tests, private networks). Off: HTTPS only.
    pub allow_http_webhooks: bool,
    /// How often each instance looks for due deliveries.
    pub poll_interval: Duration,
    /// The first retry waits this long; each further one twice as long (at most 6 hours).
    pub retry_base_seconds: i64,
    /// Attempts before a delivery is given up (the operator can retry it).
    pub max_attempts: i32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "tapgate <tapgate@localhost>".into(),
            allow_http_webhooks: false,
            poll_interval: Duration::from_secs(2),
            retry_base_seconds: 30,
            max_attempts: 12,
        }
    }
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("smtp_url", &self.smtp_url.as_deref().map(crate::store::redact_url))
            .field("from", &self.from)
            .field("allow_http_webhooks", &self.allow_http_webhooks)
            .field("poll_interval", &self.poll_interval)
            .field("retry_base_seconds", &self.retry_base_seconds)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl NotifyConfig {
    /// When attempt number `attempts` failed, the next one is due this many seconds later.
    pub fn backoff_seconds(&self, attempts: i32) -> i64 {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
        self.retry_base_seconds.max(1).saturating_mul(1_i64 << doublings).min(6 * 3600)
    }
}

/// Event kinds a user may choose (lock alerts are always sent).
pub const TOPICS: &[&str] = &[
    "publish",
    "dist-tag-set",
    "dist-tag-remove",
    "deprecate",
    "unpublish",
    "unpublish-package",
    "maintainer-add",
    "maintainer-remove",
    "policy-set",
    "webhook-set",
    "unlock",
    "key-add",
    "key-remove",
    "approval-pending",
    "stage-created",
    "stage-reject",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_and_are_capped() {
        let c = NotifyConfig { retry_base_seconds: 30, ..Default::default() };
        assert_eq!(c.backoff_seconds(1), 30);
        assert_eq!(c.backoff_seconds(2), 60);
        assert_eq!(c.backoff_seconds(5), 480);
        assert_eq!(c.backoff_seconds(40), 6 * 3600);
    }

    #[test]
    fn debug_never_shows_smtp_passwords() {
        let c = NotifyConfig { smtp_url: Some("smtp://u:hunter2@mail:25".into()), ..Default::default() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

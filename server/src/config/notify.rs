//! Flags for notifications: the SMTP server and sender, webhooks, delivery retries. Each is also
//! a `TAPGATE_*` environment variable and a key of the config file's `[notify]` table.

use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::notify::NotifyConfig;

#[derive(Debug, Clone, Default, Args)]
pub struct NotifyArgs {
    /// SMTP server for alert emails: smtp://HOST:PORT (plain, e.g. a local relay),
    /// smtp://HOST?tls=required (STARTTLS) or smtps://HOST, with USER:PASSWORD@ if needed.
    /// Without it no email is sent (webhooks still are).
    #[arg(long, env = "TAPGATE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The From: address of emails [default: tapgate <tapgate@localhost>]
    #[arg(long, env = "TAPGATE_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// Accept plain http:// webhook URLs (private networks, tests); otherwise HTTPS only.
    #[arg(long, env = "TAPGATE_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: bool,
    /// How often each instance looks for due deliveries, in milliseconds [default: 2000]
    #[arg(long, env = "TAPGATE_OUTBOX_POLL_MS")]
    pub outbox_poll_ms: Option<u64>,
    /// Seconds before the first retry of a failed delivery; each next one waits twice as long,
    /// at most 6 hours [default: 30]
    #[arg(long, env = "TAPGATE_OUTBOX_RETRY_SECONDS")]
    pub outbox_retry_seconds: Option<i64>,
    /// Attempts before a delivery is given up (`tapgate-server outbox retry` pushes it again)
    /// [default: 12]
    #[arg(long, env = "TAPGATE_OUTBOX_MAX_ATTEMPTS")]
    pub outbox_max_attempts: Option<i32>,
}

/// The config file's `[notify]` table; keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
    pub webhook_allow_http: Option<bool>,
    pub outbox_poll_ms: Option<u64>,
    pub outbox_retry_seconds: Option<i64>,
    pub outbox_max_attempts: Option<i32>,
}

/// Merges flags over the file over the defaults.
pub fn resolve(args: &NotifyArgs, file: NotifyFile) -> Result<NotifyConfig, String> {
    let defaults = NotifyConfig::default();
    let smtp_url = args.smtp_url.clone().or(file.smtp_url);
    if let Some(url) = &smtp_url {
        crate::notify::email::mailer(url)?;
    }
    let from = args.smtp_from.clone().or(file.smtp_from).unwrap_or(defaults.from);
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(format!(
            "invalid --smtp-from {from:?}: use an address, e.g. \"tapgate <alerts@example.com>\""
        ));
    }
    let poll_ms = args.outbox_poll_ms.or(file.outbox_poll_ms).unwrap_or(2000);
    let retry =
        args.outbox_retry_seconds.or(file.outbox_retry_seconds).unwrap_or(defaults.retry_base_seconds);
    let attempts = args.outbox_max_attempts.or(file.outbox_max_attempts).unwrap_or(defaults.max_attempts);
    if poll_ms == 0 || retry < 1 || attempts < 1 {
        return Err("the outbox poll interval, retry delay and attempts must each be at least 1".into());
    }
    Ok(NotifyConfig {
        smtp_url,
        from,
        allow_http_webhooks: args.webhook_allow_http || file.webhook_allow_http.unwrap_or(false),
        poll_interval: Duration::from_millis(poll_ms),
        retry_base_seconds: retry,
        max_attempts: attempts,
    })
}

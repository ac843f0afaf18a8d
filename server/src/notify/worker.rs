//! The delivery worker: every instance runs one. It claims due deliveries (one instance at a
//! time per delivery, see [`crate::store::outbox`]), sends them, and records the outcome: done,
//! or retried later with exponential backoff, or given up after the last attempt (the operator
//! sees it in `tapgate-server outbox list` and pushes it with `outbox retry`). A crash between
//! a commit and its delivery loses nothing: the delivery is still due when an instance runs.

use serde_json::Value;

use super::email::{self, Mailer};
use super::webhook;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::outbox::Claimed;

/// How long a claimed delivery is held before another instance may try it.
pub const LEASE_SECONDS: i64 = 120;
/// Deliveries claimed at once.
const BATCH: i64 = 20;

/// What deliveries are sent with.
#[derive(Debug, Clone)]
pub struct Senders {
    http: reqwest::Client,
    mailer: Option<Mailer>,
}

impl Senders {
    pub fn new(config: &super::NotifyConfig) -> Result<Self, String> {
        let mailer = config.smtp_url.as_deref().map(email::mailer).transpose()?;
        Ok(Self { http: webhook::client()?, mailer })
    }
}

/// Delivers until the task is aborted.
pub async fn run(state: AppState, senders: Senders) {
    let mut every = tokio::time::interval(state.config.notify.poll_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        loop {
            match run_once(&state, &senders).await {
                Ok(n) if n >= usize::try_from(BATCH).unwrap_or(20) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: cannot claim deliveries");
                    break;
                }
            }
        }
    }
}

/// Claims and attempts the due deliveries once; answers how many were attempted.
pub async fn run_once(state: &AppState, senders: &Senders) -> Result<usize, StoreError> {
    let now = state.now();
    let claimed = state.store.claim_deliveries(now, LEASE_SECONDS, BATCH).await?;
    let n = claimed.len();
    for delivery in claimed {
        let outcome = attempt(state, senders, &delivery).await;
        // Sent (or not) but not yet recorded: a crash here sends the delivery again after a
        // restart (at least once), never loses it.
        crate::failpoint!("notify.sent");
        let now = state.now();
        match outcome {
            Ok(()) => {
                state.store.delivered(delivery.id, now).await?;
                tracing::info!(
                    delivery_id = delivery.id,
                    event_id = delivery.event_id,
                    channel = %delivery.channel,
                    kind = %delivery.kind,
                    attempts = delivery.attempts,
                    "notification delivered"
                );
            }
            Err(error) => {
                let config = &state.config.notify;
                let retry_at = (delivery.attempts < config.max_attempts)
                    .then(|| now + config.backoff_seconds(delivery.attempts));
                state.store.delivery_failed(delivery.id, &error, retry_at, now).await?;
                tracing::warn!(
                    delivery_id = delivery.id,
                    event_id = delivery.event_id,
                    channel = %delivery.channel,
                    attempts = delivery.attempts,
                    retry_at,
                    error = %error,
                    "notification not delivered"
                );
            }
        }
    }
    Ok(n)
}

async fn attempt(state: &AppState, senders: &Senders, d: &Claimed) -> Result<(), String> {
    match d.channel.as_str() {
        "webhook" => {
            let secret = d.secret.as_deref().ok_or("the webhook was removed")?;
            webhook::check_url(&d.target, state.config.notify.allow_http_webhooks)?;
            let mut body: Value =
                serde_json::from_str(&d.payload).map_err(|e| format!("corrupt event: {e}"))?;
            if let Some(obj) = body.as_object_mut() {
                obj.insert("event_id".into(), Value::from(d.event_id));
            }
            let body = body.to_string();
            let kind = body_type(&body);
            webhook::deliver(&senders.http, &d.target, secret, &body, &kind, d.id, state.now()).await
        }
        "email" => {
            let mailer = senders.mailer.as_ref().ok_or("no SMTP server is configured (--smtp-url)")?;
            email::deliver(mailer, &state.config.notify.from, &d.target, &d.payload).await
        }
        other => Err(format!("unknown channel {other:?}")),
    }
}

fn body_type(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_string))
        .unwrap_or_else(|| "event".into())
}

//! Email deliveries over SMTP (lettre, rustls). The message is the event's `summary` and `text`.

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

pub type Mailer = AsyncSmtpTransport<Tokio1Executor>;

/// The transport for `url` (see [`super::NotifyConfig::smtp_url`]).
pub fn mailer(url: &str) -> Result<Mailer, String> {
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| format!("invalid SMTP URL {}: {e}", crate::store::redact_url(url)))?;
    Ok(builder.timeout(Some(std::time::Duration::from_secs(20))).build())
}

/// Subject and body of an event's email.
pub fn render(payload: &str) -> (String, String) {
    let value: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    let summary = value["summary"].as_str().unwrap_or("tapgate notification");
    let text = value["text"].as_str().unwrap_or(payload);
    (format!("[tapgate] {summary}"), text.to_string())
}

/// Sends the event `payload` to `to` from `from`.
pub async fn deliver(mailer: &Mailer, from: &str, to: &str, payload: &str) -> Result<(), String> {
    let (subject, body) = render(payload);
    let message = Message::builder()
        .from(from.parse().map_err(|e| format!("invalid sender address {from:?}: {e}"))?)
        .to(to.parse().map_err(|e| format!("invalid address {to:?}: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| format!("cannot build the email: {e}"))?;
    mailer.send(message).await.map(|_| ()).map_err(|e| format!("SMTP delivery to {to} failed: {e}"))
}

/// Whether `address` looks like an address lettre can send to.
pub fn valid_address(address: &str) -> bool {
    address.len() <= 254 && address.parse::<lettre::Address>().is_ok()
}

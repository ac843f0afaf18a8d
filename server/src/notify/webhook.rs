//! Webhook deliveries: the event's JSON, POSTed with
//! `tapgate-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
//! A receiver recomputes the HMAC with the secret it was shown when the webhook was set,
//! compares in constant time, and rejects timestamps too far from its clock (replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "tapgate-signature";

/// `t=<timestamp>,v1=<hex>` for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Checks a `tapgate-signature` header (what a receiver does), allowing `tolerance` seconds of
/// clock difference.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: i64) -> bool {
    let mut timestamp = None;
    let mut given = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => given = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(given)) = (timestamp, given) else {
        return false;
    };
    if (now - t).abs() > tolerance {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// Refuses webhook URLs the server will not call: not http(s), `http` unless allowed, userinfo.
pub fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(format!("{url}: webhooks must use https://")),
        other => return Err(format!("{url}: unsupported scheme {other}: use https://")),
    }
    if parsed.host_str().is_none() {
        return Err(format!("{url}: a webhook URL needs a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{url}: put no credentials in a webhook URL; verify the signature instead"));
    }
    if url.len() > 2048 {
        return Err("a webhook URL is at most 2048 characters".into());
    }
    Ok(())
}

/// An HTTP client for webhooks: rustls with the Mozilla roots, no redirects, bounded time.
pub fn client() -> Result<reqwest::Client, String> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS for webhooks: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("tapgate-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// POSTs `body` to `url`, signed with `secret`; `Err` says why it did not arrive.
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &str,
    event: &str,
    delivery_id: i64,
    now: i64,
) -> Result<(), String> {
    let resp = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature(secret, now, body.as_bytes()))
        .header("tapgate-event", event)
        .header("tapgate-delivery", delivery_id.to_string())
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {}", root_cause(&e)))?;
    let status = resp.status();
    if status.is_success() { Ok(()) } else { Err(format!("{url} answered {status}")) }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_bind_time_and_body() {
        let header = signature("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify("s3cret", &header, b"{\"a\":1}", 1_700_000_010, 300));
        assert!(!verify("s3cret", &header, b"{\"a\":2}", 1_700_000_010, 300), "another body");
        assert!(!verify("other", &header, b"{\"a\":1}", 1_700_000_010, 300), "another secret");
        assert!(!verify("s3cret", &header, b"{\"a\":1}", 1_700_001_000, 300), "a replay later");
        let moved = header.replace("t=1700000000", "t=1700000900");
        assert!(!verify("s3cret", &moved, b"{\"a\":1}", 1_700_000_900, 300), "another timestamp");
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256(key "key", "1.{}"), computed with Python's hmac module.
        assert_eq!(
            signature("key", 1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }

    #[test]
    fn only_https_urls_without_credentials() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/x", false).is_err());
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("ftp://example.com", true).is_err());
        assert!(check_url("https://u:p@example.com", false).is_err());
    }
}

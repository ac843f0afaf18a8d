//! What the operator sees of each request: metrics by route template, and one log line for every
//! refusal with its error code, the user (when a token identified one) and the client address.
//!
//! Behind a reverse proxy the client address is the proxy's; [`trusted_proxy`] takes it from
//! `X-Forwarded-For` only when the connection comes from a proxy the operator listed, so a client
//! cannot choose the address it is rate-limited and logged under.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tapgate_shared::ErrorCode;

use crate::metrics;
use crate::state::AppState;

/// The user a request's token identified, filled in by the authentication extractor.
#[derive(Debug, Clone, Default)]
pub struct RequestUser(Arc<Mutex<Option<String>>>);

impl RequestUser {
    pub fn set(&self, username: &str) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(username.to_string());
        }
    }

    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|s| s.clone())
    }
}

/// The error code of a refused request, set on the response by `ApiError`.
#[derive(Debug, Clone, Copy)]
pub struct RefusalCode(pub ErrorCode);

/// An address range: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpRange {
    /// Parses `1.2.3.4`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (ip, prefix) = match text.trim().split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| format!("{text:?} is not an address or address/prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("bad prefix in {text:?}"))?
            }
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        if self.addr.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        // IPv4 addresses sit in the top 32 bits, so the prefix counts from the top either way.
        let shift = 128 - u32::from(self.prefix);
        let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
        bits(self.addr) & mask == bits(ip) & mask
    }
}

/// The client behind a chain of trusted proxies: the right-most `X-Forwarded-For` address that is
/// not itself a trusted proxy; the peer when the peer is not trusted.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpRange]) -> IpAddr {
    if !trusted.iter().any(|r| r.contains(peer)) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for hop in header.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        client = ip;
        if !trusted.iter().any(|r| r.contains(ip)) {
            break;
        }
    }
    client
}

/// Replaces the connection's address with the forwarded client's, for connections from trusted
/// proxies; everything after (rate limits, logs) sees the client.
pub async fn trusted_proxy(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let trusted = &state.config.trusted_proxies;
    if !trusted.is_empty()
        && let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied()
    {
        let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let client = client_address(peer.ip(), forwarded, trusted);
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(client, peer.port())));
    }
    next.run(request).await
}

/// Counts the request by route template, and logs it when it was refused.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("(no route)", |m| m.as_str()).to_string();
    let method = request.method().as_str().to_string();
    let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let user = RequestUser::default();
    request.extensions_mut().insert(user.clone());
    let response = next.run(request).await;
    let status = response.status();
    metrics::record_request(&method, &route, status.as_u16(), started.elapsed());
    if status.is_client_error() || status.is_server_error() {
        let code = response.extensions().get::<RefusalCode>().map_or("-", |c| c.0.as_str());
        let user = user.get().unwrap_or_else(|| "-".into());
        let client = client.as_deref().unwrap_or("-");
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code, user = %user, client = %client, route = %route, "request failed");
        } else if code == ErrorCode::OtpRequired.as_str() {
            tracing::info!(status = status.as_u16(), code, user = %user, client = %client, route = %route, "request needs a tap");
        } else {
            tracing::warn!(status = status.as_u16(), code, user = %user, client = %client, route = %route, "request refused");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn ranges_match_by_prefix() {
        let r = IpRange::parse("10.1.0.0/16").unwrap_or(IpRange { addr: ip("0.0.0.0"), prefix: 32 });
        assert!(r.contains(ip("10.1.200.3")));
        assert!(!r.contains(ip("10.2.0.1")));
        assert!(!r.contains(ip("::1")));
        let one = IpRange::parse("127.0.0.1").unwrap_or(r);
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6 = IpRange::parse("fd00::/8").unwrap_or(r);
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(IpRange::parse("10.0.0.0/33").is_err() && IpRange::parse("nope").is_err());
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let trusted = [IpRange::parse("127.0.0.1").unwrap_or(IpRange { addr: ip("0.0.0.0"), prefix: 32 })];
        // Untrusted peer: its header is ignored.
        assert_eq!(client_address(ip("203.0.113.9"), Some("1.2.3.4"), &trusted), ip("203.0.113.9"));
        // Trusted proxy: the right-most untrusted hop; a client-forged left part is ignored.
        assert_eq!(
            client_address(ip("127.0.0.1"), Some("6.6.6.6, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(client_address(ip("127.0.0.1"), None, &trusted), ip("127.0.0.1"));
        assert_eq!(client_address(ip("127.0.0.1"), Some("garbage"), &trusted), ip("127.0.0.1"));
    }
}

//! Who is at the other end of a request, as alerts and the audit log record it: the client's
//! address (the connection's peer) and the user agent it announced. Neither is proof of
//! anything; both help maintainers recognise an attempt that was not theirs.

use std::net::IpAddr;

use serde::Serialize;

/// The longest user agent kept (longer ones are cut).
pub const MAX_USER_AGENT_CHARS: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// A client as recorded: the user agent cut to [`MAX_USER_AGENT_CHARS`], control characters
    /// replaced, so it can go into an email or a log line as it is.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .take(MAX_USER_AGENT_CHARS)
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Self { ip, user_agent }
    }

    /// Nothing known (a change made by the server itself, or a test).
    pub fn unknown() -> Self {
        Self::default()
    }

    pub fn ip_text(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }

    /// `address 192.0.2.1, user agent "npm/11 …"`, for messages.
    pub fn describe(&self) -> String {
        let ip = self.ip_text().unwrap_or_else(|| "unknown".into());
        match &self.user_agent {
            Some(ua) => format!("address {ip}, user agent {ua:?}"),
            None => format!("address {ip}, no user agent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_bounded_and_printable() {
        let long = "x".repeat(1000);
        let c = ClientInfo::new(None, Some(&long));
        assert_eq!(c.user_agent.map(|u| u.chars().count()), Some(MAX_USER_AGENT_CHARS));
        let c = ClientInfo::new(None, Some("npm\r\nX-Injected: 1"));
        assert_eq!(c.user_agent.as_deref(), Some("npm??X-Injected: 1"));
        assert_eq!(ClientInfo::new(None, Some("  ")).user_agent, None);
    }
}

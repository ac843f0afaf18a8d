//! Rate limits on what an anonymous client or a second-factor guesser can repeat: sign-ins, npm
//! web logins, approval taps, presented tickets and typed codes, invites.
//!
//! Every rule counts one subject in fixed windows: a client address, or an account *at* an
//! address. No rule counts an account from every address, so a stranger hammering someone's
//! account from elsewhere never locks them out. Counters live in the database ([`Counter`]), so
//! every instance behind a load balancer counts the same attempts. A fixed window lets a client
//! spend at most twice a limit around a window's edge; limits are set with that in mind.
//!
//! Two ways to count: [`hit`] counts every attempt; an attempt that turns out not to count (a
//! ticket that was valid) is given back with [`Hits::refund`], which is how failures alone are
//! limited without a window in which parallel guesses slip past a check-then-count.
//!
//! This module knows nothing of HTTP: a refusal is [`Limited`], mapped to `429` in
//! `crate::error`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::clock::UnixSeconds;
use crate::state::AppState;
use crate::store::limits::Counter;
use crate::store::{Store, StoreError, StoreResult};

/// At most `max` attempts in each window of `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window_seconds: u32,
}

impl Limit {
    pub const fn new(max: u32, window_seconds: u32) -> Self {
        Self { max, window_seconds }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.max, self.window_seconds)
    }
}

/// A rule as configured: a limit, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting(pub Option<Limit>);

impl FromStr for Setting {
    type Err = String;

    /// `COUNT/SECONDS` (e.g. `10/600`: ten per ten minutes) or `off`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Setting(None));
        }
        let bad = || format!("invalid rate limit {s:?}: use COUNT/SECONDS, e.g. 10/600, or off");
        let (max, window) = s.split_once('/').ok_or_else(bad)?;
        let max: u32 = max.trim().parse().map_err(|_| bad())?;
        let window: u32 = window.trim().parse().map_err(|_| bad())?;
        if max == 0 || window == 0 || window > 7 * 86_400 {
            return Err(format!(
                "invalid rate limit {s:?}: the count must be at least 1 and the window 1 second to 7 days (or use off)"
            ));
        }
        Ok(Setting(Some(Limit::new(max, window))))
    }
}

impl<'de> serde::Deserialize<'de> for Setting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A rule: what is counted, and whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Sign-in requests (begin and finish) from one address.
    SignIn,
    /// Sign-ins begun for one username from one address.
    SignInAccount,
    /// npm web logins started from one address.
    NpmLogin,
    /// Approval taps from one address.
    Taps,
    /// Taps on one account's approvals from one address.
    TapsAccount,
    /// Tickets and typed codes presented from one address that were refused.
    OtpFailures,
    /// Refused tickets and typed codes presented by one account from one address.
    OtpFailuresAccount,
    /// Invites presented from one address.
    Invites,
    /// Failed second-factor attempts by anonymous clients and non-maintainers from one address
    /// that count towards locking a package (beyond it they are recorded, not counted).
    LockFailures,
    /// The same, per account (from any address).
    LockFailuresAccount,
}

impl Rule {
    /// The counter's name in the database.
    pub fn bucket(self) -> &'static str {
        match self {
            Self::SignIn => "sign-in",
            Self::SignInAccount => "sign-in/account",
            Self::NpmLogin => "npm-login",
            Self::Taps => "taps",
            Self::TapsAccount => "taps/account",
            Self::OtpFailures => "otp-failures",
            Self::OtpFailuresAccount => "otp-failures/account",
            Self::Invites => "invites",
            Self::LockFailures => "lock-failures",
            Self::LockFailuresAccount => "lock-failures/account",
        }
    }

    /// What was repeated too often, for the refusal's sentence.
    fn what(self) -> &'static str {
        match self {
            Self::SignIn => "too many sign-in attempts from your address",
            Self::SignInAccount => "too many sign-in attempts for this account from your address",
            Self::NpmLogin => "too many npm logins started from your address",
            Self::Taps => "too many approval attempts from your address",
            Self::TapsAccount => "too many approval attempts for this account from your address",
            Self::OtpFailures => "too many wrong one-time codes or tickets from your address",
            Self::OtpFailuresAccount => {
                "too many wrong one-time codes or tickets for your account from your address"
            }
            Self::Invites => "too many invite attempts from your address",
            Self::LockFailures | Self::LockFailuresAccount => "too many failed attempts",
        }
    }
}

/// Every rule's limit; `None` turns a rule off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub sign_in: Option<Limit>,
    pub sign_in_account: Option<Limit>,
    pub npm_login: Option<Limit>,
    pub taps: Option<Limit>,
    pub taps_account: Option<Limit>,
    pub otp_failures: Option<Limit>,
    pub otp_failures_account: Option<Limit>,
    pub invites: Option<Limit>,
    /// Counted failures in a window that lock a package (see [`crate::lockout`]).
    pub lock_after: Option<Limit>,
    pub lock_failures: Option<Limit>,
    pub lock_failures_account: Option<Limit>,
}

/// The defaults: generous for people (a sign-in costs two sign-in requests; an office behind one
/// address shares the per-address rules), tight for guessing.
impl Default for RateLimits {
    fn default() -> Self {
        Self {
            sign_in: Some(Limit::new(60, 600)),
            sign_in_account: Some(Limit::new(10, 600)),
            npm_login: Some(Limit::new(20, 600)),
            taps: Some(Limit::new(60, 600)),
            taps_account: Some(Limit::new(30, 600)),
            otp_failures: Some(Limit::new(30, 900)),
            otp_failures_account: Some(Limit::new(10, 900)),
            invites: Some(Limit::new(20, 600)),
            lock_after: Some(DEFAULT_LOCK_AFTER),
            lock_failures: Some(Limit::new(2, 3600)),
            lock_failures_account: Some(Limit::new(2, 3600)),
        }
    }
}

/// Five counted failures in an hour lock a package. Anonymous clients and non-maintainers
/// count at most twice an hour per address and per account, so one address alone never locks
/// a package.
pub const DEFAULT_LOCK_AFTER: Limit = Limit::new(5, 3600);

impl RateLimits {
    /// No limits at all (benchmarks).
    pub fn off() -> Self {
        Self {
            sign_in: None,
            sign_in_account: None,
            npm_login: None,
            taps: None,
            taps_account: None,
            otp_failures: None,
            otp_failures_account: None,
            invites: None,
            lock_after: None,
            lock_failures: None,
            lock_failures_account: None,
        }
    }

    pub fn get(&self, rule: Rule) -> Option<Limit> {
        match rule {
            Rule::SignIn => self.sign_in,
            Rule::SignInAccount => self.sign_in_account,
            Rule::NpmLogin => self.npm_login,
            Rule::Taps => self.taps,
            Rule::TapsAccount => self.taps_account,
            Rule::OtpFailures => self.otp_failures,
            Rule::OtpFailuresAccount => self.otp_failures_account,
            Rule::Invites => self.invites,
            Rule::LockFailures => self.lock_failures,
            Rule::LockFailuresAccount => self.lock_failures_account,
        }
    }
}

/// Whom a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A client address.
    Address(IpAddr),
    /// An account (its id, or the username typed) at a client address.
    Account(&'a str, IpAddr),
    /// An account from any address: only for rules that limit how much an actor's own failures
    /// weigh, never for refusing the account anything.
    AnyAddress(&'a str),
}

impl Subject<'_> {
    fn key(&self) -> String {
        match self {
            Self::Address(ip) => address_key(*ip),
            Self::Account(account, ip) => format!("{}|{account}", address_key(*ip)),
            Self::AnyAddress(account) => format!("*|{account}"),
        }
    }
}

/// An address as counted: IPv4 as is (also when mapped into IPv6), IPv6 by its /64 network,
/// the smallest block one client is normally given.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// One attempt to count: under which rule, for whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt<'a> {
    pub rule: Rule,
    pub subject: Subject<'a>,
}

impl<'a> Attempt<'a> {
    pub fn new(rule: Rule, subject: Subject<'a>) -> Self {
        Self { rule, subject }
    }
}

/// A refusal: the rule that was over its limit and when its window ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub rule: Rule,
    pub retry_after_seconds: i64,
}

impl Limited {
    /// A sentence saying what was refused and when to try again.
    pub fn message(&self) -> String {
        let s = self.retry_after_seconds;
        let when = if s >= 120 { format!("{} minutes", (s + 59) / 60) } else { format!("{s} seconds") };
        format!("{}: wait {when} and try again", self.rule.what())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{}", .0.message())]
    Limited(Limited),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counted attempts, which can be given back when they turn out not to count.
#[derive(Debug, Default)]
#[must_use = "hits are kept unless refunded; drop them explicitly when they count"]
pub struct Hits {
    counters: Vec<Counter>,
}

impl Hits {
    /// Gives every hit back.
    pub async fn refund(self, store: &Store) -> StoreResult<()> {
        for counter in &self.counters {
            store.refund_hit(counter).await?;
        }
        Ok(())
    }

    /// Keeps the hits (they count).
    pub fn keep(self) {}
}

/// The window `now` falls in, and when it ends.
fn window(now: UnixSeconds, limit: Limit) -> (UnixSeconds, UnixSeconds) {
    let length = i64::from(limit.window_seconds.max(1));
    let start = now - now.rem_euclid(length);
    (start, start + length)
}

/// Counts one attempt under each rule that is on; refuses when any of them is now over its limit
/// (naming the one that frees up last).
pub async fn hit(state: &AppState, attempts: &[Attempt<'_>]) -> Result<Hits, LimitError> {
    let now = state.now();
    let mut hits = Hits::default();
    let mut refused: Option<Limited> = None;
    for attempt in attempts {
        let Some(limit) = state.config.rate_limits.get(attempt.rule) else {
            continue;
        };
        let (start, end) = window(now, limit);
        let counter =
            Counter { bucket: attempt.rule.bucket(), subject: attempt.subject.key(), window_start: start };
        let count = state.store.count_hit(&counter, end).await?;
        hits.counters.push(counter);
        if count > i64::from(limit.max) {
            let retry_after_seconds = (end - now).max(1);
            if refused.as_ref().is_none_or(|r| r.retry_after_seconds < retry_after_seconds) {
                refused = Some(Limited { rule: attempt.rule, retry_after_seconds });
            }
        }
    }
    match refused {
        None => Ok(hits),
        Some(limited) => {
            tracing::warn!(
                rule = limited.rule.bucket(),
                retry_after_seconds = limited.retry_after_seconds,
                "rate limit reached"
            );
            hits.keep();
            Err(LimitError::Limited(limited))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_counts_per_seconds_or_off() {
        assert_eq!("10/600".parse::<Setting>(), Ok(Setting(Some(Limit::new(10, 600)))));
        assert_eq!(" off ".parse::<Setting>(), Ok(Setting(None)));
        for bad in ["10", "0/60", "10/0", "ten/60", "10/99999999", ""] {
            assert!(bad.parse::<Setting>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn windows_are_fixed_and_aligned() {
        let limit = Limit::new(3, 60);
        assert_eq!(window(120, limit), (120, 180));
        assert_eq!(window(179, limit), (120, 180));
        assert_eq!(window(180, limit), (180, 240));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap_or_else(|e| panic!("{e}"));
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap_or_else(|e| panic!("{e}"));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(address_key(mapped), "192.0.2.7");
    }

    #[test]
    fn accounts_are_counted_per_address() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap_or_else(|e| panic!("{e}"));
        let other: IpAddr = "192.0.2.2".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(Subject::Account("alice", ip).key(), Subject::Account("alice", other).key());
        assert_ne!(Subject::Account("alice", ip).key(), Subject::Address(ip).key());
    }

    #[test]
    fn refusals_say_when_to_retry() {
        let m = Limited { rule: Rule::SignIn, retry_after_seconds: 42 }.message();
        assert!(m.contains("42 seconds"), "{m}");
        let m = Limited { rule: Rule::OtpFailuresAccount, retry_after_seconds: 600 }.message();
        assert!(m.contains("10 minutes"), "{m}");
    }
}

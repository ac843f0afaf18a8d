//! Flags for bounding what clients can make the server do: connections, timeouts, rate limits.
//! Each is also a `TAPGATE_*` environment variable and a key of the config file's `[limits]`
//! table.

use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::connections::{
    ConnectionLimits, DEFAULT_BODY_IDLE_TIMEOUT_SECONDS, DEFAULT_HEADER_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT_SECONDS,
};
use crate::limits::{RateLimits, Setting};

#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Connections served at once; more are answered 503 and closed [default: 512]
    #[arg(long, env = "TAPGATE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers, from connecting or from the previous
    /// response on a kept-alive connection (so also the idle timeout) [default: 10]
    #[arg(long, env = "TAPGATE_HEADER_TIMEOUT_SECONDS")]
    pub header_timeout_seconds: Option<u64>,
    /// Longest pause, in seconds, while a request body streams in [default: 30]
    #[arg(long, env = "TAPGATE_BODY_IDLE_TIMEOUT_SECONDS")]
    pub body_idle_timeout_seconds: Option<u64>,
    /// Seconds a whole request may take, upload included; the default lets a 50 MiB tarball
    /// arrive at about 450 kbit/s [default: 1200]
    #[arg(long, env = "TAPGATE_REQUEST_TIMEOUT_SECONDS")]
    pub request_timeout_seconds: Option<u64>,
    /// Sign-in requests (starting and finishing) per client address: COUNT/SECONDS or off
    /// [default: 60/600]
    #[arg(long, env = "TAPGATE_LIMIT_SIGN_IN")]
    pub limit_sign_in: Option<Setting>,
    /// Sign-ins started for one username per client address [default: 10/600]
    #[arg(long, env = "TAPGATE_LIMIT_SIGN_IN_ACCOUNT")]
    pub limit_sign_in_account: Option<Setting>,
    /// npm web logins started per client address [default: 20/600]
    #[arg(long, env = "TAPGATE_LIMIT_NPM_LOGIN")]
    pub limit_npm_login: Option<Setting>,
    /// Approval taps per client address [default: 60/600]
    #[arg(long, env = "TAPGATE_LIMIT_TAPS")]
    pub limit_taps: Option<Setting>,
    /// Taps on one account's approvals per client address [default: 30/600]
    #[arg(long, env = "TAPGATE_LIMIT_TAPS_ACCOUNT")]
    pub limit_taps_account: Option<Setting>,
    /// Refused one-time codes and tickets per client address [default: 30/900]
    #[arg(long, env = "TAPGATE_LIMIT_OTP_FAILURES")]
    pub limit_otp_failures: Option<Setting>,
    /// Refused one-time codes and tickets per account and client address [default: 10/900]
    #[arg(long, env = "TAPGATE_LIMIT_OTP_FAILURES_ACCOUNT")]
    pub limit_otp_failures_account: Option<Setting>,
    /// Invites presented per client address [default: 20/600]
    #[arg(long, env = "TAPGATE_LIMIT_INVITES")]
    pub limit_invites: Option<Setting>,
    /// Failed second-factor attempts on a package (bad taps, refused tickets, counter
    /// regressions, non-maintainers' writes…) that lock it until its maintainers unlock it with a
    /// tap: COUNT/SECONDS or off [default: 5/3600]
    #[arg(long, env = "TAPGATE_LOCK_AFTER")]
    pub lock_after: Option<Setting>,
    /// Failures by anonymous clients and non-maintainers that count towards a lock, per client
    /// address [default: 2/3600]
    #[arg(long, env = "TAPGATE_LIMIT_LOCK_FAILURES")]
    pub limit_lock_failures: Option<Setting>,
    /// The same, per account [default: 2/3600]
    #[arg(long, env = "TAPGATE_LIMIT_LOCK_FAILURES_ACCOUNT")]
    pub limit_lock_failures_account: Option<Setting>,
}

/// The config file's `[limits]` table; keys as the flags, without `limit_` for rate limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_connections: Option<usize>,
    pub header_timeout_seconds: Option<u64>,
    pub body_idle_timeout_seconds: Option<u64>,
    pub request_timeout_seconds: Option<u64>,
    pub sign_in: Option<Setting>,
    pub sign_in_account: Option<Setting>,
    pub npm_login: Option<Setting>,
    pub taps: Option<Setting>,
    pub taps_account: Option<Setting>,
    pub otp_failures: Option<Setting>,
    pub otp_failures_account: Option<Setting>,
    pub invites: Option<Setting>,
    pub lock_after: Option<Setting>,
    pub lock_failures: Option<Setting>,
    pub lock_failures_account: Option<Setting>,
}

/// Merges flags over the file over the defaults.
pub fn resolve(args: &LimitArgs, file: LimitsFile) -> Result<(ConnectionLimits, RateLimits), String> {
    let max_connections = args.max_connections.or(file.max_connections).unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max_connections == 0 {
        return Err("invalid --max-connections 0: allow at least one connection".into());
    }
    let seconds = |flag: &str, value: Option<u64>, default: u64| -> Result<Duration, String> {
        match value.unwrap_or(default) {
            0 => Err(format!("invalid --{flag} 0: use a number of seconds of at least 1")),
            s => Ok(Duration::from_secs(s)),
        }
    };
    let connections = ConnectionLimits {
        max_connections,
        header_timeout: seconds(
            "header-timeout-seconds",
            args.header_timeout_seconds.or(file.header_timeout_seconds),
            DEFAULT_HEADER_TIMEOUT_SECONDS,
        )?,
        body_idle_timeout: seconds(
            "body-idle-timeout-seconds",
            args.body_idle_timeout_seconds.or(file.body_idle_timeout_seconds),
            DEFAULT_BODY_IDLE_TIMEOUT_SECONDS,
        )?,
        request_timeout: seconds(
            "request-timeout-seconds",
            args.request_timeout_seconds.or(file.request_timeout_seconds),
            DEFAULT_REQUEST_TIMEOUT_SECONDS,
        )?,
    };
    let defaults = RateLimits::default();
    let pick = |flag: Option<Setting>, file: Option<Setting>, default| flag.or(file).map_or(default, |s| s.0);
    let rate_limits = RateLimits {
        sign_in: pick(args.limit_sign_in, file.sign_in, defaults.sign_in),
        sign_in_account: pick(args.limit_sign_in_account, file.sign_in_account, defaults.sign_in_account),
        npm_login: pick(args.limit_npm_login, file.npm_login, defaults.npm_login),
        taps: pick(args.limit_taps, file.taps, defaults.taps),
        taps_account: pick(args.limit_taps_account, file.taps_account, defaults.taps_account),
        otp_failures: pick(args.limit_otp_failures, file.otp_failures, defaults.otp_failures),
        otp_failures_account: pick(
            args.limit_otp_failures_account,
            file.otp_failures_account,
            defaults.otp_failures_account,
        ),
        invites: pick(args.limit_invites, file.invites, defaults.invites),
        lock_after: pick(args.lock_after, file.lock_after, defaults.lock_after),
        lock_failures: pick(args.limit_lock_failures, file.lock_failures, defaults.lock_failures),
        lock_failures_account: pick(
            args.limit_lock_failures_account,
            file.lock_failures_account,
            defaults.lock_failures_account,
        ),
    };
    Ok((connections, rate_limits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limit;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file: LimitsFile =
            toml::from_str("sign_in = \"5/60\"\ninvites = \"off\"\nmax_connections = 64\n")
                .unwrap_or_else(|e| panic!("{e}"));
        let args = LimitArgs {
            limit_sign_in: Some(Setting(Some(Limit::new(7, 30)))),
            header_timeout_seconds: Some(3),
            ..Default::default()
        };
        let (connections, limits) = resolve(&args, file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(limits.sign_in, Some(Limit::new(7, 30)));
        assert_eq!(limits.invites, None);
        assert_eq!(limits.taps, RateLimits::default().taps);
        assert_eq!(connections.max_connections, 64);
        assert_eq!(connections.header_timeout, Duration::from_secs(3));
        assert_eq!(connections.request_timeout, Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECONDS));
    }

    #[test]
    fn zero_connections_or_timeouts_are_refused() {
        let args = LimitArgs { max_connections: Some(0), ..Default::default() };
        assert!(resolve(&args, LimitsFile::default()).is_err());
        let args = LimitArgs { header_timeout_seconds: Some(0), ..Default::default() };
        assert!(resolve(&args, LimitsFile::default()).is_err());
        assert!(toml::from_str::<LimitsFile>("sign_in = \"lots\"").is_err());
    }
}

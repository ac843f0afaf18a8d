//! A head start for maintainers: failed second-factor attempts on a package are counted, and
//! after too many in a window (default 5 in an hour) the package is locked — every write is
//! refused until its maintainers unlock it with a tap (`tapgate unlock NAME`) — and every
//! maintainer is alerted.
//!
//! What counts: a bad or foreign assertion from one of the requester's keys, a refused ticket
//! or code, a counter regression, a non-maintainer's write, and (through [`record_failure`],
//! the hook for other doors) bad CI credentials, deploy keys and OIDC tokens. Maintainers'
//! failures always count (a stolen token guessing is exactly what the lock is for). Failures by
//! anonymous clients and non-maintainers count only within rate limits per address and per
//! account, so one address cannot lock a package. A lock never blocks reading or installing.
//!
//! The counter and the lock live in the database: every instance sees them, they survive
//! restarts, and the failure that completes the count sets the lock in its own transaction.
//! This module knows nothing of HTTP.

use crate::client_info::ClientInfo;
use crate::clock::rfc3339;
use crate::gate::GateError;
use crate::limits::{self, Attempt, LimitError, Rule, Subject};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::effects::Effects;
use crate::store::lockout::{FailureRow, LockRule, NewFailure, PackageLock, Recorded};

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A tap by one of the requester's keys that did not verify (wrong origin, bad signature…).
    AssertionFailed,
    /// A ticket or typed code that was unknown, used, expired or for another change.
    TicketRefused,
    /// A key answered with a signature counter at or below the stored one (a clone?).
    CounterRegression,
    /// Someone who does not maintain the package tried to change it.
    NotMaintainer,
    /// A key the account does not have.
    UnknownKey,
    /// A CI credential that is unknown, revoked or for another package.
    CiCredential,
    /// A deploy key that is unknown, used, expired or for other bytes.
    DeployKey,
    /// An OIDC token that did not verify or matches no trusted publisher.
    OidcToken,
}

impl FailureKind {
    /// The stable name in the database, alerts and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssertionFailed => "approval_failed",
            Self::TicketRefused => "ticket_refused",
            Self::CounterRegression => "counter_regression",
            Self::NotMaintainer => "not_maintainer",
            Self::UnknownKey => "unknown_key",
            Self::CiCredential => "ci_credential",
            Self::DeployKey => "deploy_key",
            Self::OidcToken => "oidc_token",
        }
    }

    /// In words, for alerts.
    pub fn describe(self) -> &'static str {
        match self {
            Self::AssertionFailed => "a security-key approval that did not verify",
            Self::TicketRefused => "a refused approval ticket or one-time code",
            Self::CounterRegression => {
                "a security key whose signature counter went backwards (possible clone)"
            }
            Self::NotMaintainer => "a write attempt by someone who is not a maintainer",
            Self::UnknownKey => "a security key the account does not have",
            Self::CiCredential => "a bad CI credential",
            Self::DeployKey => "a bad deploy key",
            Self::OidcToken => "an OIDC token that did not verify",
        }
    }
}

/// One failed attempt against a package.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub package: &'a str,
    /// The account involved (user id), if any.
    pub account: Option<&'a str>,
    /// The security key (or credential) involved, if known.
    pub key: Option<&'a str>,
    pub kind: FailureKind,
    /// What happened, in a sentence (never a secret).
    pub detail: &'a str,
    pub client: &'a ClientInfo,
}

/// Records a failed attempt on `package` by `account` (user id, if any) and counts it towards
/// the lock. The hook for every door that refuses a second factor (CI credentials, deploy keys,
/// OIDC tokens).
pub async fn record_failure(
    state: &AppState,
    package: &str,
    account: Option<&str>,
    kind: FailureKind,
    detail: &str,
    client: &ClientInfo,
) -> Result<Recorded, StoreError> {
    record(state, &Failure { package, account, key: None, kind, detail, client }).await
}

/// [`record_failure`] with every detail.
pub async fn record(state: &AppState, f: &Failure<'_>) -> Result<Recorded, StoreError> {
    let now = state.now();
    state.store.record_event(now, f.kind.as_str(), f.account, Some(f.package), f.detail).await?;
    let rule = state
        .config
        .rate_limits
        .lock_after
        .map(|l| LockRule { threshold: i64::from(l.max), window_seconds: i64::from(l.window_seconds) });
    let counted = rule.is_some() && counts(state, f).await?;
    let ip = f.client.ip_text();
    let failure = NewFailure {
        package: f.package,
        kind: f.kind.as_str(),
        user_id: f.account,
        key_id: f.key,
        client_ip: ip.as_deref(),
        user_agent: f.client.user_agent.as_deref(),
        detail: f.detail,
        counted,
        at: now,
    };
    let lock_id = crate::secrets::public_id("lck_");
    let account = match f.account {
        Some(id) => state.store.user_by_id(id).await?.map(|u| u.name),
        None => None,
    };
    let noted = Effects {
        notice: None,
        audit: vec![crate::audit::failed(
            f.package,
            f.kind.as_str(),
            account.as_deref(),
            f.key,
            f.detail,
            counted,
        )],
    };
    let alert = |lock: &PackageLock, failures: &[FailureRow]| {
        let mut effects = crate::notify::events::lock_alert(state, lock, failures);
        effects.audit.push(crate::audit::locked(lock, failures));
        effects
    };
    let recorded = state.store.record_failure(&failure, rule, &lock_id, &noted, &alert).await?;
    match &recorded {
        Recorded::Locked(lock) => tracing::warn!(
            package = %f.package,
            lock_id = %lock.lock_id,
            failures = lock.failures,
            kind = f.kind.as_str(),
            "package {} locked after {} failed attempts", f.package, lock.failures
        ),
        Recorded::Noted { counted: n } => tracing::info!(
            package = %f.package,
            kind = f.kind.as_str(),
            counted,
            failures_in_window = n,
            "failed attempt recorded"
        ),
    }
    Ok(recorded)
}

/// Whether the failure counts towards the lock: always for a maintainer's account; otherwise
/// within the per-address and per-account limits.
async fn counts(state: &AppState, f: &Failure<'_>) -> Result<bool, StoreError> {
    if let Some(account) = f.account
        && state.store.is_maintainer(f.package, account).await?
    {
        return Ok(true);
    }
    let mut attempts = Vec::new();
    if let Some(ip) = f.client.ip {
        attempts.push(Attempt::new(Rule::LockFailures, Subject::Address(ip)));
    }
    if let Some(account) = f.account {
        attempts.push(Attempt::new(Rule::LockFailuresAccount, Subject::AnyAddress(account)));
    }
    match limits::hit(state, &attempts).await {
        Ok(hits) => {
            hits.keep();
            Ok(true)
        }
        Err(LimitError::Limited(_)) => Ok(false),
        Err(LimitError::Store(e)) => Err(e),
    }
}

/// Refuses any change to a locked package, with the sentence that says how to unlock it.
pub async fn ensure_unlocked(state: &AppState, package: &str) -> Result<(), GateError> {
    match state.store.package_lock(package).await? {
        Some(lock) => Err(GateError::Locked(locked_message(package, Some(&lock)))),
        None => Ok(()),
    }
}

/// Why a write to `package` is refused while it is locked, and what to do.
pub fn locked_message(package: &str, lock: Option<&PackageLock>) -> String {
    let since = lock
        .map(|l| {
            format!(" since {} after {} failed second-factor attempts", rfc3339(l.locked_at), l.failures)
        })
        .unwrap_or_else(|| " after repeated failed second-factor attempts".into());
    format!(
        "{package} is locked{since}, and its maintainers were alerted. Nothing can be published or changed until a maintainer unlocks it with a tap: `tapgate unlock {package}`. Reading and installing still work."
    )
}

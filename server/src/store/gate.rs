//! What every gated write re-checks inside the transaction that commits it: the package's policy
//! is still the one the gate evaluated, the actor is still allowed, and the evidence (a tap's
//! ticket) is consumed exactly once, bound to the digest of this exact intent.
//!
//! Write transactions start with [`BeginWrite::BEGIN_WRITE`] (SQLite: `BEGIN IMMEDIATE`, so
//! concurrent writers queue instead of failing on a stale snapshot) and lock the package (or
//! account) row first on PostgreSQL, so checks such as "a package keeps one maintainer" cannot
//! be raced.

use sqlx::{PgPool, SqlitePool};

use super::StoreError;
use crate::clock::UnixSeconds;

/// Per-backend statements for write transactions.
pub(crate) trait BeginWrite {
    const BEGIN_WRITE: &'static str;
    const LOCK_PACKAGE: &'static str;
    const LOCK_USER: &'static str;
}

impl BeginWrite for SqlitePool {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const LOCK_PACKAGE: &'static str = "SELECT policy FROM packages WHERE name = $1";
    const LOCK_USER: &'static str = "SELECT id FROM users WHERE id = $1";
}

impl BeginWrite for PgPool {
    const BEGIN_WRITE: &'static str = "BEGIN";
    // Reading the policy and locking its row is one statement: a policy read before the lock
    // could be stale once the lock is granted (read committed).
    const LOCK_PACKAGE: &'static str = "SELECT policy FROM packages WHERE name = $1 FOR UPDATE";
    const LOCK_USER: &'static str = "SELECT id FROM users WHERE id = $1 FOR UPDATE";
}

pub(crate) fn begin_write<P: BeginWrite>(_: &P) -> &'static str {
    P::BEGIN_WRITE
}

pub(crate) fn lock_package<P: BeginWrite>(_: &P) -> &'static str {
    P::LOCK_PACKAGE
}

pub(crate) fn lock_user<P: BeginWrite>(_: &P) -> &'static str {
    P::LOCK_USER
}

/// The tap a commit consumes: the approval and the digest of the intent it approved.
#[derive(Debug, Clone, Copy)]
pub struct Tap<'a> {
    pub approval_id: &'a str,
    pub intent_digest: &'a str,
}

/// The deploy key a commit spends: once, before it expires, for this package and version, and
/// only while the CI credential that asked for it is unrevoked, unexpired, and the actor's.
#[derive(Debug, Clone, Copy)]
pub struct DeployKeySpend<'a> {
    /// SHA-256 (hex) of the deploy key's text.
    pub hash: &'a str,
    pub credential_id: &'a str,
    pub package: &'a str,
    pub version: &'a str,
    /// The deploy key's text, kept as the version's record.
    pub document: &'a str,
}

/// The OIDC registry token a commit spends: once, before it expires, for this package, and only
/// while the trust that answered it is in force and was created by the actor.
#[derive(Debug, Clone, Copy)]
pub struct OidcSpend<'a> {
    /// SHA-256 (hex) of the `tg_oidc_…` token.
    pub hash: &'a str,
    pub trust_id: &'a str,
    pub package: &'a str,
    pub version: &'a str,
    /// The registry's signed statement, kept as the version's record.
    pub statement: &'a str,
}

/// The package-level conditions of a gated write.
#[derive(Debug, Clone, Copy)]
pub struct PackageGuard<'a> {
    pub package: &'a str,
    /// The policy JSON the gate evaluated (for a package not yet stored: the default policy).
    pub policy: &'a str,
    /// The actor must (still) be a maintainer.
    pub must_maintain: bool,
    /// The change lifts the package's lock; every other change is refused while it is locked.
    pub unlocking: bool,
}

/// Everything a gated write re-checks inside its transaction.
#[derive(Debug, Clone, Copy)]
pub struct Guard<'a> {
    pub actor: &'a str,
    pub package: Option<PackageGuard<'a>>,
    pub tap: Option<Tap<'a>>,
    /// The alternative to a tap for a CI publish.
    pub deploy_key: Option<DeployKeySpend<'a>>,
    /// The alternative to a tap for an OIDC trusted publish.
    pub oidc: Option<OidcSpend<'a>>,
    pub now: UnixSeconds,
    /// What the commit leaves behind (its notifications), written in its transaction.
    pub effects: Option<&'a super::effects::Effects>,
}

/// Why a gated write did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("the package policy changed while the change waited")]
    PolicyChanged,
    #[error("the actor is not a maintainer")]
    NotMaintainer,
    #[error("the approval was already used, expired, or approves another change")]
    EvidenceSpent,
    #[error("version exists")]
    VersionExists,
    /// The package is locked after repeated failed attempts (maybe since the gate admitted the
    /// change: the lock taken meanwhile wins).
    #[error("the package is locked")]
    Locked,
    /// The change no longer applies (e.g. the tag moved, the version is gone); the sentence says
    /// what happened.
    #[error("{0}")]
    Stale(String),
    /// The staged release the change decides was decided meanwhile, or it expired.
    #[error("{0}")]
    StageClosed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CommitError {
    fn from(e: sqlx::Error) -> Self {
        CommitError::Store(e.into())
    }
}

/// Runs a guard's checks inside `$tx` (a transaction on `$pool`); returns early with a
/// [`CommitError`] when one fails. The package row is locked first on PostgreSQL.
macro_rules! enforce_guard {
    ($pool:expr, $tx:expr, $guard:expr) => {{
        let guard: &$crate::store::gate::Guard<'_> = $guard;
        if let Some(pkg) = guard.package {
            let stored: Option<(String,)> = sqlx::query_as($crate::store::gate::lock_package($pool))
                .bind(pkg.package)
                .fetch_optional(&mut *$tx)
                .await?;
            if let Some((policy,)) = &stored
                && policy != pkg.policy
            {
                return Err($crate::store::gate::CommitError::PolicyChanged);
            }
            if !pkg.unlocking {
                let locked: Option<(String,)> = sqlx::query_as(
                    "SELECT lock_id FROM package_locks WHERE package = $1 AND lock_id IS NOT NULL",
                )
                .bind(pkg.package)
                .fetch_optional(&mut *$tx)
                .await?;
                if locked.is_some() {
                    return Err($crate::store::gate::CommitError::Locked);
                }
            }
            if pkg.must_maintain {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT user_id FROM package_maintainers WHERE package = $1 AND user_id = $2",
                )
                .bind(pkg.package)
                .bind(guard.actor)
                .fetch_optional(&mut *$tx)
                .await?;
                if found.is_none() {
                    return Err($crate::store::gate::CommitError::NotMaintainer);
                }
            }
        }
        $crate::failpoint!("gate.checked");
        if let Some(tap) = guard.tap {
            // The approval was given under the policy in force now: a change approved under a
            // weaker policy does not commit under a stronger one.
            let given: Option<(Option<String>,)> = sqlx::query_as("SELECT policy FROM approvals WHERE id = $1")
                .bind(tap.approval_id)
                .fetch_optional(&mut *$tx)
                .await?;
            if let (Some(pkg), Some((Some(given),))) = (guard.package, &given)
                && given != pkg.policy
            {
                return Err($crate::store::gate::CommitError::PolicyChanged);
            }
            // Spent once, for exactly this intent and requester, not rejected, and only while
            // every key that tapped it is still enrolled and not suspended (a ticket a cloned key
            // minted dies with the key) and its signers still satisfy it: enough distinct people
            // who are still maintainers (or the requester), with the requester among them where
            // the approval demands it.
            let used = sqlx::query(
                "UPDATE approvals SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND approved_at IS NOT NULL \
                 AND rejected_at IS NULL AND ticket_expires_at > $1 AND requested_by = $3 AND intent_digest = $4 \
                 AND NOT EXISTS (SELECT 1 FROM approval_signatures s LEFT JOIN security_keys k ON k.id = s.key_id \
                 WHERE s.approval_id = approvals.id AND (k.id IS NULL OR k.suspended_at IS NOT NULL)) \
                 AND (SELECT COUNT(DISTINCT s.user_id) FROM approval_signatures s WHERE s.approval_id = approvals.id \
                 AND (s.user_id = approvals.requested_by OR EXISTS (SELECT 1 FROM package_maintainers m \
                 WHERE m.package = approvals.package AND m.user_id = s.user_id))) >= approvals.required_taps \
                 AND (NOT approvals.requester_must_sign OR EXISTS (SELECT 1 FROM approval_signatures s \
                 WHERE s.approval_id = approvals.id AND s.user_id = approvals.requested_by))",
            )
            .bind(guard.now)
            .bind(tap.approval_id)
            .bind(guard.actor)
            .bind(tap.intent_digest)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if used != 1 {
                return Err($crate::store::gate::CommitError::EvidenceSpent);
            }
            $crate::failpoint!("gate.ticket_spent");
        }
        if let Some(dk) = guard.deploy_key {
            let spent = sqlx::query(
                "UPDATE deploy_keys SET spent_at = $1, document = $2 WHERE hash = $3 AND credential_id = $4 \
                 AND package = $5 AND version = $6 AND spent_at IS NULL AND expires_at > $1 \
                 AND EXISTS (SELECT 1 FROM ci_credentials c WHERE c.id = deploy_keys.credential_id \
                 AND c.revoked_at IS NULL AND c.expires_at > $1 AND c.created_by = $7)",
            )
            .bind(guard.now)
            .bind(dk.document)
            .bind(dk.hash)
            .bind(dk.credential_id)
            .bind(dk.package)
            .bind(dk.version)
            .bind(guard.actor)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if spent != 1 {
                return Err($crate::store::gate::CommitError::EvidenceSpent);
            }
            $crate::failpoint!("gate.deploy_key_spent");
        }
        if let Some(o) = guard.oidc {
            let spent = sqlx::query(
                "UPDATE oidc_tokens SET spent_at = $1, version = $2, statement = $3 WHERE hash = $4 AND trust_id = $5 \
                 AND package = $6 AND spent_at IS NULL AND expires_at > $1 \
                 AND EXISTS (SELECT 1 FROM trusts t WHERE t.id = oidc_tokens.trust_id AND t.removed_at IS NULL \
                 AND t.package = oidc_tokens.package AND t.created_by = $7)",
            )
            .bind(guard.now)
            .bind(o.version)
            .bind(o.statement)
            .bind(o.hash)
            .bind(o.trust_id)
            .bind(o.package)
            .bind(guard.actor)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if spent != 1 {
                return Err($crate::store::gate::CommitError::EvidenceSpent);
            }
        }
        $crate::store::effects::write_effects!($pool, $tx, guard.effects, guard.now);
    }};
}
pub(crate) use enforce_guard;

/// Marks `$package` modified at `$now` inside the change's transaction `$tx`: every committed
/// change to what installers receive does this, so `time.modified`, the packument's validators
/// and its revision (the key of its serialized copies) move with it.
macro_rules! touch_package {
    ($tx:expr, $package:expr, $now:expr) => {
        sqlx::query("UPDATE packages SET modified_at = $1, revision = revision + 1 WHERE name = $2")
            .bind($now)
            .bind($package)
            .execute(&mut *$tx)
            .await?
    };
}
pub(crate) use touch_package;

//! The one gate every write passes.
//!
//! A write is an intent ([`GateIntent`]): who asks, to change what, how. [`admit`] asks the
//! package's policy what evidence the intent needs ([`requirement`]) and answers either the
//! evidence to commit with, or why not — typically [`GateError::TapRequired`] with a freshly
//! recorded approval, which npm's clients turn into "open this page and touch your key". The
//! commit then re-checks everything inside its transaction ([`crate::store::gate::Guard`]).
//!
//! A token (any scope, admin included) only identifies the actor; it is never evidence. Admin
//! acts on a package and every change to an account's keys or a package's policy need a tap,
//! whatever the policy says.
//!
//! This module knows nothing of HTTP: errors are [`GateError`], mapped to responses in
//! `crate::error`.

pub mod approvals;
pub mod roles;

use tapgate_shared::gate_intent::{Change, GateIntent};

use crate::ceremonies::AssertionError;
use crate::policy::{Policy, PolicyError};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::gate::{CommitError, Guard, PackageGuard, Tap};
use crate::store::users::User;

/// Under what authority the actor asks for the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A maintainer of the package.
    Maintainer,
    /// The first publisher of a name nobody holds (in a scope they own).
    Claimant,
    /// An administrator acting on a package they do not maintain (or on its policy).
    Admin,
    /// A user changing their own account (security keys).
    AccountOwner,
}

/// What an intent needs before it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// Distinct people whose taps are needed; 0: the policy lets an identified actor alone do it.
    pub taps: i32,
}

/// The evidence a commit consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The package's policy asks for no second factor for this change.
    PolicyAllowsToken,
    /// An approved intent whose ticket was presented.
    Tap { approval_id: String, intent_digest: String, payload: Option<String> },
}

impl Evidence {
    pub fn tap(&self) -> Option<Tap<'_>> {
        match self {
            Self::PolicyAllowsToken => None,
            Self::Tap { approval_id, intent_digest, .. } => Some(Tap { approval_id, intent_digest }),
        }
    }

    pub fn is_tap(&self) -> bool {
        matches!(self, Self::Tap { .. })
    }
}

/// An approval was recorded and is waiting for its taps.
#[derive(Debug, Clone)]
pub struct PendingApproval {
    pub info: tapgate_shared::api::ApprovalInfo,
    /// The approval page (npm's `authUrl`).
    pub auth_url: String,
    /// npm's `doneUrl`, with the secret only the requester's client holds.
    pub done_url: String,
}

/// Why the gate refused, or what it needs first.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Record kept; the actor's client must have it approved with a tap and repeat the request
    /// with the ticket.
    #[error("a security-key approval is needed")]
    TapRequired(Box<PendingApproval>),
    /// The policy needs a tap but the actor has no usable key.
    #[error("{0}")]
    NoUsableKey(String),
    #[error("{0}")]
    Forbidden(String),
    /// The package is locked after repeated failed attempts; the sentence says how to unlock it.
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidTicket(String),
    #[error("{0}")]
    ApprovalGone(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    VersionExists(String),
    #[error("{0}")]
    KeyAlreadyEnrolled(String),
    #[error("{0}")]
    TooLarge(String),
    /// The change as asked is malformed (the sentence says how).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidInvite(String),
    #[error(transparent)]
    Key(#[from] AssertionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Corrupt(String),
}

impl From<PolicyError> for GateError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::TooNew(_) => GateError::Conflict(e.to_string()),
            PolicyError::Corrupt(_) => GateError::Corrupt(e.to_string()),
        }
    }
}

/// The evidence `change` needs under `policy` when asked for in `role`.
pub fn requirement(policy: &Policy, change: &Change, role: Role) -> Requirement {
    let always = matches!(
        change,
        Change::KeyAdd { .. }
            | Change::KeyRemove { .. }
            | Change::PolicySet { .. }
            | Change::Unlock { .. }
            | Change::WebhookSet { .. }
    );
    let taps = if always || role == Role::Admin || policy.requires_key() { 1 } else { 0 };
    Requirement { taps }
}

/// A package's policy in force, and the exact stored text the commit will compare against.
#[derive(Debug, Clone)]
pub struct PolicyInForce {
    pub policy: Policy,
    pub text: String,
    /// Whether the package row exists (a published or reserved name).
    pub exists: bool,
}

/// The policy of `package`: its stored one, or the server default for a new name.
pub async fn policy_in_force(state: &AppState, package: &str) -> Result<PolicyInForce, GateError> {
    match state.store.package(package).await? {
        Some(row) => {
            Ok(PolicyInForce { policy: Policy::from_stored(&row.policy)?, text: row.policy, exists: true })
        }
        None => {
            let policy = Policy::new(state.config.default_policy);
            Ok(PolicyInForce { text: policy.to_stored(), policy, exists: false })
        }
    }
}

/// An intent presented to the gate.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub actor: &'a User,
    pub intent: &'a GateIntent,
    pub policy: &'a PolicyInForce,
    pub role: Role,
    /// The `npm-otp` the client sent: a ticket or a typed code.
    pub otp: Option<&'a str>,
    /// Stored with a new approval for the commit (e.g. a verified new key).
    pub payload: Option<&'a str>,
    /// Where the request came from, for alerts on refused tickets.
    pub client: &'a crate::client_info::ClientInfo,
}

/// Decides what `request` needs and answers the evidence it carries, or why it cannot go on.
pub async fn admit(state: &AppState, request: &Request<'_>) -> Result<Evidence, GateError> {
    let need = requirement(&request.policy.policy, &request.intent.change, request.role);
    if need.taps == 0 {
        return Ok(Evidence::PolicyAllowsToken);
    }
    match request.otp.map(str::trim).filter(|o| !o.is_empty()) {
        None => Err(GateError::TapRequired(Box::new(approvals::create(state, request, need).await?))),
        Some(otp) => approvals::redeem(state, request, otp).await,
    }
}

/// The guard a commit re-checks: the policy evaluated, the actor's standing, the evidence.
pub fn guard<'a>(
    actor: &'a User,
    evidence: &'a Evidence,
    package: Option<(&'a str, &'a PolicyInForce, Role)>,
    now: i64,
) -> Guard<'a> {
    Guard {
        actor: &actor.id,
        package: package.map(|(name, policy, role)| PackageGuard {
            package: name,
            policy: &policy.text,
            must_maintain: role == Role::Maintainer,
            unlocking: false,
        }),
        tap: evidence.tap(),
        now,
        effects: None,
    }
}

/// Maps what a commit reported to the gate's errors.
pub fn committed<T>(result: Result<T, CommitError>, subject: &str) -> Result<T, GateError> {
    result.map_err(|e| commit_error(e, subject))
}

pub fn commit_error(e: CommitError, subject: &str) -> GateError {
    match e {
        CommitError::PolicyChanged => GateError::Conflict(format!(
            "the policy of {subject} changed while this change waited for approval: run it again"
        )),
        CommitError::NotMaintainer => {
            GateError::Forbidden(format!("you are not (any more) a maintainer of {subject}"))
        }
        CommitError::EvidenceSpent => GateError::InvalidTicket(
            "the approval was used, expired, or approves a different change: approve this change again"
                .into(),
        ),
        CommitError::Locked => GateError::Locked(crate::lockout::locked_message(subject, None)),
        CommitError::VersionExists => GateError::VersionExists(format!(
            "this version of {subject} was already published (or unpublished: numbers are never reused): bump the version"
        )),
        CommitError::Stale(message) => GateError::Conflict(message),
        CommitError::Store(StoreError::Conflict(message)) => GateError::Conflict(message),
        CommitError::Store(e) => GateError::Store(e),
    }
}

#[cfg(test)]
mod tests {
    use tapgate_shared::api::SecondFactor;

    use super::*;

    #[test]
    fn tokens_alone_never_change_keys_policy_or_act_as_admin() {
        let none = Policy::new(SecondFactor::None);
        let key = Policy::new(SecondFactor::SecurityKey);
        let tag = Change::DistTagSet { tag: "latest".into(), version: "1.0.0".into(), previous: None };
        let policy = Change::PolicySet { old: "a".into(), new: "b".into() };
        let key_add =
            Change::KeyAdd { name: "k".into(), credential_id: "c".into(), attestation_sha256: "a".into() };
        assert_eq!(requirement(&none, &tag, Role::Maintainer).taps, 0, "the policy decides for maintainers");
        assert_eq!(requirement(&key, &tag, Role::Maintainer).taps, 1);
        assert_eq!(requirement(&none, &tag, Role::Admin).taps, 1, "admins always tap");
        assert_eq!(requirement(&none, &policy, Role::Admin).taps, 1);
        assert_eq!(requirement(&none, &key_add, Role::AccountOwner).taps, 1);
    }
}

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
pub mod approvers;
pub mod deploy_keys;
pub mod details;
pub mod oidc;
pub mod reject;
pub mod roles;

use tapgate_shared::gate_intent::{Change, GateIntent};

use crate::ceremonies::AssertionError;
use crate::policy::{Policy, PolicyError};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::gate::{CommitError, DeployKeySpend, Guard, OidcSpend, PackageGuard, Tap};
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
    /// Whose keys may tap.
    pub approvers: Approvers,
    /// The requester's own tap is one of `taps` (an administrator acting on a critical package:
    /// the administrator's tap plus the maintainers' approvals).
    pub requester_must_sign: bool,
}

/// Whose keys may approve an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approvers {
    /// Only the requester's.
    Requester,
    /// Any maintainer's of the package, and the requester's.
    Maintainers,
}

impl Requirement {
    fn none() -> Self {
        Self { taps: 0, approvers: Approvers::Requester, requester_must_sign: false }
    }

    fn requester() -> Self {
        Self { taps: 1, approvers: Approvers::Requester, requester_must_sign: false }
    }
}

/// What the gate knows about a change beyond its intent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// A publish adds or changes install scripts against the previous version (assumed when
    /// the tarball is not known yet).
    pub scripts_changed: bool,
}

/// The evidence a commit consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The package's policy asks for no second factor for this change.
    PolicyAllowsToken,
    /// An approved intent whose ticket was presented.
    Tap { approval_id: String, intent_digest: String, payload: Option<String> },
    /// A deploy key (signed by this registry, for exactly this publish) that a CI credential
    /// obtained; the credential's scope was approved by `approval_id`, a maintainer's tap.
    DeployKey {
        /// SHA-256 (hex) of the deploy key's text.
        hash: String,
        credential_id: String,
        approval_id: String,
        package: String,
        version: String,
        /// The deploy key's text, kept as the version's record once spent.
        document: String,
    },
    /// A registry token an OIDC exchange answered (for exactly this package), whose ID token
    /// met the trust `trust_id`, created by the actor with the tap `approval_id`.
    Oidc {
        /// SHA-256 (hex) of the `tg_oidc_…` token.
        hash: String,
        trust_id: String,
        approval_id: String,
        package: String,
        version: String,
        /// The registry's signed statement ([`tapgate_shared::oidc::OidcPublish`]), kept as the
        /// version's record.
        statement: String,
    },
}

impl Evidence {
    pub fn tap(&self) -> Option<Tap<'_>> {
        match self {
            Self::Tap { approval_id, intent_digest, .. } => Some(Tap { approval_id, intent_digest }),
            Self::PolicyAllowsToken | Self::DeployKey { .. } | Self::Oidc { .. } => None,
        }
    }

    pub fn deploy_key(&self) -> Option<DeployKeySpend<'_>> {
        match self {
            Self::DeployKey { hash, credential_id, package, version, document, .. } => {
                Some(DeployKeySpend { hash, credential_id, package, version, document })
            }
            Self::PolicyAllowsToken | Self::Tap { .. } | Self::Oidc { .. } => None,
        }
    }

    pub fn oidc(&self) -> Option<OidcSpend<'_>> {
        match self {
            Self::Oidc { hash, trust_id, package, version, statement, .. } => {
                Some(OidcSpend { hash, trust_id, package, version, statement })
            }
            Self::PolicyAllowsToken | Self::Tap { .. } | Self::DeployKey { .. } => None,
        }
    }

    /// How the change was authorized, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PolicyAllowsToken => "token",
            Self::Tap { .. } => "tap",
            Self::DeployKey { .. } => "deploy-key",
            Self::Oidc { .. } => "oidc",
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
    /// The package's policy refuses this (a key that is not attested, a tap without user
    /// verification, a maintainer without a compliant key…); the sentence says what to do.
    #[error("{0}")]
    PolicyViolation(String),
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
    /// A deploy key that cannot publish this (forged, expired, used, revoked, another change).
    #[error("{0}")]
    InvalidDeployKey(String),
    /// A CI credential asked for something outside the scope its maintainer approved.
    #[error("{0}")]
    OutsideScope(String),
    /// The package policy does not allow this way of publishing.
    #[error("{0}")]
    NotAllowed(String),
    /// A credential that is unknown, revoked or expired.
    #[error("{0}")]
    Unauthenticated(String),
    /// No such staged release (among those the actor may see).
    #[error("{0}")]
    StageNotFound(String),
    /// The staged release was decided already, or expired.
    #[error("{0}")]
    StageClosed(String),
    /// The package has as many staged releases waiting as it may.
    #[error("{0}")]
    TooManyStages(String),
    /// An OIDC token (an ID token, or the registry token it was exchanged for) refused.
    #[error("{1}")]
    Oidc(crate::oidc::OidcFailure, String),
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
///
/// - Maintainers (and claimants) need their own tap where the policy asks for a key; with
///   `approvals: N > 1`, N distinct maintainers' taps (N for install-script changes where the
///   policy says so).
/// - Administrators always tap. On a critical package they also need the N maintainers'
///   approvals the policy demands of any change: N + 1 distinct people with the administrator
///   among them — except to make the policy stricter, which the administrator's tap alone does.
/// - Key changes need the account owner's tap.
pub fn requirement(policy: &Policy, change: &Change, role: Role, facts: Facts) -> Requirement {
    let always = matches!(
        change,
        Change::KeyAdd { .. }
            | Change::KeyRemove { .. }
            | Change::PolicySet { .. }
            | Change::CiCredentialCreate { .. }
            | Change::Unlock { .. }
            | Change::WebhookSet { .. }
            | Change::StageReject { .. }
            | Change::TrustCreate { .. }
    );
    // Removing a trust only takes power away (like revoking a CI credential): the maintainer's
    // token suffices, so that a maintainer who suspects a CI compromise, or whose package is
    // locked, can cut it off at once without reaching for a key. A thief holding that token can
    // at worst stop CI releases, which every maintainer is told about.
    if matches!(change, Change::TrustRemove { .. }) {
        return Requirement::none();
    }
    if !(always || role == Role::Admin || policy.requires_key()) {
        return Requirement::none();
    }
    // Key changes; and rejecting a staged release, which only ever keeps bytes from being
    // served: one maintainer's tap stops it, even on a critical package.
    if change.is_account_change()
        || role == Role::AccountOwner
        || matches!(change, Change::StageReject { .. })
    {
        return Requirement::requester();
    }
    let scripts_changed = matches!(change, Change::Publish { .. }) && facts.scripts_changed;
    let n = i32::try_from(policy.approvals_needed(scripts_changed)).unwrap_or(i32::MAX);
    match role {
        Role::Admin => {
            let raising = match change {
                Change::PolicySet { new, .. } => {
                    Policy::from_canonical(new).is_some_and(|new| new.at_least_as_strict_as(policy))
                }
                _ => false,
            };
            if policy.is_critical() && !raising {
                Requirement {
                    taps: n.saturating_add(1),
                    approvers: Approvers::Maintainers,
                    requester_must_sign: true,
                }
            } else {
                Requirement::requester()
            }
        }
        _ if n > 1 => Requirement { taps: n, approvers: Approvers::Maintainers, requester_must_sign: false },
        _ => Requirement::requester(),
    }
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
            let policy = Policy {
                ci: crate::policy::CiMethods::from_list(&state.config.default_ci),
                ..Policy::new(state.config.default_policy)
            };
            Ok(PolicyInForce { text: policy.to_stored(), policy, exists: false })
        }
    }
}

/// Where a request came from: recorded with the approval it creates, so approvers see who asked
/// from where. Informational; never evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<std::net::IpAddr>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
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
    /// Where the request came from, shown with a new approval.
    pub origin: Option<&'a Origin>,
    /// A publish's uploaded tarball: a new approval describes what it holds and changes.
    pub tarball: Option<&'a [u8]>,
    pub facts: Facts,
    /// Where the request came from, for alerts on refused tickets.
    pub client: &'a crate::client_info::ClientInfo,
    /// The OIDC registry token that authenticated the request, if one did: it is then the
    /// evidence, and nothing else is.
    pub oidc: Option<&'a crate::changes::OidcActor>,
}

impl GateError {
    /// A stable name for the outcome, for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            GateError::TapRequired(_) => "tap_required",
            GateError::NoUsableKey(_) => "no_usable_key",
            GateError::Forbidden(_) => "forbidden",
            GateError::NotFound(_) => "not_found",
            GateError::InvalidTicket(_) => "invalid_ticket",
            GateError::ApprovalGone(_) => "approval_gone",
            GateError::Conflict(_) => "conflict",
            GateError::VersionExists(_) => "version_exists",
            GateError::KeyAlreadyEnrolled(_) => "key_already_enrolled",
            GateError::TooLarge(_) => "too_large",
            GateError::Invalid(_) => "invalid",
            GateError::InvalidInvite(_) => "invalid_invite",
            GateError::InvalidDeployKey(_) => "invalid_deploy_key",
            GateError::OutsideScope(_) => "outside_ci_scope",
            GateError::NotAllowed(_) => "not_allowed",
            GateError::Unauthenticated(_) => "unauthenticated",
            GateError::StageNotFound(_) => "stage_not_found",
            GateError::StageClosed(_) => "stage_closed",
            GateError::TooManyStages(_) => "too_many_stages",
            GateError::Oidc(..) => "oidc_refused",
            GateError::PolicyViolation(_) => "policy_violation",
            GateError::Locked(_) => "locked",
            GateError::Key(_) => "key_refused",
            GateError::Store(_) => "store",
            GateError::Corrupt(_) => "corrupt",
        }
    }
}

/// Decides what `request` needs and answers the evidence it carries, or why it cannot go on.
pub async fn admit(state: &AppState, request: &Request<'_>) -> Result<Evidence, GateError> {
    let result = admit_unrecorded(state, request).await;
    if let Err(e) = &result {
        let outcome = if matches!(e, GateError::TapRequired(_)) { "tap_required" } else { "refused" };
        crate::metrics::record_gate(request.intent.change.action(), outcome, e.reason());
    }
    result
}

async fn admit_unrecorded(state: &AppState, request: &Request<'_>) -> Result<Evidence, GateError> {
    if let Some(oidc) = request.oidc {
        return oidc::redeem(state, request, oidc).await;
    }
    if let Some(otp) = request.otp.map(str::trim).filter(|o| deploy_keys::is_deploy_key(o)) {
        return deploy_keys::redeem(state, request, otp).await;
    }
    let need = requirement(&request.policy.policy, &request.intent.change, request.role, request.facts);
    if need.taps == 0 {
        return Ok(Evidence::PolicyAllowsToken);
    }
    match request.otp.map(str::trim).filter(|o| !o.is_empty()) {
        None => Err(GateError::TapRequired(Box::new(approvals::create(state, request, need).await?))),
        Some(otp) => approvals::redeem(state, request, need, otp).await,
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
        deploy_key: evidence.deploy_key(),
        oidc: evidence.oidc(),
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
            "the approval was used, expired, rejected, approves a different change, or its approvers no longer \
             satisfy the policy (a key was removed or suspended, an approver stopped being a maintainer): \
             approve this change again"
                .into(),
        ),
        CommitError::Locked => GateError::Locked(crate::lockout::locked_message(subject, None)),
        CommitError::VersionExists => GateError::VersionExists(format!(
            "this version of {subject} was already published (or unpublished: numbers are never reused): bump the version"
        )),
        CommitError::Stale(message) => GateError::Conflict(message),
        CommitError::StageClosed(message) => GateError::StageClosed(message),
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
        let f = Facts::default();
        assert_eq!(
            requirement(&none, &tag, Role::Maintainer, f).taps,
            0,
            "the policy decides for maintainers"
        );
        assert_eq!(requirement(&key, &tag, Role::Maintainer, f).taps, 1);
        assert_eq!(requirement(&none, &tag, Role::Admin, f).taps, 1, "admins always tap");
        assert_eq!(requirement(&none, &policy, Role::Admin, f).taps, 1);
        assert_eq!(requirement(&none, &key_add, Role::AccountOwner, f).taps, 1);
        let ci = Change::CiCredentialCreate {
            credential_id: "ci_1".into(),
            name: "ci".into(),
            versions: "*".into(),
            tags: vec!["latest".into()],
            expires_at: "2030-01-01T00:00:00Z".into(),
            cidrs: vec![],
        };
        assert_eq!(
            requirement(&none, &ci, Role::Maintainer, f).taps,
            1,
            "creating a CI credential always taps"
        );
    }

    #[test]
    fn critical_packages_need_n_maintainers_and_admins_need_them_too() {
        let critical = Policy {
            approvals: 2,
            approvals_when_scripts_change: Some(3),
            ..Policy::new(SecondFactor::SecurityKey)
        };
        let publish = Change::Publish {
            version: "1.0.0".into(),
            integrity: "sha512-x".into(),
            tags: vec!["latest".into()],
        };
        let plain = Facts::default();
        let scripts = Facts { scripts_changed: true };
        let r = requirement(&critical, &publish, Role::Maintainer, plain);
        assert_eq!((r.taps, r.approvers, r.requester_must_sign), (2, Approvers::Maintainers, false));
        assert_eq!(requirement(&critical, &publish, Role::Maintainer, scripts).taps, 3);
        let tag = Change::DistTagSet { tag: "latest".into(), version: "1.0.0".into(), previous: None };
        assert_eq!(
            requirement(&critical, &tag, Role::Maintainer, scripts).taps,
            2,
            "scripts only count for publishes"
        );
        let add = Change::MaintainerAdd { user: "bob".into() };
        let r = requirement(&critical, &add, Role::Admin, plain);
        assert_eq!((r.taps, r.approvers, r.requester_must_sign), (3, Approvers::Maintainers, true));
        let lower = Change::PolicySet {
            old: critical.canonical(),
            new: Policy::new(SecondFactor::SecurityKey).canonical(),
        };
        assert_eq!(requirement(&critical, &lower, Role::Admin, plain).taps, 3, "lowering: N + the admin");
        let stricter = Policy { approvals: 3, approvals_when_scripts_change: None, ..critical };
        let stricter = Policy { approvals_when_scripts_change: Some(4), ..stricter };
        let raise = Change::PolicySet { old: critical.canonical(), new: stricter.canonical() };
        let r = requirement(&critical, &raise, Role::Admin, plain);
        assert_eq!((r.taps, r.requester_must_sign), (1, false), "raising: the admin's tap");
        let key = Policy::new(SecondFactor::SecurityKey);
        assert_eq!(requirement(&key, &lower, Role::Admin, plain), Requirement::requester());
    }
}

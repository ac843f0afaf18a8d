//! Every gated change, as domain operations: build the intent from what the actor asked for,
//! pass the gate, commit under the guard. Routes (the JSON API, npm's protocol, the CLI's calls)
//! only parse requests and call these, so a change has one meaning whichever door it came
//! through.

pub mod ci;
pub mod keys;
pub mod package;
pub mod publish;
pub mod stage;
pub mod trust;
pub mod unlock;
pub mod webhooks;

use tapgate_shared::gate_intent::{Change, GateIntent};

use crate::client_info::ClientInfo;
use crate::gate::roles::{Asking, role_for};
use crate::gate::{self, Evidence, Facts, GateError, PolicyInForce, Request, Role};
use crate::lockout::{self, FailureKind};
use crate::notify::events::{Authorized, change_notice};
use crate::state::AppState;
use crate::store::effects::Effects;
use crate::store::gate::Guard;
use crate::store::users::User;

/// Who asks: the user behind the token, and whether the token may act as an administrator.
/// Identification only; never evidence.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub admin: bool,
    /// Where the request came from, when the route recorded it (shown to approvers).
    pub origin: gate::Origin,
    /// Set when a CI principal authenticated the request instead of a user's token: the actor
    /// is then the maintainer who created the CI credential or the trust, and may only publish
    /// its package, with the evidence that principal carries.
    pub ci: Option<CiActor>,
    /// Where the request came from (for alerts and the audit log).
    pub client: ClientInfo,
}

/// A CI principal acting for the maintainer who created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiActor {
    /// A CI credential (`tg_ci_…`) by id: it publishes only with a deploy key it obtained.
    Credential(String),
    /// A registry token an OIDC exchange answered (`tg_oidc_…`): the token is the evidence.
    Oidc(OidcActor),
}

/// The OIDC registry token behind a request (never its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcActor {
    /// SHA-256 (hex) of the `tg_oidc_…` token.
    pub token_hash: String,
    pub trust_id: String,
    /// The one package it may act on.
    pub package: String,
    /// npm's permission names the trust grants (`createPackage`, `createStagedPackage`).
    pub permissions: Vec<String>,
}

impl Actor {
    /// The CI credential behind the request, if one.
    pub fn ci_credential(&self) -> Option<&str> {
        match &self.ci {
            Some(CiActor::Credential(id)) => Some(id),
            _ => None,
        }
    }

    /// The OIDC registry token behind the request, if one.
    pub fn oidc(&self) -> Option<&OidcActor> {
        match &self.ci {
            Some(CiActor::Oidc(o)) => Some(o),
            _ => None,
        }
    }

    /// The same actor, asking from `origin`.
    pub fn with_origin(self, origin: gate::Origin) -> Self {
        Self { origin, ..self }
    }
}

/// What the actor asks for: under what authority, which change, with which `npm-otp`, and for a
/// publish the uploaded tarball (described to approvers, never evidence).
#[derive(Debug)]
pub struct Asked<'a> {
    pub asking: Asking,
    pub change: Change,
    pub otp: Option<&'a str>,
    pub tarball: Option<&'a [u8]>,
    /// What the policy's requirement depends on (whether a publish changes install scripts).
    pub facts: gate::Facts,
}

/// An intent the gate admitted, with what its commit re-checks.
#[derive(Debug)]
pub struct Admitted {
    pub package: String,
    pub policy: PolicyInForce,
    pub role: Role,
    pub evidence: Evidence,
    pub intent: GateIntent,
    /// The notice its commit enqueues.
    pub effects: Effects,
}

impl Admitted {
    pub fn guard<'a>(&'a self, actor: &'a Actor, now: i64) -> Guard<'a> {
        let mut guard =
            gate::guard(&actor.user, &self.evidence, Some((&self.package, &self.policy, self.role)), now);
        if let Some(package) = guard.package.as_mut() {
            package.unlocking =
                matches!(self.intent.change, Change::Unlock { .. } | Change::TrustRemove { .. });
        }
        guard.effects = Some(&self.effects);
        guard
    }
}

/// Passes `change` to `package` through the gate, asked as `asking`.
pub async fn admit(
    state: &AppState,
    actor: &Actor,
    package: &str,
    asking: Asking,
    change: Change,
    otp: Option<&str>,
) -> Result<Admitted, GateError> {
    let policy = gate::policy_in_force(state, package).await?;
    admit_under(state, actor, package, policy, asking, change, otp, Facts::default()).await
}

/// [`admit`] under a policy already read (when the change itself names the policy it replaces,
/// or what the change needs depends on it, both must come from the same read), with what is
/// known about the change beyond its intent.
#[allow(clippy::too_many_arguments)]
pub async fn admit_under(
    state: &AppState,
    actor: &Actor,
    package: &str,
    policy: PolicyInForce,
    asking: Asking,
    change: Change,
    otp: Option<&str>,
    facts: Facts,
) -> Result<Admitted, GateError> {
    admit_asked(state, actor, package, policy, Asked { asking, change, otp, tarball: None, facts }).await
}

/// [`admit_under`], with everything the actor asked for.
pub async fn admit_asked(
    state: &AppState,
    actor: &Actor,
    package: &str,
    policy: PolicyInForce,
    asked: Asked<'_>,
) -> Result<Admitted, GateError> {
    let Asked { asking, change, otp, tarball, facts } = asked;
    let ci_only = |what: &str| {
        GateError::Forbidden(format!(
            "a CI credential publishes only with a deploy key it asked for (`tapgate ci deploy-key`); {what}"
        ))
    };
    if actor.ci_credential().is_some() {
        if !matches!(change, Change::Publish { .. }) {
            return Err(ci_only("every other change needs a maintainer"));
        }
        if !otp.is_some_and(gate::deploy_keys::is_deploy_key) {
            return Err(ci_only("send one as npm's --otp"));
        }
    }
    if actor.oidc().is_some() && !matches!(change, Change::Publish { .. }) {
        return Err(GateError::Forbidden(
            "an OIDC token only publishes new versions of its package; every other change needs a maintainer"
                .into(),
        ));
    }
    let role = role_of(state, actor, package, &policy, asking).await?;
    let intent = GateIntent { subject: package.to_string(), requested_by: actor.user.name.clone(), change };
    // Lifting the lock, and removing a trust (which only takes power away), work while locked.
    if !matches!(intent.change, Change::Unlock { .. } | Change::TrustRemove { .. })
        && let Err(locked) = lockout::ensure_unlocked(state, package).await
    {
        crate::audit::record_refusal(state, package, &intent, &locked.to_string()).await?;
        return Err(locked);
    }
    let request = Request {
        actor: &actor.user,
        intent: &intent,
        policy: &policy,
        role,
        otp,
        payload: None,
        origin: Some(&actor.origin),
        tarball,
        facts,
        client: &actor.client,
        oidc: actor.oidc(),
    };
    let evidence = match gate::admit(state, &request).await {
        Ok(evidence) => evidence,
        // Refused ticket and codes are recorded as failed attempts; a tap demand is no decision.
        Err(
            e @ (GateError::TapRequired(_)
            | GateError::InvalidTicket(_)
            | GateError::InvalidDeployKey(_)
            | GateError::Oidc(..)
            | GateError::Store(_)),
        ) => {
            return Err(e);
        }
        Err(e) => {
            if policy.exists {
                crate::audit::record_refusal(state, package, &intent, &e.to_string()).await?;
            }
            return Err(e);
        }
    };
    if let Some(mine) = actor.ci_credential()
        && !matches!(&evidence, Evidence::DeployKey { credential_id, .. } if credential_id == mine)
    {
        return Err(ci_only("this deploy key was obtained by another CI credential"));
    }
    if let Some(mine) = actor.oidc()
        && !matches!(&evidence, Evidence::Oidc { hash, .. } if *hash == mine.token_hash)
    {
        return Err(GateError::Forbidden(
            "a request made with an OIDC token is authorized by that token only".into(),
        ));
    }
    let authorized = authorized(state, &evidence).await?;
    let notice = change_notice(state, &intent, &authorized, &actor.client, None);
    let effects = Effects { notice: Some(notice), audit: vec![crate::audit::accepted(&intent, &authorized)] };
    Ok(Admitted { package: package.to_string(), policy, role, evidence, intent, effects })
}

/// How `evidence` authorized a change, for its notice.
pub async fn authorized(state: &AppState, evidence: &Evidence) -> Result<Authorized, GateError> {
    match evidence {
        Evidence::PolicyAllowsToken => Ok(Authorized { kind: "token", approval_id: None, keys: Vec::new() }),
        Evidence::DeployKey { .. } => {
            Ok(Authorized { kind: "deploy-key", approval_id: None, keys: Vec::new() })
        }
        Evidence::Oidc { approval_id, trust_id, .. } => Ok(Authorized {
            kind: "oidc",
            approval_id: Some(approval_id.clone()),
            keys: vec![("trust".into(), trust_id.clone())],
        }),
        Evidence::Tap { approval_id, .. } => {
            let mut keys = Vec::new();
            for signature in state.store.approval_signatures(approval_id).await? {
                let user = state.store.user_by_id(&signature.user_id).await?;
                keys.push((user.map(|u| u.name).unwrap_or(signature.user_id), signature.key_id));
            }
            Ok(Authorized { kind: "tap", approval_id: Some(approval_id.clone()), keys })
        }
    }
}

/// The role `actor` asks in; a refused non-maintainer's write on an existing package counts as
/// a failed attempt on it.
pub async fn role_of(
    state: &AppState,
    actor: &Actor,
    package: &str,
    policy: &PolicyInForce,
    asking: Asking,
) -> Result<Role, GateError> {
    let refused = match role_for(state, &actor.user, actor.admin, package, policy, asking).await {
        Err(GateError::Forbidden(why)) if policy.exists => why,
        other => return other,
    };
    let detail =
        format!("{} tried to change {package} ({asking:?}) and was refused: {refused}", actor.user.name);
    lockout::record_failure(
        state,
        package,
        Some(&actor.user.id),
        FailureKind::NotMaintainer,
        &detail,
        &actor.client,
    )
    .await?;
    Err(GateError::Forbidden(refused))
}

/// Logs an accepted change once, with how it was authorized.
pub fn log_accepted(admitted: &Admitted, actor: &Actor) {
    let evidence = match &admitted.evidence {
        Evidence::Tap { .. } => "tap",
        Evidence::DeployKey { .. } => "deploy-key",
        Evidence::Oidc { .. } => "oidc",
        Evidence::PolicyAllowsToken => "token",
    };
    crate::metrics::record_gate(admitted.intent.change.action(), "accepted", evidence);
    tracing::info!(
        subject = %admitted.package,
        action = admitted.intent.change.action(),
        user = %actor.user.name,
        role = ?admitted.role,
        evidence = admitted.evidence.kind(),
        change = %admitted.intent.describe(),
        "gated change committed"
    );
}

//! Every gated change, as domain operations: build the intent from what the actor asked for,
//! pass the gate, commit under the guard. Routes (the JSON API, npm's protocol, the CLI's calls)
//! only parse requests and call these, so a change has one meaning whichever door it came
//! through.

pub mod keys;
pub mod package;
pub mod publish;

use tapgate_shared::gate_intent::{Change, GateIntent};

use crate::gate::roles::{Asking, role_for};
use crate::gate::{self, Evidence, Facts, GateError, PolicyInForce, Request, Role};
use crate::state::AppState;
use crate::store::gate::Guard;
use crate::store::users::User;

/// Who asks: the user behind the token, and whether the token may act as an administrator.
/// Identification only; never evidence.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub admin: bool,
}

/// An intent the gate admitted, with what its commit re-checks.
#[derive(Debug)]
pub struct Admitted {
    pub package: String,
    pub policy: PolicyInForce,
    pub role: Role,
    pub evidence: Evidence,
    pub intent: GateIntent,
}

impl Admitted {
    pub fn guard<'a>(&'a self, actor: &'a Actor, now: i64) -> Guard<'a> {
        gate::guard(&actor.user, &self.evidence, Some((&self.package, &self.policy, self.role)), now)
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
    let role = role_for(state, &actor.user, actor.admin, package, &policy, asking).await?;
    let intent = GateIntent { subject: package.to_string(), requested_by: actor.user.name.clone(), change };
    let request =
        Request { actor: &actor.user, intent: &intent, policy: &policy, role, otp, payload: None, facts };
    let evidence = gate::admit(state, &request).await?;
    Ok(Admitted { package: package.to_string(), policy, role, evidence, intent })
}

/// Logs an accepted change once, with how it was authorized.
pub fn log_accepted(admitted: &Admitted, actor: &Actor) {
    tracing::info!(
        subject = %admitted.package,
        action = admitted.intent.change.action(),
        user = %actor.user.name,
        role = ?admitted.role,
        tapped = admitted.evidence.is_tap(),
        change = %admitted.intent.describe(),
        "gated change committed"
    );
}

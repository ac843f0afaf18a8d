//! Who may ask for a change to a package, and in which role. Asking is not doing: the gate then
//! decides what evidence the change needs.
//!
//! - Maintainers may ask for any change to their package.
//! - Anyone may claim a name nobody holds by publishing it, unless it is scoped: `@alice/…`
//!   belongs to the user alice, other scopes to the users an administrator gave them.
//! - A name that exists without maintainers was reserved by the operator: nobody claims it.
//! - A name this registry served from its upstream is not claimed by publishing either: an
//!   administrator reserves it for its owner (dependency confusion the other way round).
//! - Administrators may change a package's maintainers and policy, always with their own tap.

use super::{GateError, PolicyInForce, Role};
use crate::state::AppState;
use crate::store::users::User;

/// What the actor wants to do, for the role decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asking {
    /// Publish a version (may claim a free name).
    Publish,
    /// Change tags, deprecations or versions (maintainers only).
    Release,
    /// Change maintainers (maintainers, or administrators).
    Maintainers,
    /// Change the policy (administrators).
    Policy,
}

/// The scope of a scoped name (`@acme` of `@acme/pkg`).
pub fn scope_of(package: &str) -> Option<&str> {
    package.starts_with('@').then(|| package.split('/').next()).flatten()
}

/// Decides the role `actor` acts in on `package`, or refuses with a sentence that says whom to
/// ask. `token_admin`: the token carries the admin scope and the user is an administrator.
pub async fn role_for(
    state: &AppState,
    actor: &User,
    token_admin: bool,
    package: &str,
    policy: &PolicyInForce,
    asking: Asking,
) -> Result<Role, GateError> {
    if asking == Asking::Policy {
        return if token_admin {
            Ok(Role::Admin)
        } else {
            Err(GateError::Forbidden("only administrators change package policies".into()))
        };
    }
    let maintainers = state.store.maintainers(package).await?;
    if maintainers.iter().any(|(id, _)| *id == actor.id) {
        return Ok(Role::Maintainer);
    }
    if asking == Asking::Maintainers && token_admin && policy.exists {
        return Ok(Role::Admin);
    }
    if !policy.exists {
        if asking != Asking::Publish {
            return Err(GateError::NotFound(format!("package {package:?} is not in this registry")));
        }
        check_scope(state, actor, package).await?;
        if state.store.upstream_name_served(package).await? {
            return Err(GateError::Forbidden(crate::upstream::claim_refusal(package)));
        }
        return Ok(Role::Claimant);
    }
    if maintainers.is_empty() {
        return Err(GateError::Forbidden(format!(
            "{package} is reserved by this registry's administrators: ask one of them to make you a maintainer"
        )));
    }
    let names: Vec<&str> = maintainers.iter().map(|(_, n)| n.as_str()).collect();
    Err(GateError::Forbidden(format!(
        "you are not a maintainer of {package}: ask one of its maintainers ({}) to add you",
        names.join(", ")
    )))
}

/// A scoped name may be claimed only by the scope's owner.
async fn check_scope(state: &AppState, actor: &User, package: &str) -> Result<(), GateError> {
    let Some(scope) = scope_of(package) else {
        return Ok(());
    };
    if scope.strip_prefix('@') == Some(actor.name.as_str()) {
        return Ok(());
    }
    let owners = state.store.scope_owners(scope).await?;
    if owners.contains(&actor.name) {
        return Ok(());
    }
    let whom = if owners.is_empty() {
        format!(
            "nobody owns it yet: ask an administrator to give it to you (`tapgate-server scope add {scope} --owner {}`)",
            actor.name
        )
    } else {
        format!("ask its owners ({}) to publish it or to have an administrator add you", owners.join(", "))
    };
    Err(GateError::Forbidden(format!("the scope {scope} does not belong to you: {whom}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn scopes_are_the_first_segment_of_scoped_names() {
        assert_eq!(super::scope_of("@acme/pkg"), Some("@acme"));
        assert_eq!(super::scope_of("left-pad"), None);
    }
}

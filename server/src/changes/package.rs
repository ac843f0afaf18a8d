//! Changes to a package other than publishing: dist-tags, deprecation, unpublish, maintainers,
//! policy.

use tapgate_shared::gate_intent::{Change, Deprecation};

use super::{Actor, admit, admit_under, log_accepted};
use crate::gate::roles::Asking;
use crate::gate::{self, Facts, GateError, approvers, committed};
use crate::policy::Policy;
use crate::state::AppState;
use crate::store::changes::Unpublished;
use crate::store::packages::VersionRow;

/// The longest deprecation message accepted (installers print it on one line).
pub const MAX_DEPRECATION_CHARS: usize = 1024;

fn not_published(package: &str, version: &str) -> GateError {
    GateError::NotFound(format!("{package}@{version} is not published in this registry"))
}

fn unchanged(what: String) -> GateError {
    GateError::Conflict(format!("{what}: nothing to change"))
}

/// The versions of `package` that are served.
pub async fn served_versions(state: &AppState, package: &str) -> Result<Vec<VersionRow>, GateError> {
    Ok(state.store.versions(package).await?.into_iter().filter(|v| v.unpublished_at.is_none()).collect())
}

async fn served(state: &AppState, package: &str, version: &str) -> Result<VersionRow, GateError> {
    state
        .store
        .version(package, version)
        .await?
        .filter(|v| v.unpublished_at.is_none())
        .ok_or_else(|| not_published(package, version))
}

/// Points `tag` at `version`.
pub async fn set_tag(
    state: &AppState,
    actor: &Actor,
    package: &str,
    tag: &str,
    version: &str,
    otp: Option<&str>,
) -> Result<(), GateError> {
    served(state, package, version).await?;
    let previous = state.store.dist_tags(package).await?.remove(tag);
    if previous.as_deref() == Some(version) {
        return Err(unchanged(format!("the tag {tag} of {package} already points at {version}")));
    }
    let change = Change::DistTagSet { tag: tag.into(), version: version.into(), previous: previous.clone() };
    let admitted = admit(state, actor, package, Asking::Release, change, otp).await?;
    let guard = admitted.guard(actor, state.now());
    committed(state.store.set_dist_tag(package, tag, version, previous.as_deref(), &guard).await, package)?;
    log_accepted(&admitted, actor);
    Ok(())
}

/// Removes `tag` (never `latest`).
pub async fn remove_tag(
    state: &AppState,
    actor: &Actor,
    package: &str,
    tag: &str,
    otp: Option<&str>,
) -> Result<(), GateError> {
    if tag == "latest" {
        return Err(GateError::Conflict(
            "the latest tag cannot be removed; point it elsewhere instead".into(),
        ));
    }
    let version = state
        .store
        .dist_tags(package)
        .await?
        .remove(tag)
        .ok_or_else(|| GateError::NotFound(format!("{package} has no dist-tag {tag:?}")))?;
    let change = Change::DistTagRemove { tag: tag.into(), version: version.clone() };
    let admitted = admit(state, actor, package, Asking::Release, change, otp).await?;
    let guard = admitted.guard(actor, state.now());
    committed(state.store.remove_dist_tag(package, tag, &version, &guard).await, package)?;
    log_accepted(&admitted, actor);
    Ok(())
}

/// Sets or lifts deprecation messages; `wanted` holds (version, message), message "" lifts.
/// Only versions whose message actually changes are part of the intent.
pub async fn deprecate(
    state: &AppState,
    actor: &Actor,
    package: &str,
    wanted: &[(String, String)],
    otp: Option<&str>,
) -> Result<Vec<Deprecation>, GateError> {
    let current = served_versions(state, package).await?;
    let mut versions = Vec::new();
    for (version, message) in wanted {
        if message.chars().count() > MAX_DEPRECATION_CHARS || message.chars().any(char::is_control) {
            return Err(GateError::Invalid(format!(
                "a deprecation message is one line of at most {MAX_DEPRECATION_CHARS} characters"
            )));
        }
        let row =
            current.iter().find(|v| v.version == *version).ok_or_else(|| not_published(package, version))?;
        if row.deprecated.as_deref().unwrap_or("") != message {
            versions.push(Deprecation { version: version.clone(), message: message.clone() });
        }
    }
    if versions.is_empty() {
        return Err(unchanged(format!("every named version of {package} already has this deprecation")));
    }
    let admitted =
        admit(state, actor, package, Asking::Release, Change::Deprecate { versions: versions.clone() }, otp)
            .await?;
    let guard = admitted.guard(actor, state.now());
    let pairs: Vec<(String, String)> =
        versions.iter().map(|d| (d.version.clone(), d.message.clone())).collect();
    committed(state.store.deprecate(package, &pairs, &guard).await, package)?;
    log_accepted(&admitted, actor);
    Ok(versions)
}

/// Stops serving one version; the number is never reused.
pub async fn unpublish_version(
    state: &AppState,
    actor: &Actor,
    package: &str,
    version: &str,
    otp: Option<&str>,
) -> Result<Unpublished, GateError> {
    let row = served(state, package, version).await?;
    let change = Change::Unpublish { version: version.into(), integrity: row.integrity.clone() };
    let admitted = admit(state, actor, package, Asking::Release, change, otp).await?;
    let guard = admitted.guard(actor, state.now());
    let done =
        committed(state.store.unpublish_version(package, version, &row.integrity, &guard).await, package)?;
    log_accepted(&admitted, actor);
    Ok(done)
}

/// Stops serving every version; the name stays with its maintainers.
pub async fn unpublish_package(
    state: &AppState,
    actor: &Actor,
    package: &str,
    otp: Option<&str>,
) -> Result<Vec<String>, GateError> {
    let versions: Vec<String> =
        served_versions(state, package).await?.into_iter().map(|v| v.version).collect();
    if versions.is_empty() {
        return Err(GateError::NotFound(format!("{package} has no published versions")));
    }
    let change = Change::UnpublishPackage { versions: versions.clone() };
    let admitted = admit(state, actor, package, Asking::Release, change, otp).await?;
    let guard = admitted.guard(actor, state.now());
    committed(state.store.unpublish_package(package, &versions, &guard).await, package)?;
    log_accepted(&admitted, actor);
    Ok(versions)
}

/// Makes `username` a maintainer.
pub async fn add_maintainer(
    state: &AppState,
    actor: &Actor,
    package: &str,
    username: &str,
    otp: Option<&str>,
) -> Result<(), GateError> {
    let target = state
        .store
        .user_by_name(username)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| GateError::NotFound(format!("no user named {username:?}")))?;
    if state.store.is_maintainer(package, &target.id).await? {
        return Err(unchanged(format!("{username} is already a maintainer of {package}")));
    }
    let policy = gate::policy_in_force(state, package).await?;
    if policy.policy.all_maintainers_enrolled
        && let Err(needs) = approvers::compliance(state, &policy.policy, &target.id, &target.name).await?
    {
        return Err(GateError::PolicyViolation(format!(
            "{package} requires every maintainer to hold a key that meets its policy, and {needs}; \
             then add them again"
        )));
    }
    let change = Change::MaintainerAdd { user: target.name.clone() };
    let admitted =
        admit_under(state, actor, package, policy, Asking::Maintainers, change, otp, Facts::default())
            .await?;
    let guard = admitted.guard(actor, state.now());
    if !committed(state.store.add_maintainer(package, &target.id, &guard).await, package)? {
        return Err(unchanged(format!("{username} became a maintainer of {package} meanwhile")));
    }
    log_accepted(&admitted, actor);
    Ok(())
}

/// Removes `username` from the maintainers; the last one stays.
pub async fn remove_maintainer(
    state: &AppState,
    actor: &Actor,
    package: &str,
    username: &str,
    otp: Option<&str>,
) -> Result<(), GateError> {
    let maintainers = state.store.maintainers(package).await?;
    let Some((target_id, target_name)) = maintainers.iter().find(|(_, n)| n == username).cloned() else {
        return Err(GateError::NotFound(format!("{username} is not a maintainer of {package}")));
    };
    if maintainers.len() == 1 {
        return Err(GateError::Conflict("a package keeps at least one maintainer: add another first".into()));
    }
    let needed = usize::try_from(gate::policy_in_force(state, package).await?.policy.approvals_needed(true))
        .unwrap_or(usize::MAX);
    if maintainers.len() - 1 < needed {
        return Err(GateError::Conflict(format!(
            "{package}'s policy needs {needed} maintainers to approve some of its changes; without {username} it \
             would have {}: add another maintainer first, or have an administrator lower the policy",
            maintainers.len() - 1
        )));
    }
    let change = Change::MaintainerRemove { user: target_name };
    let admitted = admit(state, actor, package, Asking::Maintainers, change, otp).await?;
    let guard = admitted.guard(actor, state.now());
    if !committed(state.store.remove_maintainer(package, &target_id, &guard).await, package)? {
        return Err(unchanged(format!("{username} was removed from {package} meanwhile")));
    }
    log_accepted(&admitted, actor);
    Ok(())
}

/// Replaces the policy of `package` (reserving the name if it is new). Administrators only,
/// always with their tap.
pub async fn set_policy(
    state: &AppState,
    actor: &Actor,
    package: &str,
    new: Policy,
    otp: Option<&str>,
) -> Result<(), GateError> {
    let current = gate::policy_in_force(state, package).await?;
    if current.exists && current.policy == new {
        return Err(unchanged(format!("{package} already has this policy")));
    }
    let maintainers = state.store.maintainers(package).await?.len();
    let needed = new.approvals_needed(true);
    if maintainers > 0 && usize::try_from(needed).unwrap_or(usize::MAX) > maintainers {
        return Err(GateError::Invalid(format!(
            "{package} has {maintainers} maintainer(s), so {needed} distinct approvals could never be given: \
             add maintainers first"
        )));
    }
    let change = Change::PolicySet { old: current.policy.canonical(), new: new.canonical() };
    let admitted =
        admit_under(state, actor, package, current, Asking::Policy, change, otp, Facts::default()).await?;
    let guard = admitted.guard(actor, state.now());
    committed(state.store.set_policy(package, &new.to_stored(), &guard).await, package)?;
    log_accepted(&admitted, actor);
    Ok(())
}

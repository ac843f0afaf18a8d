//! Trusts (trusted publishers): a maintainer lets ID tokens from an issuer the operator trusts,
//! whose claims meet what the trust names, publish the package without a tap at release time.
//! Creating one is a gated change that always needs the creator's tap (it hands out publishing
//! power); for a name nobody holds yet (a pending trusted publisher) whoever could claim it by
//! publishing first may create one. Removing one only takes power away: the token suffices (see
//! [`crate::gate::requirement`]), also while the package is locked.

use sha2::{Digest, Sha256};
use tapgate_shared::gate_intent::Change;
use tapgate_shared::oidc::{PERMISSION_PUBLISH, PERMISSION_STAGE, TrustConfig, is_trust_id, validate_claims};

use super::{Actor, admit, log_accepted};
use crate::clock::rfc3339;
use crate::gate::roles::Asking;
use crate::gate::{GateError, commit_error};
use crate::oidc::{Issuer, IssuerKind};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::gate::CommitError;
use crate::store::oidc::{NewTrust, TrustRow};

/// Trusts one package may hold.
pub const MAX_TRUSTS_PER_PACKAGE: usize = 16;

/// The operator's issuer a trust request names: by URL, by the operator's name, or by npm's
/// provider type.
fn issuer_of<'a>(state: &'a AppState, config: &TrustConfig) -> Result<&'a Issuer, GateError> {
    let oidc = &state.config.oidc;
    if let Some(url) = &config.issuer {
        return oidc.issuer(url).ok_or_else(|| {
            GateError::Invalid(format!("this registry's operator does not trust the issuer {url:?}"))
        });
    }
    if let Some(issuer) = oidc.named(&config.provider) {
        return Ok(issuer);
    }
    let kind = IssuerKind::parse(&config.provider).map_err(|_| {
        GateError::Invalid(format!("this registry trusts no issuer named {:?}", config.provider))
    })?;
    oidc.of_kind(kind).map_err(GateError::Invalid)
}

fn permissions_of(config: &TrustConfig) -> Result<Vec<String>, GateError> {
    let mut permissions = if config.permissions.is_empty() {
        vec![PERMISSION_PUBLISH.to_string()]
    } else {
        config.permissions.clone()
    };
    permissions.sort();
    permissions.dedup();
    if let Some(bad) = permissions.iter().find(|p| *p != PERMISSION_PUBLISH && *p != PERMISSION_STAGE) {
        return Err(GateError::Invalid(format!(
            "unknown permission {bad:?}: use {PERMISSION_PUBLISH} and/or {PERMISSION_STAGE}"
        )));
    }
    Ok(permissions)
}

/// The id of a trust npm asks for without one: derived from what it says and how many such
/// trusts existed, so the request repeated with the ticket names the same change.
fn derived_id(
    package: &str,
    issuer: &str,
    claims: &str,
    permissions: &[String],
    user: &str,
    seen: i64,
) -> String {
    let mut h = Sha256::new();
    for part in [package, issuer, claims, &permissions.join(","), user, &seen.to_string()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("trust_{}", &hex::encode(h.finalize())[..20])
}

/// Creates a trust for `package` with the actor's tap; answers it.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    package: &str,
    config: &TrustConfig,
    otp: Option<&str>,
) -> Result<TrustRow, GateError> {
    if actor.ci.is_some() {
        return Err(GateError::Forbidden("CI cannot create trusts: a maintainer does, with a tap".into()));
    }
    let issuer = issuer_of(state, config)?;
    validate_claims(&config.claims, &issuer.required_claims).map_err(GateError::Invalid)?;
    let claims = serde_json::to_string(&config.claims).map_err(|e| GateError::Invalid(e.to_string()))?;
    let permissions = permissions_of(config)?;
    let existing = state.store.trusts(package).await?;
    if existing.len() >= MAX_TRUSTS_PER_PACKAGE {
        return Err(GateError::Invalid(format!(
            "{package} holds {MAX_TRUSTS_PER_PACKAGE} trusts already: remove one first"
        )));
    }
    let trust_id = match &config.trust_id {
        Some(id) if is_trust_id(id) => id.clone(),
        Some(id) => {
            return Err(GateError::Invalid(format!(
                "{id:?} is not a trust id: use trust_ and 20 lowercase hex digits"
            )));
        }
        None => {
            let seen = state.store.trusts_ever(package, &issuer.url, &claims).await?;
            derived_id(package, &issuer.url, &claims, &permissions, &actor.user.id, seen)
        }
    };
    let provider = if matches!(config.provider.as_str(), "github" | "gitlab" | "circleci") {
        config.provider.clone()
    } else {
        issuer.name.clone()
    };
    let change = Change::TrustCreate {
        trust_id: trust_id.clone(),
        issuer: issuer.url.clone(),
        provider: provider.clone(),
        claims: claims.clone(),
        permissions: permissions.clone(),
    };
    // Asked like a publish: a maintainer, or for a name nobody holds, whoever may claim it.
    let admitted = admit(state, actor, package, Asking::Publish, change, otp).await?;
    let new = NewTrust {
        id: &trust_id,
        package,
        issuer: &issuer.url,
        provider: &provider,
        claims: &claims,
        permissions: &permissions,
        guard: admitted.guard(actor, state.now()),
    };
    state.store.create_trust(&new).await.map_err(|e| match e {
        CommitError::Store(StoreError::Conflict(_)) => GateError::Conflict(format!(
            "a trust {trust_id} exists already: an identical trust is in force, or ask again with another id"
        )),
        other => commit_error(other, package),
    })?;
    log_accepted(&admitted, actor);
    state.store.trust(&trust_id).await?.ok_or_else(|| GateError::Corrupt("a created trust vanished".into()))
}

/// Refuses unless `actor` maintains `package` (or administers the registry); for a name nobody
/// holds yet, answers whose trusts the actor may see (their own).
async fn may_manage(state: &AppState, actor: &Actor, package: &str) -> Result<Option<String>, GateError> {
    if actor.ci.is_some() {
        return Err(GateError::Forbidden("CI cannot manage trusts".into()));
    }
    if state.store.package(package).await?.is_none() {
        return Ok(if actor.admin { None } else { Some(actor.user.id.clone()) });
    }
    if actor.admin || state.store.is_maintainer(package, &actor.user.id).await? {
        return Ok(None);
    }
    Err(GateError::Forbidden(format!("only maintainers of {package} manage its trusts")))
}

/// A package's trusts in force.
pub async fn list(state: &AppState, actor: &Actor, package: &str) -> Result<Vec<TrustRow>, GateError> {
    let only = may_manage(state, actor, package).await?;
    let trusts = state.store.trusts(package).await?;
    Ok(trusts.into_iter().filter(|t| only.as_ref().is_none_or(|u| *u == t.created_by)).collect())
}

/// Removes a trust: tokens it answered stop working at once, even unspent ones.
pub async fn remove(
    state: &AppState,
    actor: &Actor,
    package: &str,
    id: &str,
    otp: Option<&str>,
) -> Result<TrustRow, GateError> {
    let not_found = || GateError::NotFound(format!("{package} has no trust {id:?}"));
    let only = may_manage(state, actor, package).await?;
    let trust = state.store.trust(id).await?.filter(|t| t.package == package && t.removed_at.is_none());
    let trust = trust.filter(|t| only.as_ref().is_none_or(|u| *u == t.created_by)).ok_or_else(not_found)?;
    let change = Change::TrustRemove {
        trust_id: trust.id.clone(),
        issuer: trust.issuer.clone(),
        claims: trust.claims.clone(),
    };
    let asking =
        if state.store.package(package).await?.is_some() { Asking::Release } else { Asking::Publish };
    let admitted = admit(state, actor, package, asking, change, otp).await?;
    state
        .store
        .remove_trust(id, &admitted.guard(actor, state.now()))
        .await
        .map_err(|e| commit_error(e, package))?;
    log_accepted(&admitted, actor);
    state.store.trust(id).await?.ok_or_else(not_found)
}

/// A trust as npm (and `tapgate trust list`) reads it.
pub fn to_wire(t: &TrustRow, created_by: Option<String>) -> TrustConfig {
    TrustConfig {
        id: Some(t.id.clone()),
        provider: t.provider.clone(),
        claims: serde_json::from_str(&t.claims).unwrap_or_default(),
        permissions: t.permission_list(),
        issuer: Some(t.issuer.clone()),
        trust_id: None,
        package: Some(t.package.clone()),
        created_by,
        created_at: Some(rfc3339(t.created_at)),
        approval_id: Some(t.approval_id.clone()),
    }
}

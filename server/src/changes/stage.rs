//! Staged releases (npm's `npm stage`). CI (or a maintainer) uploads a release that nobody is
//! served; a maintainer reviews it and approves it with a tap — which is the ordinary publish of
//! exactly the staged bytes, through the one gate, under the package's policy (N-of-M, attested
//! keys…) — or rejects it with a tap. Staging itself changes nothing installers receive, so it
//! needs no tap; what it may upload is still bounded: only maintainers (or CI credentials within
//! their tapped scope, where the policy lists `"stage"`), only new version numbers, a few
//! pending stages per package, tarballs within the publish limits, and a deadline.

use sha1::{Digest, Sha1};
use tapgate_shared::gate_intent::Change;
use tapgate_shared::intent::sri_sha512;
use tapgate_shared::stage::{StageActor, StageState};

use super::publish::{change_of, check_new_version, publish_from};
use super::{Actor, admit, log_accepted, role_of};
use crate::gate::roles::Asking;
use crate::gate::{GateError, Role, committed, policy_in_force};
use crate::publish::packument::Upload;
use crate::state::AppState;
use crate::store::audit::AuditDraft;
use crate::store::ci::CiCredential;
use crate::store::effects::Effects;
use crate::store::stages::{NewStage, StageCreated, StageRow, StageScope};
use tapgate_shared::api::CiMethod;

/// How long a staged release waits for a maintainer.
pub const STAGE_TTL_SECONDS: i64 = 7 * 86_400;
/// Stages one package may have waiting at once.
pub const MAX_PENDING_STAGES: i64 = 20;

/// What uploaded a stage: the actor it acts for, and through which credential.
#[derive(Debug, Clone, Copy)]
pub enum Uploader<'a> {
    /// A user's API token.
    User,
    /// A CI credential a maintainer authorized with a tap.
    Ci(&'a CiCredential),
    /// A registry token an OIDC ID token was exchanged for, under a trust a maintainer created
    /// with a tap.
    Oidc(&'a super::OidcActor),
}

fn not_found(id: &str) -> GateError {
    GateError::StageNotFound(format!(
        "no staged release {id} among your packages' (`tapgate stage list` shows them)"
    ))
}

/// Refuses, before an upload is read, anyone who may not stage releases of `package`: it must
/// exist, and the actor maintain it.
pub async fn may_stage(state: &AppState, actor: &Actor, package: &str) -> Result<(), GateError> {
    let policy = policy_in_force(state, package).await?;
    if !policy.exists {
        return Err(GateError::NotFound(format!(
            "{package} is not in this registry: publish its first version directly (staging is for releases of existing packages)"
        )));
    }
    if role_of(state, actor, package, &policy, Asking::Publish).await? != Role::Maintainer {
        return Err(GateError::Forbidden(format!("only maintainers of {package} stage its releases")));
    }
    crate::lockout::ensure_unlocked(state, package).await
}

/// Stages `upload` for a maintainer's approval; answers the stage.
pub async fn stage(
    state: &AppState,
    actor: &Actor,
    uploader: Uploader<'_>,
    upload: &Upload,
) -> Result<StageRow, GateError> {
    let package = upload.name.as_str();
    let policy = policy_in_force(state, package).await?;
    if !policy.exists {
        return Err(GateError::NotFound(format!(
            "{package} is not in this registry: publish its first version directly (staging is for releases of existing packages)"
        )));
    }
    if role_of(state, actor, package, &policy, Asking::Publish).await? != Role::Maintainer {
        return Err(GateError::Forbidden(format!("only maintainers of {package} stage its releases")));
    }
    crate::lockout::ensure_unlocked(state, package).await?;
    let Change::Publish { version, tags, .. } = change_of(upload)? else {
        return Err(GateError::Corrupt("a publish's change is not a publish".into()));
    };
    if !matches!(uploader, Uploader::User) && !policy.policy.ci.allows(CiMethod::Stage) {
        return Err(GateError::NotAllowed(format!(
            "the policy of {package} does not let CI stage releases; an administrator can allow it (\"ci\": [\"stage\"])"
        )));
    }
    let (actor_type, actor_ref) = match uploader {
        Uploader::User => (StageActor::User, None),
        Uploader::Ci(credential) => {
            let Some(client) = actor.client.ip else {
                return Err(GateError::OutsideScope(
                    "the client's address is unknown, so this CI credential's networks cannot be checked"
                        .into(),
                ));
            };
            super::ci::check_scope(credential, &version, &tags, client)?;
            (StageActor::CiCredential, Some(credential.id.as_str()))
        }
        Uploader::Oidc(oidc) => {
            if oidc.package != package {
                return Err(GateError::OutsideScope(format!(
                    "this OIDC token acts on {} only, not {package}",
                    oidc.package
                )));
            }
            if !oidc.permissions.iter().any(|p| p == tapgate_shared::oidc::PERMISSION_STAGE) {
                return Err(GateError::OutsideScope(format!(
                    "the trust {} does not let CI stage releases of {package} (only publish): a maintainer can add a trust that does",
                    oidc.trust_id
                )));
            }
            (StageActor::Oidc, Some(oidc.trust_id.as_str()))
        }
    };
    check_new_version(state, package, &version).await?;
    let now = state.now();
    let id = uuid::Uuid::new_v4().to_string();
    let row = StageRow {
        id: id.clone(),
        package: package.to_string(),
        version: version.clone(),
        integrity: upload.integrity.clone(),
        shasum: upload.shasum.clone(),
        tags: tags.clone(),
        size: i64::try_from(upload.tarball.len()).unwrap_or(i64::MAX),
        staged_by: actor.user.id.clone(),
        staged_by_name: actor.user.name.clone(),
        actor_type,
        actor_ref: actor_ref.map(str::to_string),
        client_ip: actor.client.ip_text(),
        user_agent: actor.client.user_agent.clone(),
        created_at: now,
        expires_at: now + STAGE_TTL_SECONDS,
        state: StageState::Pending,
        decided_at: None,
        decided_by_name: None,
    };
    let effects = Effects {
        notice: Some(crate::notify::events::stage_created(state, &row, &actor.client)),
        audit: vec![staged_entry(&row)],
    };
    let new = NewStage {
        id: &id,
        package,
        version: &version,
        integrity: &row.integrity,
        shasum: &row.shasum,
        tags: &tags,
        tarball: &upload.tarball,
        staged_by: &actor.user.id,
        actor_type,
        actor_ref,
        client_ip: row.client_ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
        now,
        expires_at: row.expires_at,
        max_pending: MAX_PENDING_STAGES,
        effects: &effects,
        oidc: match uploader {
            Uploader::Oidc(o) => Some((o.token_hash.as_str(), o.trust_id.as_str())),
            _ => None,
        },
    };
    match state.store.create_stage(&new).await? {
        StageCreated::Created => {}
        StageCreated::TooMany => {
            return Err(GateError::TooManyStages(format!(
                "{package} has {MAX_PENDING_STAGES} staged releases waiting: approve or reject some first (`tapgate stage list {package}`)"
            )));
        }
        StageCreated::VersionExists => {
            return Err(GateError::VersionExists(format!(
                "{package}@{version} was published meanwhile; versions are immutable: bump the version"
            )));
        }
        StageCreated::TokenSpent => {
            return Err(GateError::Unauthenticated(
                "this OIDC token was used already, expired, or its trust was removed: exchange a new ID token".into(),
            ));
        }
        StageCreated::Rejected => {
            return Err(GateError::StageClosed(format!(
                "a maintainer rejected exactly this tarball ({}) of {package} before: fix the release and stage a new build",
                row.integrity
            )));
        }
    }
    tracing::info!(subject = %package, version = %version, stage_id = %id, user = %actor.user.name, actor_type = actor_type.as_str(), "release staged");
    Ok(row)
}

fn staged_entry(row: &StageRow) -> AuditDraft {
    AuditDraft {
        chain: tapgate_shared::audit::package_chain(&row.package),
        kind: "stage.created".into(),
        body: serde_json::json!({
            "stage_id": row.id,
            "version": row.version,
            "integrity": row.integrity,
            "tags": row.tags,
            "staged_by": row.staged_by_name,
            "actor_type": row.actor_type.as_str(),
            "credential": row.actor_ref,
        }),
    }
}

/// The stage `id`, if `actor` may see it: a maintainer of its package, an administrator, or
/// (for `credential`) a CI credential of its package. Anyone else is told it does not exist.
pub async fn visible(
    state: &AppState,
    actor: &Actor,
    credential: Option<&CiCredential>,
    id: &str,
) -> Result<StageRow, GateError> {
    let stage = state.store.stage(id).await?.ok_or_else(|| not_found(id))?;
    let allowed = match credential {
        Some(c) => stage.actor_ref.as_deref() == Some(c.id.as_str()),
        None => actor.admin || state.store.is_maintainer(&stage.package, &actor.user.id).await?,
    };
    if allowed { Ok(stage) } else { Err(not_found(id)) }
}

/// A page of the stages `actor` may see.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    credential: Option<&CiCredential>,
    package: Option<&str>,
    only: Option<StageState>,
    page: i64,
    per_page: i64,
) -> Result<(Vec<StageRow>, i64), GateError> {
    let scope = match credential {
        Some(c) => StageScope::Credential(&c.id),
        None if actor.admin => StageScope::All,
        None => StageScope::MaintainedBy(&actor.user.id),
    };
    let per_page = per_page.clamp(1, 100);
    let offset = page.max(0).saturating_mul(per_page);
    Ok(state.store.stages(scope, package, only, offset, per_page).await?)
}

/// The stage `id`, pending, for `actor` to decide: only its package's maintainers decide
/// (administrators see stages, but a publish is a maintainer's).
async fn decidable(state: &AppState, actor: &Actor, id: &str) -> Result<StageRow, GateError> {
    let stage = visible(state, actor, None, id).await?;
    if !state.store.is_maintainer(&stage.package, &actor.user.id).await? {
        return Err(GateError::Forbidden(format!(
            "only maintainers of {} approve or reject its staged releases",
            stage.package
        )));
    }
    ensure_pending(&stage, state.now())?;
    Ok(stage)
}

/// Refuses a CI-staged release whose credential was revoked since, whose creator no longer
/// maintains the package, or whose package no longer lets CI stage: what the package's
/// maintainers withdrew their trust from is not published, even with a tap.
async fn still_trusted(state: &AppState, stage: &StageRow) -> Result<(), GateError> {
    let closed = |why: String| {
        Err(GateError::StageClosed(format!("the staged release {} {why}: stage it again", stage.id)))
    };
    if stage.actor_type == StageActor::CiCredential {
        let credential = match &stage.actor_ref {
            Some(id) => state.store.ci_credential(id).await?,
            None => None,
        };
        match credential {
            None => return closed("names no CI credential this registry knows".into()),
            Some(c) if c.revoked_at.is_some() => {
                return closed(format!("came from the CI credential {}, revoked since", c.id));
            }
            Some(_) => {}
        }
    }
    if stage.actor_type == StageActor::Oidc {
        let trust = match &stage.actor_ref {
            Some(id) => state.store.trust(id).await?,
            None => None,
        };
        match trust {
            Some(t) if t.removed_at.is_none() => {}
            _ => return closed("came through a trust that was removed since".into()),
        }
    }
    if stage.actor_type != StageActor::User
        && !policy_in_force(state, &stage.package).await?.policy.ci.allows(CiMethod::Stage)
    {
        return Err(GateError::NotAllowed(format!(
            "the policy of {} no longer lets CI stage releases; the staged release {} cannot be approved",
            stage.package, stage.id
        )));
    }
    if !state.store.is_maintainer(&stage.package, &stage.staged_by).await? {
        return closed(format!(
            "was staged for {}, who no longer maintains {}",
            stage.staged_by_name, stage.package
        ));
    }
    Ok(())
}

/// Refuses unless the stage can still be decided.
fn ensure_pending(stage: &StageRow, now: i64) -> Result<(), GateError> {
    match stage.state_at(now) {
        StageState::Pending => Ok(()),
        state => Err(GateError::StageClosed(format!(
            "the staged release {} ({}@{}) is {}: it can no longer be approved or rejected",
            stage.id,
            stage.package,
            stage.version,
            state.as_str()
        ))),
    }
}

/// The pending stage's tarball, re-read and re-checked against what was staged.
pub async fn tarball(state: &AppState, stage: &StageRow) -> Result<Vec<u8>, GateError> {
    let bytes = state.store.stage_tarball(&stage.id).await?.ok_or_else(|| {
        GateError::StageClosed(format!("the staged release {} has no tarball any more", stage.id))
    })?;
    let (bytes, integrity, shasum) = tokio::task::spawn_blocking(move || {
        let (integrity, shasum) = (sri_sha512(&bytes), hex::encode(Sha1::digest(&bytes)));
        (bytes, integrity, shasum)
    })
    .await
    .map_err(|e| GateError::Corrupt(e.to_string()))?;
    if integrity != stage.integrity || shasum != stage.shasum {
        tracing::error!(stage_id = %stage.id, subject = %stage.package, "a staged tarball no longer matches its integrity");
        return Err(GateError::Conflict(format!(
            "the stored tarball of the staged release {} no longer matches the integrity it was staged with: \
             reject it and stage the release again (and ask the operator to check the database)",
            stage.id
        )));
    }
    Ok(bytes)
}

/// Approves the stage `id` as `actor`: publishes exactly its bytes through the gate (without
/// `otp`, the gate answers the approval to tap). The package's policy decides how many taps.
pub async fn approve(
    state: &AppState,
    actor: &Actor,
    id: &str,
    otp: Option<&str>,
) -> Result<StageRow, GateError> {
    let stage = decidable(state, actor, id).await?;
    if otp.is_some_and(crate::gate::deploy_keys::is_deploy_key) {
        return Err(GateError::InvalidTicket(
            "a staged release is approved with a maintainer's tap, not a deploy key".into(),
        ));
    }
    still_trusted(state, &stage).await?;
    let bytes = tarball(state, &stage).await?;
    let (manifest, bytes) =
        tokio::task::spawn_blocking(move || (crate::publish::tarball::manifest(&bytes), bytes))
            .await
            .map_err(|e| GateError::Corrupt(e.to_string()))?;
    let manifest = manifest.map_err(|e| {
        GateError::Corrupt(format!("the staged tarball of {} cannot be read: {}", stage.id, e.message))
    })?;
    let upload = Upload {
        name: stage.package.clone(),
        version: stage.version.clone(),
        manifest,
        tarball: bytes,
        integrity: stage.integrity.clone(),
        shasum: stage.shasum.clone(),
        tags: stage.tags.clone(),
    };
    publish_from(state, actor, &upload, otp, Some(&stage.id)).await?;
    state.store.stage(id).await?.ok_or_else(|| not_found(id))
}

/// Rejects the stage `id` with `actor`'s tap (always a tap, one maintainer's even on a critical
/// package: a token alone could otherwise throw away every release CI prepares, and rejecting
/// only ever keeps bytes from being served).
pub async fn reject(
    state: &AppState,
    actor: &Actor,
    id: &str,
    otp: Option<&str>,
) -> Result<StageRow, GateError> {
    let stage = decidable(state, actor, id).await?;
    let change = Change::StageReject {
        stage_id: stage.id.clone(),
        version: stage.version.clone(),
        integrity: stage.integrity.clone(),
    };
    let admitted = admit(state, actor, &stage.package, Asking::Release, change, otp).await?;
    let guard = admitted.guard(actor, state.now());
    committed(state.store.reject_stage(&stage, &guard).await, &stage.package)?;
    log_accepted(&admitted, actor);
    state.store.stage(id).await?.ok_or_else(|| not_found(id))
}

//! Publishing a version: the intent commits to the exact tarball (its SHA-512 integrity) and the
//! tags the publish sets.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tapgate_shared::gate_intent::Change;

use super::{Actor, Asked, admit_asked, log_accepted};
use crate::gate::roles::Asking;
use crate::gate::{Evidence, Facts, GateError, commit_error, policy_in_force};
use crate::publish::packument::{Upload, stored_manifest};
use crate::publish::served::{MAX_STORED_MANIFEST_BYTES, abbreviate};
use crate::state::AppState;
use crate::store::gate::CommitError;
use crate::store::packages::PublishRecord;

/// The publish intent's change for an upload.
pub fn change_of(upload: &Upload) -> Result<Change, GateError> {
    let mut tags = upload.tags.clone();
    tags.sort();
    tags.dedup();
    if tags.len() > MAX_TAGS_PER_PUBLISH {
        return Err(GateError::Invalid(format!(
            "a publish sets at most {MAX_TAGS_PER_PUBLISH} dist-tags; point more with npm dist-tag afterwards"
        )));
    }
    Ok(Change::Publish { version: upload.version.clone(), integrity: upload.integrity.clone(), tags })
}

/// Dist-tags one publish may set.
pub const MAX_TAGS_PER_PUBLISH: usize = 16;

/// Refuses a version number that was ever used.
pub async fn check_new_version(state: &AppState, package: &str, version: &str) -> Result<(), GateError> {
    match state.store.version(package, version).await? {
        None => Ok(()),
        Some(row) if row.unpublished_at.is_some() => Err(GateError::VersionExists(format!(
            "{package}@{version} was unpublished; version numbers are never reused: bump the version and publish again"
        ))),
        Some(_) => Err(GateError::VersionExists(format!(
            "{package}@{version} is already published; versions are immutable: bump the version and publish again"
        ))),
    }
}

/// Whether `actor` may write to `package` at all (maintain it, or claim it): decided before an
/// upload is read.
pub async fn may_write(state: &AppState, actor: &Actor, package: &str) -> Result<(), GateError> {
    let policy = crate::gate::policy_in_force(state, package).await?;
    super::role_of(state, actor, package, &policy, Asking::Publish).await?;
    crate::lockout::ensure_unlocked(state, package).await
}

/// The lifecycle scripts npm runs when a package is installed (or, for `prepare`, installed
/// from git).
pub const INSTALL_SCRIPTS: [&str; 4] = ["preinstall", "install", "postinstall", "prepare"];

/// A manifest's install scripts, by name.
pub fn install_scripts(manifest: &Map<String, Value>) -> BTreeMap<&'static str, String> {
    let scripts = manifest.get("scripts").and_then(Value::as_object);
    INSTALL_SCRIPTS
        .iter()
        .filter_map(|name| {
            let script = scripts?.get(*name)?;
            Some((*name, script.as_str().map_or_else(|| script.to_string(), str::to_string)))
        })
        .collect()
}

/// Whether publishing `manifest` adds or changes install scripts against the previous version:
/// the one served that was published last (none: any install script is new).
pub async fn scripts_changed(
    state: &AppState,
    package: &str,
    manifest: &Map<String, Value>,
) -> Result<bool, GateError> {
    let previous = super::package::served_versions(state, package).await?.into_iter().max_by(|a, b| {
        a.published_at
            .cmp(&b.published_at)
            .then_with(|| crate::names::compare_versions(&a.version, &b.version))
    });
    let before = match previous {
        Some(row) => match serde_json::from_str::<Value>(&row.manifest) {
            Ok(Value::Object(m)) => install_scripts(&m),
            _ => {
                return Err(GateError::Corrupt(format!(
                    "the stored manifest of {package}@{} is corrupt",
                    row.version
                )));
            }
        },
        None => BTreeMap::new(),
    };
    let after = install_scripts(manifest);
    Ok(after.iter().any(|(name, script)| before.get(name) != Some(script)))
}

/// Publishes `upload` through the gate.
pub async fn publish(
    state: &AppState,
    actor: &Actor,
    upload: &Upload,
    otp: Option<&str>,
) -> Result<(), GateError> {
    publish_from(state, actor, upload, otp, None).await
}

/// [`publish`], approving the staged release `stage` (whose bytes `upload` holds): the stage is
/// marked published in the publish's transaction, or the publish does not happen.
pub async fn publish_from(
    state: &AppState,
    actor: &Actor,
    upload: &Upload,
    otp: Option<&str>,
    stage: Option<&str>,
) -> Result<(), GateError> {
    let change = change_of(upload)?;
    // A deploy key is checked first: a reused one is refused as such. Anything else first
    // checks the number, so no approval is ever recorded for a version that exists.
    let with_deploy_key = otp.is_some_and(crate::gate::deploy_keys::is_deploy_key);
    if !with_deploy_key {
        check_new_version(state, &upload.name, &upload.version).await?;
    }
    let policy = policy_in_force(state, &upload.name).await?;
    let facts = if policy.policy.approvals_when_scripts_change.is_some() {
        Facts { scripts_changed: scripts_changed(state, &upload.name, &upload.manifest).await? }
    } else {
        Facts::default()
    };
    let asked = Asked { asking: Asking::Publish, change, otp, tarball: Some(&upload.tarball), facts };
    let admitted = admit_asked(state, actor, &upload.name, policy, asked).await?;
    if with_deploy_key {
        check_new_version(state, &upload.name, &upload.version).await?;
    }
    let manifest_value = stored_manifest(upload, &state.config.url(""));
    let manifest = manifest_value.to_string();
    let abbreviated = abbreviate(&manifest_value).to_string();
    if manifest.len() > MAX_STORED_MANIFEST_BYTES {
        return Err(GateError::TooLarge(format!(
            "package.json of {}@{} is {} bytes; this registry stores at most {MAX_STORED_MANIFEST_BYTES} bytes of metadata per version: move large fields (readme, data) into files",
            upload.name,
            upload.version,
            manifest.len()
        )));
    }
    let Change::Publish { tags, .. } = &admitted.intent.change else {
        return Err(GateError::Corrupt("a publish admitted another change".into()));
    };
    let record = PublishRecord {
        package: &upload.name,
        version: &upload.version,
        manifest: &manifest,
        abbreviated: &abbreviated,
        tarball: &upload.tarball,
        integrity: &upload.integrity,
        shasum: &upload.shasum,
        guard: admitted.guard(actor, state.now()),
        tags,
        stage,
    };
    state.store.publish(&record).await.map_err(|e| match (e, &admitted.evidence) {
        (CommitError::EvidenceSpent, Evidence::DeployKey { .. }) => GateError::InvalidDeployKey(
            "this deploy key was used meanwhile, expired, or its CI credential was revoked".into(),
        ),
        (CommitError::EvidenceSpent, Evidence::Oidc { .. }) => GateError::Oidc(
            crate::oidc::OidcFailure::Invalid,
            "this OIDC token was used meanwhile, expired, or its trust was removed".into(),
        ),
        (e, _) => commit_error(e, &upload.name),
    })?;
    log_accepted(&admitted, actor);
    Ok(())
}

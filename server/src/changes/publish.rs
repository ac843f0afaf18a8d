//! Publishing a version: the intent commits to the exact tarball (its SHA-512 integrity) and the
//! tags the publish sets.

use tapgate_shared::gate_intent::Change;

use super::{Actor, admit, log_accepted};
use crate::gate::roles::Asking;
use crate::gate::{GateError, committed};
use crate::publish::packument::{Upload, stored_manifest};
use crate::publish::served::MAX_STORED_MANIFEST_BYTES;
use crate::state::AppState;
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

/// Publishes `upload` through the gate.
pub async fn publish(
    state: &AppState,
    actor: &Actor,
    upload: &Upload,
    otp: Option<&str>,
) -> Result<(), GateError> {
    check_new_version(state, &upload.name, &upload.version).await?;
    let change = change_of(upload)?;
    let admitted = admit(state, actor, &upload.name, Asking::Publish, change, otp).await?;
    let manifest = stored_manifest(upload, &state.config.url("")).to_string();
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
        tarball: &upload.tarball,
        integrity: &upload.integrity,
        shasum: &upload.shasum,
        guard: admitted.guard(actor, state.now()),
        tags,
    };
    committed(state.store.publish(&record).await, &upload.name)?;
    log_accepted(&admitted, actor);
    Ok(())
}

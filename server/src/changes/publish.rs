//! Publishing a version: the intent commits to the exact tarball (its SHA-512 integrity) and the
//! tags the publish sets.

use tapgate_shared::gate_intent::Change;

use super::{Actor, admit, log_accepted};
use crate::gate::roles::Asking;
use crate::gate::{GateError, committed};
use crate::publish::packument::{Upload, stored_manifest};
use crate::state::AppState;
use crate::store::packages::PublishRecord;

/// The publish intent's change for an upload.
pub fn change_of(upload: &Upload) -> Change {
    let mut tags = upload.tags.clone();
    tags.sort();
    tags.dedup();
    Change::Publish { version: upload.version.clone(), integrity: upload.integrity.clone(), tags }
}

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

/// Publishes `upload` through the gate.
pub async fn publish(
    state: &AppState,
    actor: &Actor,
    upload: &Upload,
    otp: Option<&str>,
) -> Result<(), GateError> {
    check_new_version(state, &upload.name, &upload.version).await?;
    let change = change_of(upload);
    let admitted = admit(state, actor, &upload.name, Asking::Publish, change, otp).await?;
    let manifest = stored_manifest(upload, &state.config.url("")).to_string();
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

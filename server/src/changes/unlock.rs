//! Lifting a package's lock: a gated change like every other, asked for by a maintainer (or an
//! administrator) and approved with the taps the package's policy demands (under an N-of-M
//! policy, N maintainers). The intent names the lock, so a tap lifts that lock and no later one.

use tapgate_shared::gate_intent::Change;

use super::{Actor, admit, log_accepted};
use crate::clock::rfc3339;
use crate::gate::roles::Asking;
use crate::gate::{GateError, committed};
use crate::state::AppState;
use crate::store::lockout::PackageLock;

/// Unlocks `package`; answers the lock that was lifted.
pub async fn unlock(
    state: &AppState,
    actor: &Actor,
    package: &str,
    otp: Option<&str>,
) -> Result<PackageLock, GateError> {
    let lock = state
        .store
        .package_lock(package)
        .await?
        .ok_or_else(|| GateError::Conflict(format!("{package} is not locked: nothing to unlock")))?;
    let change = Change::Unlock { lock_id: lock.lock_id.clone(), locked_at: rfc3339(lock.locked_at) };
    let admitted = admit(state, actor, package, Asking::Maintainers, change, otp).await?;
    let guard = admitted.guard(actor, state.now());
    committed(state.store.unlock_package(package, &lock.lock_id, &guard).await, package)?;
    log_accepted(&admitted, actor);
    Ok(lock)
}

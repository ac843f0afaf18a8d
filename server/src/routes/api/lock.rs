//! `GET /api/v1/packages/{name}/lock` (anyone: a lock is no secret, and reads go on while it
//! holds) and `POST /api/v1/packages/{name}/unlock` (a gated change: the maintainers' taps).

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use tapgate_shared::api::{LockStatus, PackageLockInfo, Scope};

use crate::auth::{AuthUser, otp};
use crate::changes::unlock::unlock as unlock_package;
use crate::clock::rfc3339;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::routes::npm::packages::package_not_found;
use crate::state::AppState;
use crate::store::lockout::PackageLock;

pub fn routes() -> Router<AppState> {
    Router::new().route("/packages/{name}/lock", get(show)).route("/packages/{name}/unlock", post(unlock))
}

/// A lock as the API shows it.
pub fn info(package: &str, lock: &PackageLock) -> PackageLockInfo {
    PackageLockInfo {
        lock_id: lock.lock_id.clone(),
        locked_at: rfc3339(lock.locked_at),
        failures: u64::try_from(lock.failures).unwrap_or(0),
        unlock: format!("a maintainer unlocks it with a tap: `tapgate unlock {package}`"),
    }
}

async fn show(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<LockStatus>> {
    if state.store.package(&name).await?.is_none() {
        return Err(package_not_found(&name));
    }
    let lock = state.store.package_lock(&name).await?.map(|l| info(&name, &l));
    Ok(Json(LockStatus { package: name, lock }))
}

async fn unlock(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<LockStatus>> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    unlock_package(&state, &actor, &name, otp(&headers)).await?;
    Ok(Json(LockStatus { package: name, lock: None }))
}

//! Changing a package's maintainers: handing over (or taking away) the power to publish. The
//! caller must be a maintainer with a key sign-in from the last 15 minutes, or an administrator.

use tapgate_shared::ErrorCode;
use tapgate_shared::api::Scope;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::api::registrations::require_fresh_login;
use crate::routes::npm::packages::package_not_found;
use crate::state::AppState;
use crate::store::StoreError;

async fn authorize(state: &AppState, user: &AuthUser, name: &str) -> ApiResult<()> {
    if state.store.package(name).await?.is_none() {
        return Err(package_not_found(name));
    }
    if user.require(Scope::Admin).is_ok() {
        return Ok(());
    }
    user.require(Scope::Publish)?;
    if !state.store.is_maintainer(name, &user.0.user_id).await? {
        return Err(ApiError::forbidden(format!("only maintainers of {name} may change its maintainers")));
    }
    require_fresh_login(user.0.source, user.0.created_at, state.now())
}

/// Makes `username` a maintainer of `name` (no-op if already one).
pub async fn add(state: &AppState, user: &AuthUser, name: &str, username: &str) -> ApiResult<()> {
    authorize(state, user, name).await?;
    let target = state
        .store
        .user_by_name(username)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::not_found(format!("no user named {username:?}")))?;
    if state.store.add_maintainer(name, &target.id, state.now()).await? {
        tracing::info!(package = %name, maintainer = %username, by = %user.0.username, "maintainer added");
    }
    Ok(())
}

/// Removes `username` from the maintainers of `name`; the last one stays.
pub async fn remove(state: &AppState, user: &AuthUser, name: &str, username: &str) -> ApiResult<()> {
    authorize(state, user, name).await?;
    let target = state
        .store
        .user_by_name(username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named {username:?}")))?;
    match state.store.remove_maintainer(name, &target.id).await {
        Ok(true) => {
            tracing::info!(package = %name, maintainer = %username, by = %user.0.username, "maintainer removed");
            Ok(())
        }
        Ok(false) => Err(ApiError::not_found(format!("{username} is not a maintainer of {name}"))),
        Err(StoreError::Conflict(msg)) => Err(ApiError::conflict(ErrorCode::Conflict, msg)),
        Err(e) => Err(e.into()),
    }
}

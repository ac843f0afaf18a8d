//! Publishing: reading npm's publish document, checking the tarball against it, the
//! second-factor gate, and the packument served back.

pub mod approvals;
pub mod owners;
pub mod packument;
pub mod tarball;

use tapgate_shared::api::{PackagePolicy, SecondFactor};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The policy in force for `package`: its own, or the server default for new packages.
pub async fn policy_for(state: &AppState, package: &str) -> ApiResult<PackagePolicy> {
    match state.store.package(package).await? {
        Some(row) => serde_json::from_str(&row.policy)
            .map_err(|e| ApiError::internal(format!("corrupt policy for {package}: {e}"))),
        None => Ok(default_policy(state)),
    }
}

pub fn default_policy(state: &AppState) -> PackagePolicy {
    PackagePolicy { second_factor: state.config.default_policy }
}

pub fn requires_key(policy: &PackagePolicy) -> bool {
    policy.second_factor == SecondFactor::SecurityKey
}

/// Whether `user_id` may publish `package`: a maintainer, or anyone while it has none.
pub async fn may_publish(state: &AppState, package: &str, user_id: &str) -> ApiResult<bool> {
    let maintainers = state.store.maintainers(package).await?;
    Ok(maintainers.is_empty() || maintainers.iter().any(|(id, _)| id == user_id))
}

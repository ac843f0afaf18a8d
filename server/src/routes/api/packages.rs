//! `GET /api/v1/packages/{name}`, `PUT /api/v1/packages/{name}/policy` (admins),
//! maintainers: `GET …/maintainers`, `PUT|DELETE …/maintainers/{user}` (maintainers, with a
//! recent key sign-in: adding a maintainer hands over publishing power), and the approval
//! record of a version: `GET …/versions/{version}/approval`.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{ApprovalRecord, Maintainers, PackageInfo, PackagePolicy, Scope};
use tapgate_shared::intent::Intent;

use crate::auth::AuthUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::names::validate_package_name;
use crate::publish::{owners, policy_for};
use crate::routes::npm::packages::package_not_found;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/packages/{name}", get(show))
        .route("/packages/{name}/policy", put(set_policy))
        .route("/packages/{name}/maintainers", get(maintainers))
        .route("/packages/{name}/maintainers/{user}", put(add_maintainer).delete(remove_maintainer))
        .route("/packages/{name}/versions/{version}/approval", get(approval_record))
}

async fn show(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<PackageInfo>> {
    if state.store.package(&name).await?.is_none() {
        return Err(package_not_found(&name));
    }
    Ok(Json(PackageInfo {
        policy: policy_for(&state, &name).await?,
        maintainers: state.store.maintainers(&name).await?.into_iter().map(|(_, n)| n).collect(),
        versions: state.store.versions(&name).await?.into_iter().map(|v| v.version).collect(),
        dist_tags: state.store.dist_tags(&name).await?,
        name,
    }))
}

async fn set_policy(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    Json(policy): Json<PackagePolicy>,
) -> ApiResult<Json<PackagePolicy>> {
    user.require(Scope::Admin)?;
    validate_package_name(&name).map_err(|m| ApiError::bad_request(ErrorCode::InvalidName, m))?;
    let text = serde_json::to_string(&policy).map_err(ApiError::internal)?;
    state.store.set_policy(&name, &text, state.now()).await?;
    tracing::info!(package = %name, policy = %text, admin = %user.0.username, "package policy set");
    Ok(Json(policy))
}

async fn maintainers(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Maintainers>> {
    if state.store.package(&name).await?.is_none() {
        return Err(package_not_found(&name));
    }
    let maintainers = state.store.maintainers(&name).await?.into_iter().map(|(_, n)| n).collect();
    Ok(Json(Maintainers { package: name, maintainers }))
}

async fn add_maintainer(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, username)): Path<(String, String)>,
) -> ApiResult<Json<Maintainers>> {
    owners::add(&state, &user, &name, &username).await?;
    maintainers(State(state), Path(name)).await
}

async fn remove_maintainer(
    State(state): State<AppState>,
    user: AuthUser,
    Path((name, username)): Path<(String, String)>,
) -> ApiResult<Json<Maintainers>> {
    owners::remove(&state, &user, &name, &username).await?;
    maintainers(State(state), Path(name)).await
}

async fn approval_record(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<ApprovalRecord>> {
    let row = state.store.version(&name, &version).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::PackageNotFound,
            format!("{name}@{version} is not in this registry"),
        )
    })?;
    let not_approved = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!(
                "{name}@{version} was published without a security-key approval (its policy did not require one)"
            ),
        )
    };
    let approval_id = row.approval_id.ok_or_else(not_approved)?;
    let a = state.store.approval(&approval_id).await?.ok_or_else(not_approved)?;
    let requester = state.store.user_by_id(&a.requested_by).await?.map(|u| u.name).unwrap_or_default();
    let approver = match &a.approved_by {
        Some(id) => state.store.user_by_id(id).await?.map(|u| u.name).unwrap_or_default(),
        None => String::new(),
    };
    let missing = || ApiError::internal(format!("approval {approval_id} lacks its evidence"));
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let public_key: serde_json::Value =
        serde_json::from_str(a.credential_public_key.as_deref().ok_or_else(missing)?)
            .map_err(ApiError::internal)?;
    Ok(Json(ApprovalRecord {
        intent: Intent {
            package: a.package,
            version: a.version,
            integrity: a.integrity,
            requested_by: requester,
        },
        nonce: b64(&a.nonce),
        challenge: b64(&a.challenge),
        client_data_json: b64(a.client_data_json.as_deref().ok_or_else(missing)?),
        authenticator_data: b64(a.authenticator_data.as_deref().ok_or_else(missing)?),
        signature: b64(a.signature.as_deref().ok_or_else(missing)?),
        credential_id: b64(a.credential_id.as_deref().ok_or_else(missing)?),
        credential_public_key: public_key,
        rp_id: state.rp.rp_id.clone(),
        origin: state.config.origin.as_str().trim_end_matches('/').to_string(),
        approved_by: approver,
        approved_at: a.approved_at.map(rfc3339).unwrap_or_default(),
        user_verified: a.user_verified.unwrap_or(false),
    }))
}
